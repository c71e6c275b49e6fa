"""Where a role's tasks run: real compute, or emulation of a profiled device.

Emulation makes each task last exactly the profiled time (times a slowdown): with compute on, the
real work runs and the task is padded to that time (accuracy stays real); with compute off, the
task only waits, so large models and hundreds of data owners fit on one machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass
class Device:
    """Real compute (``times_ms`` empty) or an emulated device with per-task times.

    A sleeping thread wakes a little late; an emulated device carries that overshoot into its next
    task's wait, so its busy time over a run matches the profile instead of drifting upwards.
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

    def run(self, kind: str, fn: Callable[[], T]) -> T | None:
        """Run task ``kind``; in emulation, take exactly its profiled time."""
        if not self.emulated:
            return fn()
        start = time.perf_counter()
        result = fn() if self.compute else None
        target = self.times_ms[kind] * self.slowdown / 1000.0 - self._late_s
        remaining = target - (time.perf_counter() - start)
        if remaining > 0:
            time.sleep(remaining)
            self._late_s = max(0.0, time.perf_counter() - start - target)
        else:
            self._late_s = 0.0  # the real work overran the profile: no wake-up lateness to repay
        return result


REAL = Device()
