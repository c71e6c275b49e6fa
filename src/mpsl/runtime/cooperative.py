"""Cooperative scheduling: every role a greenlet of the calling thread, switching only to wait.

A role that asks for a message its inbox does not have yet hands the thread to the next role that
has one; nothing else ever preempts it. So the roles never contend for the interpreter lock, a
hand-over costs two greenlet switches (2 us a message in a ping-pong) instead of waking an OS
thread, and torch gives every task all the cores through its own intra-op threads. On a small
model the threaded engine's roles lose much of the second core to passing the interpreter lock
back and forth at every torch call (see docs/run.md); here the pipeline's order of tasks is the
same, only their execution is one at a time.

Two pieces with one job each: ``GreenletScheduler`` (the engine's) decides who runs;
``CooperativeTransport`` only delivers messages into inboxes and, when an inbox is empty, asks the
scheduler to run others until it is not. Time is not emulated here: a role that sleeps would stop
every role, so ``InProcessEngine`` uses threads whenever a device or a link is emulated.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable

from greenlet import getcurrent, greenlet

from mpsl.errors import TransportTimeout
from mpsl.runtime.messages import Message


class GreenletScheduler:
    """Runs roles as greenlets of one thread: a role runs until it waits for a message.

    The greenlet that creates it (the engine's, which runs the coordinator) is a role like the
    others: it gets the thread back when a message arrives for it, or when no role can run any
    more.
    """

    def __init__(self) -> None:
        self._waiting: dict[str, greenlet] = {}  # endpoint -> its greenlet, blocked in a wait
        self._ready: deque[greenlet] = deque()
        # Bound on first use: greenlets belong to the thread that makes them, which is the one
        # that runs the engine, not necessarily the one that built it.
        self._home: greenlet | None = None
        self._hub: greenlet | None = None

    def spawn(self, serve: Callable[[], None]) -> None:
        """Start ``serve`` as a role: it runs when the calling greenlet next waits."""
        if self._hub is None:
            self._home = getcurrent()
            self._hub = greenlet(self._switch_forever)
        self._ready.append(greenlet(serve, parent=self._hub))

    def wait(self, endpoint: str) -> None:
        """Let the other roles run until ``endpoint`` is woken or no role can run any more."""
        if self._hub is None:
            return  # nothing spawned: nobody could ever wake it
        self._waiting[endpoint] = getcurrent()
        self._hub.switch()
        self._waiting.pop(endpoint, None)

    def wake(self, endpoint: str) -> None:
        """``endpoint`` has a message: its role runs when the current one next waits."""
        waiting = self._waiting.pop(endpoint, None)
        if waiting is not None:
            self._ready.append(waiting)

    def finish(self) -> list[str]:
        """Let every role run until it ends or waits; the endpoints still waiting."""
        if self._ready and self._hub is not None and self._home is not None:
            self._waiting["\0finish"] = self._home
            self._hub.switch()
            self._waiting.pop("\0finish", None)
        return [e for e, g in self._waiting.items() if g is not self._home]

    def _switch_forever(self) -> None:
        # The hub: run ready roles in the order they became ready; when none is left, every role
        # waits, so the engine's greenlet gets the thread back (with nothing, if it waits too).
        while True:
            while self._ready:
                self._ready.popleft().switch()
            assert self._home is not None
            self._home.switch()


class CooperativeTransport:
    """In-memory delivery between roles of one ``GreenletScheduler``, with per-link byte counts.

    ``recv`` on an empty inbox waits through the scheduler; when it gets the thread back with the
    inbox still empty, no role can ever send it anything, and it raises ``TransportTimeout`` at
    once rather than waiting out the timeout.
    """

    def __init__(self, scheduler: GreenletScheduler) -> None:
        self.scheduler = scheduler
        self._inboxes: dict[str, deque[Message]] = defaultdict(deque)
        self.bytes_sent: dict[tuple[str, str], int] = defaultdict(int)

    def send(self, dest: str, msg: Message) -> None:
        """Deliver at once; ``dest``'s role runs when the sender next waits."""
        self.bytes_sent[(msg.sender, dest)] += msg.nbytes
        self._inboxes[dest].append(msg)
        self.scheduler.wake(dest)

    def recv(self, endpoint: str, timeout: float | None = None) -> Message:
        """Next message for ``endpoint``, letting the other roles run until there is one."""
        inbox = self._inboxes[endpoint]
        if not inbox and timeout != 0:
            self.scheduler.wait(endpoint)
        if not inbox:
            raise TransportTimeout(f"{endpoint}: no role can send it anything any more")
        return inbox.popleft()

    def close(self) -> None:
        """Nothing to release: roles still waiting are unwound when they are collected."""
