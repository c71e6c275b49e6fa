"""The sealed path (deploy/seal.py): AES-256-GCM messages under session keys sent over CURVE."""

import logging
import time

import pytest
import torch
import zmq

from mpsl.deploy.keys import load_credentials
from mpsl.deploy.seal import (
    HEAD,
    LARGE_FRAME,
    MAX_PENDING,
    SEAL_MAGIC,
    Sealer,
    SealError,
    Sessions,
)
from mpsl.deploy.transport import ZmqTransport
from mpsl.errors import TransportTimeout
from mpsl.runtime.messages import Kind, Message

FRAMES = [b"header", memoryview(torch.arange(1000, dtype=torch.float32).numpy()).cast("B")]


def clear(frames):
    return [bytes(f) for f in frames]


def views(frames):
    return [memoryview(f) for f in frames]


def test_a_sealed_message_opens_with_its_sessions_key_only():
    sealer, sessions = Sealer(), Sessions()
    sealed = views(sealer.seal(FRAMES))
    assert FRAMES[1].tobytes() not in b"".join(bytes(f) for f in sealed)  # encrypted
    sessions.add("owner1", sealer.key_frames())
    peer, frames = sessions.open(sealed)
    assert peer == "owner1" and clear(frames) == clear(FRAMES)


def test_a_tampered_message_is_refused_and_the_genuine_one_still_opens():
    sealer, sessions = Sealer(), Sessions()
    sessions.add("owner1", sealer.key_frames())
    sealed = views(sealer.seal(FRAMES))
    forged = [sealed[0], sealed[1], memoryview(bytes(sealed[2][:-1]) + b"\x00")]
    with pytest.raises(SealError, match="does not authenticate"):
        sessions.open(forged)
    assert clear(sessions.open(sealed)[1]) == clear(FRAMES)


def test_a_replayed_or_skipped_message_is_refused():
    sealer, sessions = Sealer(), Sessions()
    sessions.add("owner1", sealer.key_frames())
    first, second, third = (views(sealer.seal(FRAMES)) for _ in range(3))
    sessions.open(first)
    with pytest.raises(SealError, match="replayed or reordered"):
        sessions.open(first)
    with pytest.raises(SealError, match="expected 1"):
        sessions.open(third)
    sessions.open(second)
    sessions.open(third)


def test_another_sessions_key_does_not_open_a_message():
    mine, theirs, sessions = Sealer(), Sealer(), Sessions()
    sessions.add("owner1", mine.key_frames())
    sealed = views(theirs.seal(FRAMES))
    # the head claims owner1's session, the frames are sealed under another key
    head = HEAD.pack(SEAL_MAGIC, mine.session, 0, 2)
    with pytest.raises(SealError, match="does not authenticate"):
        sessions.open([memoryview(head), *sealed[1:]])


def test_messages_ahead_of_their_key_wait_for_it_in_order():
    sealer, sessions = Sealer(), Sessions()
    early = [views(sealer.seal([f"message {i}".encode()])) for i in range(3)]
    for sealed in early:
        with pytest.raises(KeyError):
            sessions.open(sealed)
        sessions.keep(sealed)
    opened = sessions.add("node1", sealer.key_frames())
    assert [(peer, clear(f)) for peer, f in opened] == [
        ("node1", [f"message {i}".encode()]) for i in range(3)
    ]


def test_messages_without_a_key_are_kept_within_bounds():
    sessions = Sessions()
    for _ in range(MAX_PENDING + 5):
        sessions.keep(views(Sealer().seal([b"junk"])))
    assert sessions.dropped == 5


def test_a_key_is_filed_once():
    sealer, sessions = Sealer(), Sessions()
    sessions.add("owner1", sealer.key_frames())
    with pytest.raises(SealError, match="again"):
        sessions.add("owner2", sealer.key_frames())


LARGE = memoryview(torch.arange(LARGE_FRAME, dtype=torch.float32).numpy()).cast("B")


class Tracker:
    """Stands for pyzmq's MessageTracker: done once the transport let go of the buffers."""

    def __init__(self) -> None:
        self.done = False


def address(view) -> int:
    return torch.frombuffer(view, dtype=torch.uint8).data_ptr()


def test_a_large_buffer_is_reused_only_once_released():
    sealer, sessions = Sealer(), Sessions()
    sessions.add("node1", sealer.key_frames())
    clear_frames = [b"header", LARGE.tobytes()]
    first = sealer.seal([b"header", LARGE])
    assert len(sealer.lent) == 1 and isinstance(first[1], bytes)  # the small frame is not lent
    held = Tracker()
    sealer.sent(held)
    second = sealer.seal([b"header", LARGE])
    sealer.sent(Tracker())
    assert address(second[2]) != address(first[2])  # the first is still being sent
    assert clear(sessions.open(views(first))[1]) == clear_frames  # and was not overwritten
    held.done = True
    third = sealer.seal([b"header", LARGE])
    assert address(third[2]) == address(first[2])  # released: reused
    for sealed in (second, third):
        assert clear(sessions.open(views(sealed))[1]) == clear_frames


def test_a_sealed_message_is_opened_in_place_and_still_refused_when_tampered():
    sealer, sessions = Sealer(), Sessions()
    sessions.add("owner1", sealer.key_frames())
    received = [memoryview(bytearray(f)) for f in sealer.seal([b"header", LARGE])]
    _, frames = sessions.open(received)
    assert frames[1].tobytes() == LARGE.tobytes()
    assert address(frames[1]) == address(received[2])  # decrypted where it was received
    tampered = [memoryview(bytearray(f)) for f in sealer.seal([b"header", LARGE])]
    tampered[2][1000] ^= 1
    with pytest.raises(SealError, match="does not authenticate"):
        sessions.open(tampered)


def client(keys, directory, name, server):
    t = ZmqTransport(name, credentials=load_credentials(keys / directory, name))
    t.add_route("node1", server.address, server.public_key, sealed=server.sealed_address)
    return t


def test_secure_transports_exchange_tensors_over_the_sealed_path(keys, server):
    owner = client(keys, "keys", "owner1", server)
    tensor = torch.randn(64, 32)
    for batch in range(3):
        owner.send("node1", Message(Kind.ACTIVATION, "owner1", owner=0, batch=batch, tensor=tensor))
    for batch in range(3):
        msg = server.recv("node1", timeout=5)
        assert (msg.sender, msg.batch) == ("owner1", batch)
        assert torch.equal(msg.tensor, tensor)
    assert owner._sealed and not server.rejected  # it went sealed, and nothing was refused
    owner.close()


def test_large_sealed_messages_arrive_intact_while_the_sender_reuses_its_buffers(keys, server):
    owner = client(keys, "keys", "owner1", server)
    tensors = [torch.full((LARGE_FRAME,), float(k)) for k in range(12)]
    for batch, tensor in enumerate(tensors):  # sent back to back: several in flight at once
        owner.send("node1", Message(Kind.ACTIVATION, "owner1", owner=0, batch=batch, tensor=tensor))
    for batch, tensor in enumerate(tensors):
        msg = server.recv("node1", timeout=5)
        assert msg.batch == batch and torch.equal(msg.tensor, tensor)
    assert not server.rejected
    # Once ZeroMQ has sent them, its trackers release the buffers, and the next message reuses one.
    _, sealer = owner._sealed["node1"]
    deadline = time.monotonic() + 5
    while not all(released.done for _, released in sealer._spare) and time.monotonic() < deadline:
        time.sleep(0.01)
    spares = {address(buffer) for buffer, _ in sealer._spare}
    owner.send("node1", Message(Kind.ACTIVATION, "owner1", owner=0, batch=12, tensor=tensors[0]))
    assert address(sealer._spare[-1][0]) in spares
    assert torch.equal(server.recv("node1", timeout=5).tensor, tensors[0])
    owner.close()


def test_an_unauthorized_key_gets_nothing_through_the_sealed_path(keys, server, caplog):
    stranger = client(keys, "stranger", "owner1", server)
    with caplog.at_level(logging.WARNING, logger="mpsl.deploy"):
        stranger.send("node1", Message(Kind.ROUND_DONE, "owner1"))
        with pytest.raises(TransportTimeout):
            server.recv("node1", timeout=1.5)
    assert "rejected a connection with unknown CURVE key" in caplog.text  # its key never arrived
    stranger.close()


def test_a_member_cannot_speak_for_another_on_the_sealed_path(keys, server):
    owner = client(keys, "keys", "owner1", server)
    owner.send("node1", Message(Kind.ROUND_DONE, "owner2"))
    with pytest.raises(TransportTimeout):
        server.recv("node1", timeout=1.5)
    assert (
        "claims to come from 'owner2' but was sent with the key of 'owner1'" in server.rejected[0]
    )
    owner.close()


def test_a_forged_message_on_the_sealed_port_is_refused(keys, server):
    owner = client(keys, "keys", "owner1", server)
    owner.send("node1", Message(Kind.ROUND_DONE, "owner1"))
    assert server.recv("node1", timeout=5).sender == "owner1"
    _, sealer = owner._sealed["node1"]
    # Anyone can reach the sealed port; without the session's key, nothing they send opens.
    forger = zmq.Context.instance().socket(zmq.DEALER)
    forger.connect(server.sealed_address)
    head = HEAD.pack(SEAL_MAGIC, sealer.session, sealer.counter, 1)
    forger.send_multipart([head, b"\x00" * 64])
    deadline = time.monotonic() + 5
    while not server.rejected and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "does not authenticate" in server.rejected[0]
    owner.send("node1", Message(Kind.ROUND_DONE, "owner1", round=1))
    assert server.recv("node1", timeout=5).round == 1  # the genuine message, after the forgery
    forger.close(linger=0)
    owner.close()
