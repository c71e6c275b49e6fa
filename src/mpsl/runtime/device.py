"""Where a role's tasks run: real compute, or emulation of a profiled device.

Emulation makes each task last exactly the profiled time (times a slowdown): with compute on, the
real work runs and the task is padded to that time (accuracy stays real); with compute off, the
task only waits, so large models and hundreds of data owners fit on one machine.

Emulated time is kept on each role's own timeline (``clock.Timeline``, the engine's, handed to the
transport and to every device) when the transport emulates links and can say when each message
was due: a task starts at max(end of the role's previous task, emulated arrival of the message
that triggered it) and ends its profiled time later, whatever time the role's thread woke up.
Sleeping threads wake late (~0.1 ms on a busy machine, more when the machine stalls); on the
timeline that lateness is absorbed by the next wait instead of adding up along the pipeline, so an
emulated run follows the deployment it emulates rather than the emulating machine's thread
scheduling.

Devices of compute nodes on one machine share a ``SharedHost``: a task holds one of its cores for
its profiled time, so co-located nodes' tasks wait for each other as on the real machine.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from mpsl.runtime.clock import TaskKey, Timeline
from mpsl.tasks import TaskKind

T = TypeVar("T")


class SharedHost:
    """A machine whose ``cores`` run one emulated task each at a time, shared by devices.

    On the emulated timeline every core keeps its busy intervals, and a task takes the earliest
    gap of its length from its own start on any core. Filling gaps (rather than queueing behind the
    last claim) keeps a task that was ready earlier from waiting behind one that merely claimed its
    core first: role threads need not call in emulated order. Without a timeline the cores are a
    semaphore held while the task runs.
    """

    def __init__(self, name: str, cores: int = 1) -> None:
        if cores < 1:
            raise ValueError(f"host {name} needs at least one core; got {cores}")
        self.name, self.cores = name, cores
        self._lock = threading.Lock()
        self._busy: list[list[tuple[float, float]]] = [[] for _ in range(cores)]
        self.slots = threading.BoundedSemaphore(cores)

    @staticmethod
    def _fit(busy: list[tuple[float, float]], start: float, duration: float) -> float:
        """Earliest start >= ``start`` of a ``duration`` gap among sorted, disjoint intervals."""
        i = bisect.bisect_right(busy, (start, float("inf"))) - 1
        i = max(i, 0)
        for a, b in busy[i:]:
            if b <= start:
                continue
            if a >= start + duration:
                break
            start = b
        return start

    def claim(self, start: float, duration: float) -> float:
        """Reserve a core for ``duration`` seconds from ``start`` on; returns when it begins."""
        with self._lock:
            fits = [self._fit(busy, start, duration) for busy in self._busy]
            core = min(range(self.cores), key=lambda c: fits[c])
            bisect.insort(self._busy[core], (fits[core], fits[core] + duration))
            return fits[core]


@dataclass
class Device:
    """Real compute (``times_ms`` empty) or an emulated device with per-task times.

    With a ``clock`` kept by the transport the task ends exactly its profiled time after its
    emulated start (see the module docstring). Without one, a sleeping thread's overshoot is
    carried into the device's next wait, so its busy time over a run still matches the profile.
    Each role needs its own Device.
    """

    times_ms: Mapping[str, float] = field(default_factory=dict)
    # Times of one data owner's tasks where they differ from ``times_ms`` (a one-hop scenario
    # gives every (data owner, helper) pair its own times).
    owner_ms: Mapping[int, Mapping[str, float]] = field(default_factory=dict)
    compute: bool = True
    slowdown: float = 1.0
    clock: Timeline | None = None  # the run's emulated time (the engine's), when links emulate
    host: SharedHost | None = None  # a machine it shares with other devices
    _late_s: float = field(default=0.0, repr=False)

    @property
    def emulated(self) -> bool:
        """True when task times come from a profile."""
        return bool(self.times_ms)

    def run(self, kind: TaskKind, fn: Callable[[], T], task: TaskKey | None = None) -> T | None:
        """Run task ``kind`` (of ``task``: data owner, batch); in emulation, take exactly its
        profiled time."""
        if not self.emulated:
            return fn()
        start = time.perf_counter()
        result = fn() if self.compute else None
        spent = time.perf_counter() - start
        times = self.owner_ms.get(task[0], self.times_ms) if task is not None else self.times_ms
        duration = times.get(kind, self.times_ms[kind]) * self.slowdown / 1000.0
        clock = self.clock
        if clock is not None and clock.kept:
            # Real work that overran the profile makes the task as long as the work.
            length = max(duration, spent)
            begin = clock.begin(kind, start, task)
            if self.host is not None:
                begin = self.host.claim(begin, length)
            end = begin + length
            clock.advance(end)
            remaining = end - time.perf_counter()
            if remaining > 0:
                time.sleep(remaining)
            return result
        if self.host is not None:
            with self.host.slots:
                self._pad(start, spent, duration)
        else:
            self._pad(start, spent, duration)
        return result

    def _pad(self, start: float, spent: float, duration: float) -> None:
        """Sleep until the task has lasted ``duration`` (real time, lateness carried over)."""
        target = duration - self._late_s
        remaining = target - spent
        if remaining > 0:
            time.sleep(remaining)
            self._late_s = max(0.0, time.perf_counter() - start - target)
        else:
            self._late_s = 0.0  # the real work overran the profile: no wake-up lateness to repay


REAL = Device()
