"""Emulated links: the engine's network emulator for role threads of one process.

A link model delays each delivery (emulated rate and latency, one transfer at a time per directed
link; transfers that name the same ``channel``, e.g. the owners behind one shared uplink, take
turns on it instead of on their own links), so the same roles run as a faithful emulation of a slow
network. Every delivery carries the time it was due in the emulated deployment, which the
receiving role's emulated device starts from (``clock.Timeline``, the engine's), so thread wake-up
lateness neither delays transfers nor adds up along the pipeline; and a task message is handed over
only once no role can still send an earlier-due one, so every queue sees its tasks in emulated
arrival order even when the machine stalls a thread. The engine uses it in place of
``transport.InProcessTransport`` when it emulates.
"""

from __future__ import annotations

import heapq
import itertools
import math
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import NamedTuple

from mpsl.errors import TransportTimeout
from mpsl.runtime.clock import Timeline
from mpsl.runtime.messages import Kind, Message


class Transfer(NamedTuple):
    """How one message crosses: rate, latency, bytes, and the directed link it occupies."""

    bps: float
    latency_s: float
    nbytes: int
    channel: tuple[str, str] | None = None  # default: the (sender, dest) link of its own


# (sender, dest, message) -> its Transfer (or a (bps, latency s, bytes) tuple), or None for
# instantaneous delivery. It sees the message so that emulation can size what is not materialised.
LinkModel = Callable[[str, str, Message], Transfer | tuple[float, float, int] | None]

TASKS = (Kind.ACTIVATION, Kind.GRADIENT)


class _Role:
    """What the transport knows of one endpoint's emulated clock (link emulation only)."""

    __slots__ = ("blocked", "inbox", "modelled", "now", "transport")

    def __init__(self, transport: EmulatedLinks) -> None:
        self.transport = transport
        self.now = -math.inf  # the endpoint's emulated clock (its thread's Timeline.now)
        self.blocked = True  # waiting in recv (or not yet receiving)
        self.inbox: dict[int, float] = {}  # seq -> due of messages delivered, not yet received
        self.modelled = False  # takes part in emulated time (got a modelled message, or emulates)

    def promise(self) -> float:
        """No message this endpoint sends from now on is due before this time."""
        if not self.modelled:
            return math.inf  # it stamps what it sends with real time, later than any due time
        if self.blocked:
            # It wakes for the earliest message waiting for it, and only then can send.
            return max(self.now, min(self.inbox.values())) if self.inbox else math.inf
        return self.now

    def advanced(self, end: float) -> None:
        """Its emulated device runs a task until ``end`` (called from the endpoint's thread)."""
        with self.transport._lock:
            self.now, self.modelled = end, True
            self.transport._changed(self)


class EmulatedLinks:
    """Delivery between role threads of one process over emulated links, with byte counts.

    Each inbox hands out messages in the order of their emulated arrival.
    """

    # A task message held back for ordering is delivered anyway this long after it was due: a
    # guard against a role that stops receiving without ever saying so, never the normal path.
    MAX_HOLD_S = 1.0

    def __init__(self, link_model: LinkModel, clock: Timeline) -> None:
        self._inboxes: dict[str, queue.PriorityQueue[tuple[float, int, Message]]] = defaultdict(
            queue.PriorityQueue
        )
        self._roles: dict[str, _Role] = {}
        self._bounding: set[_Role] = set()  # roles whose promise is finite
        self._lock = threading.Lock()
        self._link_model = link_model
        # The run's emulated time (its engine's): every delivery is stamped with it.
        self.clock = clock
        self._link_free_at: dict[tuple[str, str], float] = defaultdict(float)
        self.bytes_sent: dict[tuple[str, str], int] = defaultdict(int)
        self._pending: list[tuple[float, int, str, Message]] = []  # (due, seq, dest, message)
        self._seq = itertools.count()
        self._wake = threading.Condition(self._lock)
        self._holding = False  # the pump waits for roles to catch up before its next delivery
        self._closed = False
        self.keeping = True  # keeps its threads' emulated timelines (until closed)
        self._pump = threading.Thread(target=self._deliver_loop, name="links", daemon=True)
        self._pump.start()

    def send(self, dest: str, msg: Message) -> None:
        """Deliver at the emulated arrival time (at once where the link model says so)."""
        # An emulated sender hands over when its emulated task ended, not when its thread woke.
        now = self.clock.send_time(self)
        with self._lock:
            self.bytes_sent[(msg.sender, dest)] += msg.nbytes
            link = self._link_model(msg.sender, dest, msg)
            if link is None:
                self._put(dest, now, next(self._seq), msg)
                return
            bps, latency, nbytes, channel = Transfer(*link)
            key = channel or (msg.sender, dest)
            # A directed link carries one transfer at a time, in the order handed to it.
            start = max(now, self._link_free_at[key])
            end = start + nbytes * 8.0 / bps
            self._link_free_at[key] = end
            heapq.heappush(self._pending, (end + latency, next(self._seq), dest, msg))
            self._wake.notify()

    def recv(self, endpoint: str, timeout: float | None = None) -> Message:
        """Next message for ``endpoint``; tells the calling thread's timeline when it was due."""
        with self._lock:
            inbox = self._inboxes[endpoint]
            role = self._role(endpoint)
            if timeout != 0:
                role.blocked = True
                self._changed(role)
        try:
            due, seq, msg = inbox.get(timeout=timeout)
        except queue.Empty:
            with self._lock:
                role.blocked = False
                self._changed(role)
            raise TransportTimeout(f"{endpoint}: nothing received in {timeout} s") from None
        clock = self.clock
        clock.arrived(self, msg.kind.value, due, (msg.owner, msg.batch))
        clock.watcher = role.advanced
        with self._lock:
            del role.inbox[seq]
            role.blocked = False
            if clock.now is not None:
                role.now = clock.now
            self._changed(role)
        return msg

    def _role(self, endpoint: str) -> _Role:
        role = self._roles.get(endpoint)
        if role is None:
            role = self._roles[endpoint] = _Role(self)
        return role

    def _put(self, dest: str, due: float, seq: int, msg: Message, modelled: bool = False) -> None:
        """Put ``msg`` in ``dest``'s inbox (lock held); ``modelled``: it crossed a link."""
        role = self._role(dest)
        role.inbox[seq] = due
        role.modelled = role.modelled or modelled
        self._changed(role)
        self._inboxes[dest].put((due, seq, msg))

    def _changed(self, role: _Role) -> None:
        """``role``'s clock moved (lock held): the pump may be waiting for exactly that."""
        # Only roles that could still send something keep a place among those that bound it.
        if role.promise() < math.inf:
            self._bounding.add(role)
        else:
            self._bounding.discard(role)
        if self._holding:
            self._wake.notify()

    def _horizon(self) -> float:
        """Every message any role sends from now on is due at this time or later (lock held)."""
        return min((r.promise() for r in self._bounding), default=math.inf)

    def _deliver_loop(self) -> None:
        with self._lock:
            while not self._closed:
                if not self._pending:
                    self._wake.wait()
                    continue
                due, seq, dest, msg = self._pending[0]
                delay = due - time.perf_counter()
                if delay > 0:
                    self._wake.wait(timeout=delay)
                    continue
                # A task message waits until no role can still send an earlier-due one (a thread
                # running late would otherwise reach the queue after it, out of emulated order).
                if msg.kind in TASKS and due > self._horizon() and -delay < self.MAX_HOLD_S:
                    self._holding = True
                    self._wake.wait(timeout=self.MAX_HOLD_S + delay)
                    continue
                self._holding = False
                heapq.heappop(self._pending)
                self._put(dest, due, seq, msg, modelled=True)

    def close(self) -> None:
        """Stop the delivery thread."""
        with self._lock:
            self._closed, self.keeping = True, False
            self._wake.notify()
        self._pump.join(timeout=1.0)
