"""Emulated time: each role thread's clock in the deployment being emulated.

The in-process engine owns one ``Timeline`` per emulated run and hands it to the transport (which
stamps every delivery with the time it was due over the emulated links) and to every ``Device``
(which starts a task at max(end of the role's previous task, emulated arrival of its trigger) and
ends it its profiled time later). Nothing else reads it: the transport moves messages, the device
times tasks, the clock is the engine's.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from mpsl.tasks import TaskKind

# The message kind (``Kind.value``) whose arrival starts each task kind of the roles. A task kind
# not listed (a data owner's first-part forward) follows the role's previous task directly.
TRIGGER = {
    TaskKind.FWD: "activation",
    TaskKind.BWD: "gradient",
    TaskKind.LAST: "activation",
    TaskKind.FIRST_BWD: "gradient",
}


TaskKey = tuple[int, int]
"""(data owner, batch): the task a message triggers."""


Arrivals = deque[tuple[TaskKey | None, float]]
"""Messages of one kind a thread received and has not run yet: (task, due time)."""


def _take(arrivals: Arrivals | None, task: TaskKey | None) -> float | None:
    """Remove and return the due time of ``task``'s arrival (the oldest one without a key)."""
    if not arrivals:
        return None
    if task is not None:
        for i, (key, due) in enumerate(arrivals):
            if key == task:
                del arrivals[i]
                return due
    return arrivals.popleft()[1]


class Keeper(Protocol):
    """A transport that keeps threads' timelines (``links.EmulatedLinks``)."""

    keeping: bool  # False once closed: its threads' timelines are stale


class Timeline(threading.local):
    """The calling thread's emulated clock (``perf_counter`` seconds) and pending arrivals.

    A transport that knows when each message was due (``links.EmulatedLinks``) calls ``arrived``
    for every message it hands to this thread; ``Device.run`` reads and advances the clock and
    tells the transport's ``watcher``. A task message is matched to the task it triggers by its
    (data owner, batch) ``task`` key, since a node may run its waiting tasks in another order
    than they came (a prescribed order, or resident instances first under a memory budget); a
    task without a key takes the oldest arrival of its kind. The clock belongs to one transport
    (``keeper``): a thread that serves another starts afresh.
    """

    def __init__(self) -> None:
        self._reset(None)

    def _reset(self, keeper: Keeper | None) -> None:
        self.keeper = keeper  # the transport that reports arrivals to this thread
        self.emulating = False  # this thread runs an emulated device: its sends use ``now``
        self.now: float | None = None
        self.pending: dict[str, Arrivals] = {}
        self.watcher: Callable[[float], None] | None = None  # told each new ``now`` of a task

    @property
    def kept(self) -> bool:
        """Whether a transport still reports arrivals to this thread."""
        return self.keeper is not None and self.keeper.keeping

    def arrived(self, keeper: Keeper, kind: str, due: float, task: TaskKey | None = None) -> None:
        """``keeper`` handed this thread a message of ``kind`` (for ``task``, when known); in the
        emulated deployment it came at ``due``."""
        if self.keeper is not keeper:
            self._reset(keeper)
        if kind in ("activation", "gradient"):
            self.pending.setdefault(kind, deque()).append((task, due))
        elif self.now is None or due > self.now:
            self.now = due  # control messages (round start) move the role's clock on

    def send_time(self, keeper: Keeper) -> float:
        """When this thread hands a message to ``keeper``, in emulated time if it emulates."""
        if self.keeper is keeper and self.emulating and self.now is not None:
            return self.now
        return time.perf_counter()

    def begin(self, kind: TaskKind, fallback: float, task: TaskKey | None = None) -> float:
        """Emulated start of a task of ``kind`` (for ``task``, when known): after the previous
        task and its trigger."""
        trigger = TRIGGER.get(kind)
        if trigger is not None:
            due = _take(self.pending.get(trigger), task)
            start = due if due is not None else fallback
        else:
            start = self.now if self.now is not None else fallback
        return start if self.now is None else max(self.now, start)

    def advance(self, end: float) -> None:
        """A task of this thread's emulated device ends at ``end``: its sends come no earlier."""
        self.now, self.emulating = end, True
        if self.watcher is not None:
            self.watcher(end)
