"""Sealed messages: the fast encrypted path beside CURVE, AES-256-GCM under keys sent over CURVE.

CURVE authenticates every member and encrypts with XSalsa20-Poly1305 in software, about 1 GB/s a
core; AES-GCM runs on the processor's AES instructions at several GB/s (docs/deploy.md, Security
model, has the figures). So a secure transport keeps CURVE for what it is best at, the handshake
that proves who a peer is, and moves every message over a second, unencrypted ZeroMQ connection,
each message sealed with AES-256-GCM:

- A sender makes one ``Sealer`` per receiver: a random 256-bit key and a random 128-bit session
  id. It sends them to the receiver over the CURVE connection (``key_frames``), which is
  encrypted, and which the receiver's ZAP check ties to the sender's public key. The receiver
  files the key under that peer (``Sessions.add``).
- Every message then travels sealed (``Sealer.seal``): a clear head (magic, session id, counter,
  frame count), then each frame encrypted, authenticated with the head as associated data, under
  the nonce (counter, frame index), unique under the session's key.
- The receiver opens it (``Sessions.open``) only with the key of the session the head names, and
  only at the counter it expects next; anything else is refused. So a sealed message is read only
  by its receiver, comes only from the peer that sent the key over CURVE, and is never accepted
  twice or out of order (a replay, or an old session's message after the sender restarted).

The key goes over CURVE, the message over another connection: a message may arrive before its
session's key. The receiver keeps such messages (at most ``MAX_PENDING`` and ``PENDING_BYTES``,
the oldest dropped first: they could come from anyone) until the key arrives.

Copies and allocations are what the cipher's speed leaves to win (docs/deploy.md, Measured): a
frame of ``LARGE_FRAME`` bytes or more is encrypted into a buffer the sealer reuses once the
transport says it is done with it (``Sealer.sent``), since a fresh 32 MiB buffer costs thousands
of page faults; the receiver decrypts each frame in place, over the bytes it received.
"""

from __future__ import annotations

import os
import struct
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mpsl.errors import ProtocolError

KEY_MAGIC = b"MPSL-KEY\x01"  # the key frames' first frame, on the CURVE connection
SEAL_MAGIC = b"MPSL-AES"  # a sealed message's head starts so
HEAD = struct.Struct("<8s16sQI")  # magic, session id, counter, frames
NONCE = struct.Struct("<QI")  # counter, frame index: 12 bytes, the GCM nonce
TAG_BYTES = 16
KEY_BYTES = 32
SESSION_BYTES = 16
MAX_FRAMES = 8
MAX_PENDING = 64  # sealed messages kept while their session's key is on the way
PENDING_BYTES = 512 * 2**20
LARGE_FRAME = 64 * 1024  # from this size, a frame's ciphertext goes into a reused buffer
MAX_SPARE = 8  # reusable buffers a sealer keeps

Frame = bytes | memoryview


class SealError(ProtocolError):
    """A sealed message that cannot be opened: bad tag, replayed or reordered, malformed."""


class Released(Protocol):
    """What tells that the transport no longer reads a sent buffer (pyzmq's MessageTracker)."""

    @property
    def done(self) -> bool:
        """True once the buffers sent are released."""
        ...


class Sealer:
    """One sender's session to one receiver: its key, its id and the next message's counter."""

    def __init__(self) -> None:
        self.key = AESGCM.generate_key(bit_length=256)
        self.session = os.urandom(SESSION_BYTES)
        self.counter = 0
        self._aead = AESGCM(self.key)
        # Large ciphertext buffers of the last sealed message, then of messages sent, with what
        # tells when the transport is done reading them: none is overwritten before that.
        self.lent: list[memoryview] = []
        self._spare: list[tuple[memoryview, Released]] = []

    def key_frames(self) -> list[bytes]:
        """What the receiver must learn over CURVE before it can open this session's messages."""
        return [KEY_MAGIC, self.session, self.key]

    def seal(self, frames: Sequence[Frame]) -> list[Frame]:
        """``frames`` encrypted and authenticated behind a clear head (one copy of each frame).

        Frames of ``LARGE_FRAME`` bytes or more are sealed into the sealer's own buffers, listed
        in ``lent``: send them without copying, then call ``sent``; else they are never reused.
        """
        if len(frames) > MAX_FRAMES:
            raise ProtocolError(f"a message has at most {MAX_FRAMES} frames; got {len(frames)}")
        head = HEAD.pack(SEAL_MAGIC, self.session, self.counter, len(frames))
        sealed: list[Frame] = [head]
        self.lent = []
        for i, frame in enumerate(frames):
            nonce = NONCE.pack(self.counter, i)
            size = memoryview(frame).nbytes
            if size < LARGE_FRAME:  # small: the cipher's own bytes are cheaper than any buffer
                sealed.append(self._aead.encrypt(nonce, frame, head))
                continue
            out = self._reusable(size + TAG_BYTES)
            self._aead.encrypt_into(nonce, frame, head, out)
            sealed.append(out)
        self.counter += 1
        return sealed

    def sent(self, released: Released) -> None:
        """The last sealed message's ``lent`` buffers may be reused once ``released.done``."""
        self._spare.extend((buffer, released) for buffer in self.lent)
        self.lent = []
        del self._spare[:-MAX_SPARE]  # the oldest dropped: freed once the transport lets go

    def _reusable(self, size: int) -> memoryview:
        """``size`` writable bytes: a released spare buffer that is large enough, or a new one."""
        for k, (buffer, released) in enumerate(self._spare):
            if buffer.nbytes >= size and released.done:
                del self._spare[k]
                break
        else:
            buffer = _buffer(size)
        self.lent.append(buffer)
        return buffer[:size]


@dataclass
class _Session:
    peer: str
    aead: AESGCM
    counter: int = 0  # the next message's


class Sessions:
    """A receiver's sessions, by id, and the sealed messages that wait for their key."""

    def __init__(self) -> None:
        self._sessions: dict[bytes, _Session] = {}
        self._pending: OrderedDict[int, tuple[bytes, list[memoryview]]] = OrderedDict()
        self._pending_bytes = 0
        self._arrivals = 0
        self.dropped = 0  # pending messages dropped to stay within the bounds

    def add(self, peer: str, frames: Sequence[Frame]) -> list[tuple[str, list[memoryview]]]:
        """File the key that ``peer`` sent over CURVE; the messages that waited for it, opened.

        A message that waited and cannot be opened is skipped (they could come from anyone).
        """
        if len(frames) != 3 or bytes(frames[0]) != KEY_MAGIC:
            raise SealError(f"malformed session key from {peer}")
        session, key = bytes(frames[1]), bytes(frames[2])
        if len(session) != SESSION_BYTES or len(key) != KEY_BYTES:
            raise SealError(f"malformed session key from {peer}: wrong sizes")
        if session in self._sessions:
            raise SealError(f"{peer} sent the key of session {session.hex()} again")
        self._sessions[session] = _Session(peer, AESGCM(key))
        opened = []
        for arrival, (waiting, sealed) in list(self._pending.items()):
            if waiting != session:
                continue
            del self._pending[arrival]
            self._pending_bytes -= _size(sealed)
            try:
                opened.append(self.open(sealed))
            except SealError:
                continue
        return opened

    def open(self, sealed: Sequence[memoryview]) -> tuple[str, list[memoryview]]:
        """The sender and the clear frames of a sealed message; SealError if it is not sound.

        Writable frames are decrypted in place: afterwards they hold clear bytes (or, for a
        message refused, bytes that mean nothing), and the clear frames returned are views of them.

        Raises ``KeyError`` when the session is not known yet: call ``keep`` then.
        """
        head = bytes(sealed[0]) if sealed else b""
        if len(head) != HEAD.size:
            raise SealError("not a sealed message (no head)")
        magic, session_id, counter, count = HEAD.unpack(head)
        if magic != SEAL_MAGIC or count != len(sealed) - 1 or count > MAX_FRAMES:
            raise SealError("not a sealed message (bad head)")
        session = self._sessions[session_id]
        if counter != session.counter:
            raise SealError(
                f"sealed message {counter} of {session.peer}'s session refused: expected "
                f"{session.counter} (replayed or reordered)"
            )
        frames = []
        for i, frame in enumerate(sealed[1:]):
            if len(frame) < TAG_BYTES:
                raise SealError(f"sealed message from {session.peer}: frame {i} is too short")
            if frame.readonly:  # received frames are writable; this copy is for bytes handed in
                frame = memoryview(bytearray(frame))
            # In place: the clear bytes overwrite the ciphertext they came from (no new buffer).
            out = frame[:-TAG_BYTES]
            try:
                session.aead.decrypt_into(NONCE.pack(counter, i), frame, head, out)
            except InvalidTag:
                raise SealError(
                    f"sealed message {counter} claims {session.peer}'s session but does not "
                    "authenticate (tampered, or not sealed with its key)"
                ) from None
            frames.append(out)
        session.counter += 1
        return session.peer, frames

    def keep(self, sealed: list[memoryview]) -> None:
        """Keep a message whose session's key has not arrived, within the bounds."""
        session = bytes(sealed[0])[len(SEAL_MAGIC) : len(SEAL_MAGIC) + SESSION_BYTES]
        self._arrivals += 1
        self._pending[self._arrivals] = (session, sealed)
        self._pending_bytes += _size(sealed)
        while len(self._pending) > MAX_PENDING or self._pending_bytes > PENDING_BYTES:
            _, (_, old) = self._pending.popitem(last=False)
            self._pending_bytes -= _size(old)
            self.dropped += 1


def _buffer(size: int) -> memoryview:
    """``size`` writable bytes, not zeroed: the cipher overwrites them all (a bytearray's zeroing
    costs as much as the cipher on a 32 MiB tensor, and would touch fresh pages)."""
    return torch.empty(size, dtype=torch.uint8).numpy().data


def _size(frames: Sequence[memoryview]) -> int:
    return sum(len(f) for f in frames)
