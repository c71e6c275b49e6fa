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
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from mpsl.runtime.clock import Timeline
from mpsl.tasks import TaskKind

T = TypeVar("T")


@dataclass
class Device:
    """Real compute (``times_ms`` empty) or an emulated device with per-task times.

    With a ``clock`` kept by the transport the task ends exactly its profiled time after its
    emulated start (see the module docstring). Without one, a sleeping thread's overshoot is
    carried into the device's next wait, so its busy time over a run still matches the profile.
    Each role needs its own Device.
    """

    times_ms: Mapping[str, float] = field(default_factory=dict)
    compute: bool = True
    slowdown: float = 1.0
    clock: Timeline | None = None  # the run's emulated time (the engine's), when links emulate
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
        clock = self.clock
        if clock is not None and clock.kept:
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
