"""ZmqTransport: the Transport of a role process, over ZeroMQ, CURVE-encrypted and authenticated.

Every process binds one ROUTER socket (its inbox) and opens one DEALER socket per peer it sends
to. A receiver thread decodes each message (deploy/wire.py), checks who sent it, and hands it to a
gate (deploy/gate.py) that knows what this role may receive; only then does the role see it.
Rejected messages are logged with the peer and the reason, and dropped; the role keeps serving.

Identity: with CURVE, libzmq authenticates every connection (ZAP) against the authorized public
keys, and tags each message with the sender's key. A message whose ``sender`` field does not match
the member its key belongs to is refused, so a data owner cannot speak for another one.

Sealed path (deploy/seal.py): with credentials, a process also binds a second ROUTER without
CURVE (its ``sealed_address``, given to peers with its route). To a peer whose route names one,
every message goes there sealed with AES-256-GCM, under a session key sent once over the CURVE
connection; CURVE still authenticates every peer, and the key ties each sealed message to one.

A refused handshake is silent on the connecting side: ZeroMQ keeps the message and retries. A
route opened with ``monitor=True`` watches its DEALER's socket events instead (``handshake``), so
a member waiting for the coordinator can tell "nothing listens there" from "our key was refused".
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils.monitor import recv_monitor_message

from mpsl.deploy.control import Control, ControlKind
from mpsl.deploy.gate import Gate
from mpsl.deploy.keys import Credentials
from mpsl.deploy.seal import KEY_MAGIC, Sealer, SealError, Sessions
from mpsl.deploy.wire import DEFAULT_MAX_MESSAGE_BYTES, Frame, Packet, WireError, decode, encode
from mpsl.errors import ProtocolError, TransportTimeout
from mpsl.runtime.messages import Kind, Message
from mpsl.training.allocator import keep_freed_memory

log = logging.getLogger(__name__)

POLL_MS = 100
# Messages of the next round kept until its start: one batch per data owner and hop at a time.
MAX_AHEAD = 4096


keep_freed_memory()  # received buffers are reused, not mapped afresh for each message

# How a handshake failed, by socket event: the peer's ZAP refused our key (status 400), the peer
# speaks another mechanism (CURVE against none), or no detail (with CURVE: the server could not
# decrypt our hello, because the server key we were given is not its key).
FAILURES: dict[int, str] = {
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "auth",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "protocol",
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "no detail",
}
MONITORED = zmq.EVENT_CONNECTED | zmq.EVENT_CONNECT_RETRIED | zmq.EVENT_HANDSHAKE_SUCCEEDED
for _event in FAILURES:
    MONITORED |= _event


@dataclass(frozen=True)
class Handshake:
    """What the monitor of the connection to one peer has seen so far."""

    retries: int = 0  # connection attempts that failed (nothing listening, unreachable)
    connected: bool = False  # a TCP connection was made
    succeeded: bool = False  # a handshake succeeded (keys accepted both ways)
    failure: str | None = None  # how the latest handshake failed: "auth", "protocol", "no detail"
    failures: int = 0  # handshakes failed since the last success


class ZmqTransport:
    """One process's inbox (ROUTER) and its routes to peers (a DEALER each)."""

    def __init__(
        self,
        name: str,
        bind: str = "tcp://127.0.0.1:*",
        credentials: Credentials | None = None,
        advertise: str | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        gate: Gate | None = None,
    ) -> None:
        self.name = name
        self.credentials = credentials
        self.max_message_bytes = max_message_bytes
        self.gate = gate
        self.bytes_sent: dict[tuple[str, str], int] = defaultdict(int)
        self.rejected: list[str] = []  # reasons, in order; also logged
        self._ahead: list[tuple[Packet, str | None]] = []  # next round's, before its start
        self.last_seen: dict[str, float] = {}
        # SimpleQueue: put and get in C, no Condition in Python: the hand-off from the receiver
        # thread costs less on every small message (docs/deploy.md, Measured).
        self._inbox: queue.SimpleQueue[Packet] = queue.SimpleQueue()
        self._ctx = zmq.Context()
        self._auth: ThreadAuthenticator | None = None
        self._routes: dict[str, tuple[str, str | None, str | None]] = {}
        self._dealers: dict[str, tuple[zmq.Socket, threading.Lock]] = {}
        self._sealed: dict[str, tuple[zmq.Socket, Sealer]] = {}  # by peer: socket, session
        self._sessions = Sessions()
        self._monitored: set[str] = set()
        self._monitors: dict[str, tuple[zmq.Socket, Handshake]] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._router = self._ctx.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.RCVHWM, 0)
        self._router.setsockopt(zmq.LINGER, 0)
        # libzmq closes the connection of a peer that sends more than this: oversized messages
        # never reach memory.
        self._router.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
        if credentials is not None:
            self._auth = ThreadAuthenticator(self._ctx, log=logging.getLogger("mpsl.deploy.auth"))
            self._auth.start()
            self._auth.configure_curve_callback("*", _KeyCheck(credentials, name))
            self._router.curve_server = True
            self._router.curve_publickey = credentials.identity.public.encode()
            self._router.curve_secretkey = credentials.identity.secret.encode()
        try:
            self._router.bind(bind)
        except zmq.ZMQError as exc:
            raise ProtocolError(f"cannot listen on {bind}: {exc}") from None
        self.address = _advertised(self._router, advertise)
        self._sealed_router: zmq.Socket | None = None
        self.sealed_address: str | None = None
        if credentials is not None:
            # No CURVE here: every message on it is sealed (deploy/seal.py) and opened only with
            # a key that came over the CURVE router.
            self._sealed_router = self._ctx.socket(zmq.ROUTER)
            self._sealed_router.setsockopt(zmq.RCVHWM, 0)
            self._sealed_router.setsockopt(zmq.LINGER, 0)
            self._sealed_router.setsockopt(zmq.MAXMSGSIZE, max_message_bytes + 64 * 1024)
            sealed_bind = _sealed_bind(bind)
            try:
                self._sealed_router.bind(sealed_bind)
            except zmq.ZMQError as exc:
                raise ProtocolError(
                    f"cannot listen on {sealed_bind} for sealed messages (the port after "
                    f"{bind}'s; docs/deploy.md, Security model): {exc}"
                ) from None
            self.sealed_address = _advertised(self._sealed_router, advertise)
        self._receiver = threading.Thread(target=self._receive, name=f"{name}-rx", daemon=True)
        self._receiver.start()

    @property
    def public_key(self) -> str | None:
        """This process's public key (None without CURVE)."""
        return self.credentials.identity.public if self.credentials else None

    @property
    def secure(self) -> bool:
        """True when traffic is encrypted and authenticated."""
        return self.credentials is not None

    def add_route(
        self,
        endpoint: str,
        address: str,
        public_key: str | None = None,
        monitor: bool = False,
        fresh: bool = False,
        sealed: str | None = None,
    ) -> None:
        """Messages for ``endpoint`` go to ``address`` (whose CURVE server key is given).

        ``sealed``: the peer's sealed address; with credentials, messages then go there sealed.
        ``monitor``: watch the connection's handshakes (``handshake``); give it before the first
        message to ``endpoint``. ``fresh``: a new connection even to the same address (a process
        restarted there must not get what was queued for the one before).
        """
        if self.secure and not public_key:
            raise ProtocolError(f"no public key for {endpoint} at {address}")
        route = (address, public_key, sealed if self.secure else None)
        with self._lock:
            moved = self._routes.get(endpoint, route) != route
            if moved or fresh:
                self._forget(endpoint)  # a member registered again: its old socket is dead
            self._routes[endpoint] = route
            if monitor:
                self._monitored.add(endpoint)

    def handshake(self, endpoint: str) -> Handshake:
        """What the monitored route to ``endpoint`` has seen of its connections and handshakes."""
        with self._lock:
            if endpoint not in self._monitors:
                return Handshake()
            monitor, state = self._monitors[endpoint]
            while monitor.poll(0):
                state = _seen(state, recv_monitor_message(monitor)["event"])
            self._monitors[endpoint] = (monitor, state)
            return state

    def send(self, dest: str, msg: Packet) -> None:
        """Queue ``msg`` for ``dest``; never waits for the receiver."""
        socket, lock = self._dealer(dest)
        frames = encode(msg)
        if self.gate is not None:  # before sending: the answer may come back at once
            self.gate.sent(dest, msg)
        with lock:
            if dest in self._sealed:  # sealed in sending order: the receiver checks the counter
                socket, sealer = self._sealed[dest]
                _send_sealed(socket, sealer, frames)
            else:
                socket.send_multipart(frames, copy=False)
        self.bytes_sent[(msg.sender, dest)] += msg.nbytes

    def recv(self, endpoint: str, timeout: float | None = None) -> Message:
        """Next accepted runtime message (TransportTimeout after ``timeout`` seconds).

        The runtime's roles take runtime messages only: a control message that the gate let
        through while they wait (say, a member registering again mid-run) is a ProtocolError.
        """
        packet = self.recv_packet(timeout)
        if isinstance(packet, Control):
            raise ProtocolError(
                f"{self.name} expected a runtime message, got {packet.kind.value} from "
                f"{packet.sender}"
            )
        return packet

    def recv_message(self, timeout: float | None, on_control: Callable[[Control], None]) -> Message:
        """Next runtime message (TransportTimeout after ``timeout`` seconds); the control
        messages before it go to ``on_control``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            packet = self.recv_packet(left)
            if isinstance(packet, Message):
                return packet
            on_control(packet)

    def recv_packet(self, timeout: float | None = None) -> Packet:
        """Next accepted message, runtime or control (TransportTimeout after ``timeout``)."""
        try:
            return self._inbox.get(timeout=timeout)
        except queue.Empty:
            raise TransportTimeout(f"{self.name}: nothing received in {timeout} s") from None

    def inject(self, msg: Packet) -> None:
        """Put a locally made message in the inbox (a watchdog reporting a lost peer)."""
        self._inbox.put(msg)

    def close(self, linger_s: float = 2.0) -> None:
        """Flush what is queued (up to ``linger_s``), then release sockets and threads."""
        self._closed.set()
        self._receiver.join(timeout=1.0)
        with self._lock:
            for dest in list(self._monitors):
                self._unmonitor(dest)
            for socket, lock in self._dealers.values():
                with lock:
                    socket.close(linger=int(linger_s * 1000))
            self._dealers.clear()
            for socket, _ in self._sealed.values():
                socket.close(linger=int(linger_s * 1000))
            self._sealed.clear()
        self._router.close(linger=0)
        if self._sealed_router is not None:
            self._sealed_router.close(linger=0)
        if self._auth is not None:
            self._auth.stop()
        self._ctx.term()

    def _forget(self, dest: str) -> None:
        """Close the socket to ``dest`` (under ``_lock``)."""
        self._unmonitor(dest)
        if dest in self._dealers:
            socket, lock = self._dealers.pop(dest)
            with lock:
                socket.close(linger=0)
                if dest in self._sealed:
                    self._sealed.pop(dest)[0].close(linger=0)

    def _unmonitor(self, dest: str) -> None:
        """Stop watching the socket to ``dest`` (under ``_lock``)."""
        if dest in self._monitors:
            monitor, _ = self._monitors.pop(dest)
            self._dealers[dest][0].disable_monitor()
            monitor.close(linger=0)

    def _dealer(self, dest: str) -> tuple[zmq.Socket, threading.Lock]:
        with self._lock:
            if dest in self._dealers:
                return self._dealers[dest]
            if self._closed.is_set():
                # A role thread still sending while the process stops: a socket opened now would
                # never be closed, and the context's term() would wait for it forever.
                raise ProtocolError(f"{self.name}: the transport is closed")
            if dest not in self._routes:
                raise ProtocolError(f"{self.name} has no route to '{dest}'")
            address, server_key, sealed = self._routes[dest]
            socket = self._ctx.socket(zmq.DEALER)
            socket.setsockopt(zmq.SNDHWM, 0)  # the transport never blocks a role
            if self.credentials is not None and server_key:
                socket.curve_serverkey = server_key.encode()
                socket.curve_publickey = self.credentials.identity.public.encode()
                socket.curve_secretkey = self.credentials.identity.secret.encode()
            if dest in self._monitored:
                self._monitors[dest] = (socket.get_monitor_socket(MONITORED), Handshake())
            socket.connect(address)
            if sealed is not None:
                self._sealed[dest] = (self._seal_to(sealed), Sealer())
                # queued before any sealed message: the receiver files the key under our CURVE key
                socket.send_multipart(self._sealed[dest][1].key_frames())
            self._dealers[dest] = (socket, threading.Lock())
            return self._dealers[dest]

    def _seal_to(self, address: str) -> zmq.Socket:
        """A socket to a peer's sealed address (no CURVE: what goes there is sealed)."""
        socket = self._ctx.socket(zmq.DEALER)
        socket.setsockopt(zmq.SNDHWM, 0)
        socket.connect(address)
        return socket

    def _receive(self) -> None:
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        if self._sealed_router is not None:
            poller.register(self._sealed_router, zmq.POLLIN)
        while not self._closed.is_set():
            for socket, _ in poller.poll(POLL_MS):
                frames = socket.recv_multipart(copy=False)[1:]
                if socket is self._sealed_router:
                    self._open([f.buffer for f in frames])
                elif frames and frames[0].bytes == KEY_MAGIC:
                    self._file_key(frames)
                else:
                    self._accept(self._peer(frames[0]) if frames else None, frames)

    def _file_key(self, frames: list[zmq.Frame]) -> None:
        """A peer's session key, over CURVE: its sealed messages can be opened now."""
        peer = self._peer(frames[0])
        if peer is None:
            self._reject("a session key without CURVE authentication")
            return
        try:
            waited = self._sessions.add(peer, [f.bytes for f in frames])
        except SealError as exc:
            self._reject(str(exc))
            return
        for sender, clear in waited:
            self._accept(sender, clear)

    def _open(self, sealed: list[memoryview]) -> None:
        """A message from the sealed router: opened, then accepted as from its session's peer."""
        try:
            peer, clear = self._sessions.open(sealed)
        except KeyError:
            self._sessions.keep(sealed)  # its key is on the way over CURVE
            return
        except SealError as exc:
            self._reject(str(exc))
            return
        self._accept(peer, clear)

    def _accept(self, peer: str | None, frames: list[zmq.Frame] | list[memoryview]) -> None:
        try:
            buffers = [f.buffer if isinstance(f, zmq.Frame) else f for f in frames]
            msg = decode(buffers, self.max_message_bytes)
        except WireError as exc:
            self._reject(f"malformed message from {peer or 'an unauthenticated peer'}: {exc}")
            return
        if self.secure and msg.sender != peer:
            self._reject(
                f"{msg.kind.value} message claims to come from '{msg.sender}' but was sent "
                f"with the key of '{peer}'"
            )
            return
        if msg.kind is ControlKind.HEARTBEAT:
            self.last_seen[msg.sender] = time.monotonic()
            return
        if self.gate is not None and self.gate.ahead(msg):
            if len(self._ahead) >= MAX_AHEAD:
                self._reject(
                    f"{msg.kind.value} from {msg.sender} refused: too many messages "
                    f"ahead of round {getattr(msg, 'round', -1)}'s start"
                )
            else:
                self._ahead.append((msg, peer))
            return
        self._admit(msg, peer)

    def _admit(self, msg: Packet, peer: str | None) -> None:
        reason = self.gate.check(msg, peer) if self.gate else None
        if reason:
            self._reject(f"{msg.kind.value} from {msg.sender} refused: {reason}")
            return
        self.last_seen[msg.sender] = time.monotonic()
        self._inbox.put(msg)
        if msg.kind is Kind.ROUND_START and self._ahead:
            # The round has started: what came ahead of it is checked now, in arrival order.
            waiting, self._ahead = self._ahead, []
            for early, sender in waiting:
                self._admit(early, sender)

    def _peer(self, frame: zmq.Frame) -> str | None:
        """The authorized member whose key sent ``frame`` (None without CURVE)."""
        if self.credentials is None:
            return None
        try:
            key = frame.get("User-Id")
        except zmq.ZMQError:
            return None
        return self.credentials.authorized.get(str(key))

    def _reject(self, reason: str) -> None:
        log.warning("%s: %s", self.name, reason)
        self.rejected.append(reason)


def _send_sealed(socket: zmq.Socket, sealer: Sealer, frames: list[Frame]) -> None:
    """``frames`` sealed and sent without copying; the sealer's large buffers tracked for reuse."""
    sealed = sealer.seal(frames)
    if not sealer.lent:
        socket.send_multipart(sealed, copy=False)
        return
    # ZeroMQ reads the buffers from its I/O thread after send returns: the sealer may reuse them
    # only once every frame of the message is released (send_multipart tracks only the last).
    parts = [zmq.Frame(f, copy=False, track=True) for f in sealed]
    socket.send_multipart(parts, copy=False)
    sealer.sent(zmq.MessageTracker(*parts))


def _advertised(socket: zmq.Socket, advertise: str | None) -> str:
    """The address peers reach ``socket`` at: where it listens, under ``advertise`` if given."""
    endpoint = socket.getsockopt_string(zmq.LAST_ENDPOINT)
    if advertise:
        endpoint = f"tcp://{advertise}:{endpoint.rsplit(':', 1)[1]}"
    return endpoint


def _sealed_bind(bind: str) -> str:
    """Where the sealed router listens: ``bind``'s host; the next port after a fixed one."""
    host, port = bind.rsplit(":", 1)
    if port == "*":
        return bind
    if int(port) >= 65535:
        raise ProtocolError(
            f"{bind}: the sealed path listens on the next port; use one below 65535"
        )
    return f"{host}:{int(port) + 1}"


def _seen(state: Handshake, event: int) -> Handshake:
    """``state`` after one socket event."""
    if event == zmq.EVENT_CONNECT_RETRIED:
        return replace(state, retries=state.retries + 1)
    if event == zmq.EVENT_CONNECTED:
        return replace(state, connected=True)
    if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
        return replace(state, succeeded=True, failure=None, failures=0)
    if event in FAILURES:
        # A detailed failure stays: under load the same mismatch may also end without detail.
        detail = state.failure if FAILURES[event] == "no detail" and state.failure else None
        return replace(state, failure=detail or FAILURES[event], failures=state.failures + 1)
    return state


class _KeyCheck:
    """ZAP callback: admit only authorized public keys, and log everyone refused."""

    def __init__(self, credentials: Credentials, name: str) -> None:
        self.authorized = credentials.authorized
        self.name = name

    def callback(self, domain: str, key: bytes) -> bool:
        """True for an authorized key."""
        text = key.decode("ascii", "replace")
        if text in self.authorized:
            return True
        log.warning("%s: rejected a connection with unknown CURVE key %s", self.name, text)
        return False
