"""Transports move messages between named endpoints; roles never know where their peers run.

``InProcessTransport`` hands messages between threads of one process. A link model can delay
delivery (emulated rate and latency, one transfer at a time per directed link), so the same roles
run as a faithful emulation of a slow network.
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Protocol

from mpsl.runtime.messages import Message


class Transport(Protocol):
    """Delivers messages to named endpoints."""

    def send(self, dest: str, msg: Message) -> None:
        """Queue ``msg`` for delivery to ``dest``; never blocks on the receiver."""

    def recv(self, endpoint: str, timeout: float | None = None) -> Message:
        """Next message for ``endpoint`` (raises queue.Empty after ``timeout`` seconds)."""

    def close(self) -> None:
        """Release resources."""


# (sender, dest, message) -> (bits per second, latency seconds, bytes on the wire), or None for
# instantaneous delivery. It sees the message so that emulation can size what is not materialised.
LinkModel = Callable[[str, str, Message], tuple[float, float, int] | None]


class InProcessTransport:
    """Thread-safe in-memory delivery with optional link emulation and per-link byte counts."""

    def __init__(self, link_model: LinkModel | None = None) -> None:
        self._inboxes: dict[str, queue.Queue[Message]] = defaultdict(queue.Queue)
        self._lock = threading.Lock()
        self._link_model = link_model
        self._link_free_at: dict[tuple[str, str], float] = defaultdict(float)
        self.bytes_sent: dict[tuple[str, str], int] = defaultdict(int)
        self._pending: list[tuple[float, int, str, Message]] = []
        self._seq = 0
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._pump: threading.Thread | None = None
        if link_model is not None:
            self._pump = threading.Thread(target=self._deliver_loop, name="links", daemon=True)
            self._pump.start()

    def send(self, dest: str, msg: Message) -> None:
        """Deliver now, or at the emulated arrival time if the link is modelled."""
        with self._lock:
            self.bytes_sent[(msg.sender, dest)] += msg.nbytes
            link = self._link_model(msg.sender, dest, msg) if self._link_model else None
            if link is None:
                self._inboxes[dest].put(msg)
                return
            bps, latency, nbytes = link
            now = time.perf_counter()
            # A directed link carries one transfer at a time, in the order handed to it.
            start = max(now, self._link_free_at[(msg.sender, dest)])
            end = start + nbytes * 8.0 / bps
            self._link_free_at[(msg.sender, dest)] = end
            self._seq += 1
            heapq.heappush(self._pending, (end + latency, self._seq, dest, msg))
            self._wake.notify()

    def recv(self, endpoint: str, timeout: float | None = None) -> Message:
        """Next message for ``endpoint``."""
        return self._inboxes[endpoint].get(timeout=timeout)

    def _deliver_loop(self) -> None:
        with self._lock:
            while not self._closed:
                if not self._pending:
                    self._wake.wait()
                    continue
                due = self._pending[0][0]
                delay = due - time.perf_counter()
                if delay > 0:
                    self._wake.wait(timeout=delay)
                    continue
                _, _, dest, msg = heapq.heappop(self._pending)
                self._inboxes[dest].put(msg)

    def close(self) -> None:
        """Stop the delivery thread."""
        with self._lock:
            self._closed = True
            self._wake.notify()
        if self._pump is not None:
            self._pump.join(timeout=1.0)
