"""Where a role's tasks run: real compute, or emulation of a profiled device.

Emulation makes each task last exactly the profiled time (times a slowdown): with compute on, the
real work runs and the task is padded to that time (accuracy stays real); with compute off, the
task only waits, so large models and hundreds of data owners fit on one machine.

Emulated time is kept on each role's own timeline (``Timeline``) when the transport emulates links
and can say when each message was due: a task starts at max(end of the role's previous task,
emulated arrival of the message that triggered it) and ends its profiled time later, whatever time
the role's thread actually woke up. Sleeping threads wake late (~0.1 ms on a busy machine, more
when the machine stalls); on the timeline that lateness is absorbed by the next wait instead of
adding up along the pipeline, so an emulated run follows the deployment it emulates rather than the
emulating machine's thread scheduling.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from mpsl.tasks import TaskKind

T = TypeVar("T")

# The message kind (``Kind.value``) whose arrival starts each task kind of the roles. A task kind
# not listed (a data owner's first-part forward) follows the role's previous task directly.
TRIGGER = {
    TaskKind.FWD: "activation",
    TaskKind.BWD: "gradient",
    TaskKind.LAST: "activation",
    TaskKind.FIRST_BWD: "gradient",
}


class Keeper(Protocol):
    """A transport that keeps threads' timelines (``InProcessTransport`` with a link model)."""

    keeping: bool  # False once closed: its threads' timelines are stale


class Timeline(threading.local):
    """The calling thread's emulated clock (``perf_counter`` seconds) and pending arrivals.

    A transport that knows when each message was due (``InProcessTransport``) calls ``arrived``
    for every message it hands to this thread; ``Device.run`` reads and advances the clock and
    tells the transport's ``watcher``. Task messages are matched to tasks in arrival order per
    kind, which is the order in which the ``fifo`` and ``backward-first`` queues run them. The
    clock belongs to one transport (``keeper``): a thread that serves another starts afresh.
    """

    def __init__(self) -> None:
        self._reset(None)

    def _reset(self, keeper: Keeper | None) -> None:
        self.keeper = keeper  # the transport that reports arrivals to this thread
        self.emulating = False  # this thread runs an emulated device: its sends use ``now``
        self.now: float | None = None
        self.pending: dict[str, deque[float]] = {}
        self.watcher: Callable[[float], None] | None = None  # told each new ``now`` of a task

    @property
    def kept(self) -> bool:
        """Whether a transport still reports arrivals to this thread."""
        return self.keeper is not None and self.keeper.keeping

    def arrived(self, keeper: Keeper, kind: str, due: float) -> None:
        """``keeper`` handed this thread a message of ``kind``; in the emulated deployment it came
        at ``due``."""
        if self.keeper is not keeper:
            self._reset(keeper)
        if kind in ("activation", "gradient"):
            self.pending.setdefault(kind, deque()).append(due)
        elif self.now is None or due > self.now:
            self.now = due  # control messages (round start) move the role's clock on

    def send_time(self, keeper: Keeper) -> float:
        """When this thread hands a message to ``keeper``, in emulated time if it emulates."""
        if self.keeper is keeper and self.emulating and self.now is not None:
            return self.now
        return time.perf_counter()

    def begin(self, kind: TaskKind, fallback: float) -> float:
        """Emulated start of a task of ``kind``: after the previous task and its trigger."""
        trigger = TRIGGER.get(kind)
        arrivals = self.pending.get(trigger) if trigger else None
        if trigger is not None:
            start = arrivals.popleft() if arrivals else fallback
        else:
            start = self.now if self.now is not None else fallback
        return start if self.now is None else max(self.now, start)

    def advance(self, end: float) -> None:
        """A task of this thread's emulated device ends at ``end``: its sends come no earlier."""
        self.now, self.emulating = end, True
        if self.watcher is not None:
            self.watcher(end)


TIMELINE = Timeline()


@dataclass
class Device:
    """Real compute (``times_ms`` empty) or an emulated device with per-task times.

    With a timeline-keeping transport the task ends exactly its profiled time after its emulated
    start (see the module docstring). Without one, a sleeping thread's overshoot is carried into
    the device's next wait, so its busy time over a run still matches the profile.
    Each role needs its own Device.
    """

    times_ms: Mapping[str, float] = field(default_factory=dict)
    compute: bool = True
    slowdown: float = 1.0
    _late_s: float = field(default=0.0, repr=False)

    @property
    def emulated(self) -> bool:
        """True when task times come from a profile."""
        return bool(self.times_ms)

    def run(self, kind: TaskKind, fn: Callable[[], T]) -> T | None:
        """Run task ``kind``; in emulation, take exactly its profiled time."""
        if not self.emulated:
            return fn()
        start = time.perf_counter()
        result = fn() if self.compute else None
        spent = time.perf_counter() - start
        duration = self.times_ms[kind] * self.slowdown / 1000.0
        clock = TIMELINE
        if clock.kept:
            # Real work that overran the profile makes the task as long as the work.
            end = clock.begin(kind, start) + max(duration, spent)
            clock.advance(end)
            remaining = end - time.perf_counter()
            if remaining > 0:
                time.sleep(remaining)
            return result
        target = duration - self._late_s
        remaining = target - spent
        if remaining > 0:
            time.sleep(remaining)
            self._late_s = max(0.0, time.perf_counter() - start - target)
        else:
            self._late_s = 0.0  # the real work overran the profile: no wake-up lateness to repay
        return result


REAL = Device()
