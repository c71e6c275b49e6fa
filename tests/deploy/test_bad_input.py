"""Bad input at a compute node: logged, dropped, and the node keeps serving everyone else."""

import dataclasses
import threading

import pytest
import torch
import zmq
from deploy_helpers import raw_header

from mpsl.deploy.gate import NodeGate, part_shapes
from mpsl.deploy.keys import create_keys, load_credentials
from mpsl.deploy.transport import ZmqTransport
from mpsl.deploy.wire import encode
from mpsl.errors import TransportTimeout
from mpsl.models import build_model
from mpsl.runtime.compute_node import ComputeNode
from mpsl.runtime.config import RunConfig
from mpsl.runtime.events import EventLog
from mpsl.runtime.layout import Layout
from mpsl.runtime.messages import Kind, Message
from mpsl.runtime.setup import optimizer_factory
from mpsl.split import split_model

LIMIT = 1 << 20  # the node refuses messages over 1 MiB


class Site:
    """node1 (a real ComputeNode) and its peers: coordinator, node2, owner1, owner2."""

    def __init__(self, tmp_path, start=True):
        names = ["coordinator", "node1", "node2", "owner1", "owner2"]
        self.keys = tmp_path / "keys"
        create_keys(self.keys, names)
        self.creds = {n: load_credentials(self.keys, n) for n in names}
        model = build_model("digits_cnn", 10, (1, 8, 8), seed=0)
        self.parts = split_model(model, (1, 3, 5))
        self.in_shape, self.out_shape = part_shapes(self.parts, (1, 8, 8))[1]
        layout = Layout.chain(2, 2)
        gate = NodeGate(
            {0: "owner1", 1: "owner2"}, {0: "node2", 1: "node2"}, self.in_shape, self.out_shape
        )
        self.node_t = ZmqTransport(
            "node1", credentials=self.creds["node1"], gate=gate, max_message_bytes=LIMIT
        )
        self.peers = {n: ZmqTransport(n, credentials=self.creds[n]) for n in names if n != "node1"}
        for n, t in self.peers.items():
            t.add_route("node1", self.node_t.address, self.node_t.public_key)
            self.node_t.add_route(n, t.address, t.public_key)
        self.node = ComputeNode(
            name="node1",
            part=self.parts[1],
            owners=layout.served[0],
            prev_hop=layout.prev_hop(0),
            next_hop=layout.next_hop(0),
            transport=self.node_t,
            events=EventLog(),
            make_optimizer=optimizer_factory(RunConfig()),
        )
        self.raw_socks: list[zmq.Socket] = []
        self.thread = threading.Thread(target=self.node.serve, daemon=True)
        self.thread.start()
        if start:
            self.start_round(0)

    def start_round(self, r):
        self.send(
            "coordinator",
            Message(
                Kind.ROUND_START,
                "coordinator",
                owner=2,
                round=r,
                tensors=self.parts[1].state_dict(),
                owners=(0, 1, 2),
            ),
        )

    def send(self, peer, msg):
        self.peers[peer].send("node1", msg)

    def activation(self, owner, batch, shape=None, dtype=torch.float32, sender=None):
        t = torch.randn(shape or (4, *self.in_shape)).to(dtype)
        return Message(Kind.ACTIVATION, sender or f"owner{owner + 1}", owner, batch, 0, tensor=t)

    def gradient(self, owner, batch, rows=4):
        return Message(
            Kind.GRADIENT, "node2", owner, batch, 0, tensor=torch.randn(rows, *self.out_shape)
        )

    def raw(self, peer, frames):
        """Send arbitrary frames with a peer's valid key, bypassing our encoder."""
        sock = self.peers[peer]._ctx.socket(zmq.DEALER)
        sock.curve_serverkey = self.node_t.public_key.encode()
        sock.curve_publickey = self.creds[peer].identity.public.encode()
        sock.curve_secretkey = self.creds[peer].identity.secret.encode()
        sock.connect(self.node_t.address)
        sock.send_multipart(frames)
        self.raw_socks.append(sock)

    def expect(self, peer, kind, owner, batch):
        msg = self.peers[peer].recv(peer, timeout=10)
        assert (msg.kind, msg.owner, msg.batch) == (kind, owner, batch), msg
        return msg

    def rejected_with(self, needle, count):
        """Wait until the node has refused ``count`` messages; the last one for ``needle``."""
        for _ in range(100):
            if len(self.node_t.rejected) >= count:
                break
            threading.Event().wait(0.05)
        assert len(self.node_t.rejected) == count, self.node_t.rejected
        assert needle in self.node_t.rejected[-1], self.node_t.rejected[-1]

    def close(self):
        for sock in self.raw_socks:
            sock.close(linger=0)
        self.send("coordinator", Message(Kind.STOP, "coordinator"))
        self.thread.join(timeout=5)
        for t in [*self.peers.values(), self.node_t]:
            t.close(linger_s=0)


@pytest.fixture
def site(tmp_path):
    s = Site(tmp_path)
    yield s
    s.close()


def test_bad_messages_are_dropped_and_the_node_keeps_serving(site):
    # A batch of owner1 is in flight: its activation went on to node2.
    site.send("owner1", site.activation(0, 0))
    site.expect("node2", Kind.ACTIVATION, 0, 0)

    cases = [
        ([b"garbage"], "not an MP-SL message"),
        ([raw_header(kind=200)], "unknown message kind"),
        ([bytes(f) for f in encode(site.activation(0, 1))][:1], "announces 2 frames"),
        ([bytes(encode(site.activation(0, 1))[0]), b"\0" * 13], "needs"),
    ]
    for n, (frames, needle) in enumerate(cases, start=1):
        site.raw("owner1", frames)
        site.rejected_with(needle, n)
    refused = len(cases)
    for msg, needle in [
        (site.activation(0, 1, shape=(4, 3)), "tensor shape"),
        (site.activation(0, 1, dtype=torch.float64), "dtype"),
        (site.activation(5, 1, sender="owner1"), "not served"),
        (site.activation(1, 1, sender="owner1"), "come from owner2"),  # owner1 at owner2's instance
        (site.activation(0, 0), "already in flight"),
    ]:
        site.send("owner1", msg)
        refused += 1
        site.rejected_with(needle, refused)
    for msg, needle in [
        (site.gradient(0, 99), "no batch 99"),
        (site.gradient(0, 0, rows=3), "the batch had 4"),
        (Message(Kind.GRADIENT, "node2", 0, 0, 0, tensor=torch.randn(4, 7)), "tensor shape"),
    ]:
        site.send("node2", msg)
        refused += 1
        site.rejected_with(needle, refused)

    # Everyone else is still served: owner2's batch goes through.
    site.send("owner2", site.activation(1, 0))
    site.expect("node2", Kind.ACTIVATION, 1, 0)
    # Nothing trained is lost: owner1's batch 0 completes its backward pass.
    site.send("node2", site.gradient(0, 0))
    grad = site.expect("owner1", Kind.GRADIENT, 0, 0)
    assert grad.tensor is not None and grad.tensor.shape == (4, *site.in_shape)


def test_a_batch_that_overtakes_its_round_start_waits_for_it(tmp_path):
    # Another connection can deliver a data owner's first activation before the coordinator's
    # (larger) round start: it waits, then is checked and served, not refused.
    site = Site(tmp_path, start=False)
    try:
        site.send("owner1", site.activation(0, 0))
        site.send("owner2", site.activation(1, 0, shape=(4, 3)))  # early, and bad
        for _ in range(100):
            if len(site.node_t._ahead) == 2:
                break
            threading.Event().wait(0.05)
        assert len(site.node_t._ahead) == 2 and site.node_t.rejected == []
        site.start_round(0)
        site.expect("node2", Kind.ACTIVATION, 0, 0)
        site.rejected_with("tensor shape", 1)
        # Two rounds ahead is refused outright.
        site.send("owner1", dataclasses.replace(site.activation(0, 1), round=2))
        site.rejected_with("round 2, but round 0 is running", 2)
    finally:
        site.close()


def test_an_oversized_message_never_reaches_the_node(site):
    big = site.activation(0, 0, shape=(LIMIT // 4 // 64 + 1, *site.in_shape))  # just over 1 MiB
    site.send("owner1", big)
    with pytest.raises(TransportTimeout):
        site.peers["node2"].recv("node2", timeout=1.0)
    # The peer reconnects, and its proper messages are served again.
    site.send("owner1", site.activation(0, 1))
    site.expect("node2", Kind.ACTIVATION, 0, 1)
