"""Transports move messages between named endpoints; roles never know where their peers run.

``InProcessTransport`` hands messages between threads of one process, at once and in the order
they were sent; it only moves messages. Who runs when (``cooperative.GreenletScheduler``) and
emulated time and links (``clock.Timeline``, ``links.EmulatedLinks``) are the engine's.
"""

from __future__ import annotations

import queue
import threading
from collections import defaultdict
from collections.abc import Callable
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


class CountingTransport(Transport, Protocol):
    """A transport that counts the bytes sent on each (sender, destination) link."""

    bytes_sent: dict[tuple[str, str], int]


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


Observer = Callable[[str, Message], None]
"""Sees every message handed to a transport, with its destination, before it is delivered."""


class Observed:
    """A transport whose every send is first shown to an observer (a privacy audit's recorder).

    The observer sees exactly what the destination will receive, on the roles' own send path; it
    must not change the message (tensors are the sender's: copy what you keep).
    """

    def __init__(self, inner: CountingTransport, observer: Observer) -> None:
        self.inner = inner
        self.observer = observer
        self.bytes_sent = inner.bytes_sent  # the same dict: the inner transport counts

    def send(self, dest: str, msg: Message) -> None:
        """Show ``msg`` to the observer, then send it."""
        self.observer(dest, msg)
        self.inner.send(dest, msg)

    def recv(self, endpoint: str, timeout: float | None = None) -> Message:
        """The inner transport's next message for ``endpoint``."""
        return self.inner.recv(endpoint, timeout)

    def close(self) -> None:
        """Close the inner transport."""
        self.inner.close()
