"""Transports move messages between named endpoints; roles never know where their peers run.

``InProcessTransport`` hands messages between threads of one process, at once and in the order
they were sent; it only moves messages. Who runs when (``cooperative.GreenletScheduler``) and
emulated time and links (``clock.Timeline``, ``links.EmulatedLinks``) are the engine's.
"""

from __future__ import annotations

import queue
import threading
from collections import defaultdict
from typing import Protocol

from mpsl.errors import TransportTimeout
from mpsl.runtime.messages import Message


class Transport(Protocol):
    """Delivers messages to named endpoints."""

    def send(self, dest: str, msg: Message) -> None:
        """Queue ``msg`` for delivery to ``dest``; never blocks on the receiver."""

    def recv(self, endpoint: str, timeout: float | None = None) -> Message:
        """Next message for ``endpoint`` (TransportTimeout after ``timeout`` seconds)."""

    def close(self) -> None:
        """Release resources."""


class InProcessTransport:
    """Thread-safe in-memory delivery with per-link byte counts."""

    def __init__(self) -> None:
        # A C-level FIFO per endpoint, whose blocking get releases the interpreter lock, instead
        # of a Python Condition per delivery.
        self._inboxes: dict[str, queue.SimpleQueue[Message]] = defaultdict(queue.SimpleQueue)
        self._lock = threading.Lock()
        self.bytes_sent: dict[tuple[str, str], int] = defaultdict(int)

    def send(self, dest: str, msg: Message) -> None:
        """Deliver now."""
        with self._lock:
            self.bytes_sent[(msg.sender, dest)] += msg.nbytes
            inbox = self._inboxes[dest]
        inbox.put(msg)

    def recv(self, endpoint: str, timeout: float | None = None) -> Message:
        """Next message for ``endpoint``."""
        with self._lock:
            inbox = self._inboxes[endpoint]
        try:
            return inbox.get(timeout=timeout)
        except queue.Empty:
            raise TransportTimeout(f"{endpoint}: nothing received in {timeout} s") from None

    def close(self) -> None:
        """Nothing to release."""
