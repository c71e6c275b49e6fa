"""The one evaluator: assignment + per-helper task order -> start/end of every task, makespan.

Every method ends here, so all makespans are computed the same way, in continuous time. Given an
order, each task starts as early as it can: when its helper is free and the task is ready (a
forward task at its release, a backward task ``lag_ms`` after its forward task ended). For a fixed
order this semi-active schedule is the best one, since the makespan only grows with any start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mpsl.errors import ConfigError
from mpsl.schedule.scenario import Scenario
from mpsl.tasks import Order, TaskKind

Step = tuple[int, TaskKind]
"""One entry of a helper's order: (data owner, ``TaskKind.FWD`` or ``TaskKind.BWD``)."""


@dataclass(frozen=True)
class Task:
    """One task as scheduled: who, where, which, when (ms from the start of the batch)."""

    owner: int
    helper: int
    kind: TaskKind
    start_ms: float
    end_ms: float


@dataclass(frozen=True)
class Schedule:
    """A solution: assignment, timed tasks (per helper in run order), makespan, how it was found."""

    makespan_ms: float
    lower_bound_ms: float | None
    optimal: bool
    assignment: tuple[int, ...]
    tasks: tuple[Task, ...]
    method: str
    solve_ms: float = 0.0
    notes: tuple[str, ...] = field(default=())

    def helper_order(self, h: int) -> list[tuple[int, str]]:
        """The order in which helper ``h`` runs its tasks: [(owner, "fwd"|"bwd"), ...]."""
        return [(t.owner, str(t.kind)) for t in self.tasks if t.helper == h]

    def orders(self) -> dict[int, Order]:
        """Each helper's task order, as the runtime and the simulator follow it (busy helpers)."""
        return {h: Order.of(self.helper_order(h)) for h in sorted(set(self.assignment))}

    def owners_of(self, h: int) -> list[int]:
        """Data owners assigned to helper ``h``, in index order."""
        return [k for k, a in enumerate(self.assignment) if a == h]

    def to_json(self) -> dict[str, Any]:
        """The JSON form printed by ``mpsl schedule --json``."""
        return {
            "makespan_ms": self.makespan_ms,
            "lower_bound_ms": self.lower_bound_ms,
            "optimal": self.optimal,
            "assignment": list(self.assignment),
            "tasks": [
                {
                    "owner": t.owner,
                    "helper": t.helper,
                    "kind": str(t.kind),
                    "start_ms": t.start_ms,
                    "end_ms": t.end_ms,
                }
                for t in self.tasks
            ],
            "solve_ms": self.solve_ms,
            "method": self.method,
        }


def helper_times(
    sc: Scenario, h: int, order: Sequence[Step]
) -> tuple[list[float], list[float], float]:
    """Run ``order`` on helper ``h`` as early as possible: (starts, ends, last owner done)."""
    free = 0.0
    done = 0.0
    fwd_end: dict[int, float] = {}
    starts: list[float] = []
    ends: list[float] = []
    for k, kind in order:
        if kind == TaskKind.FWD:
            start = max(free, sc.release_ms[k][h])
            free = start + sc.fwd_ms[k][h]
            fwd_end[k] = free
        else:
            start = max(free, fwd_end[k] + sc.lag_ms[k][h])
            free = start + sc.bwd_ms[k][h]
            done = max(done, free + sc.tail_ms[k][h])
        starts.append(start)
        ends.append(free)
    return starts, ends, done


def check_orders(sc: Scenario, assignment: Sequence[int], orders: Sequence[Sequence[Step]]) -> None:
    """Raise ConfigError unless each helper's order runs fwd then bwd of exactly its own owners."""
    if len(assignment) != sc.num_owners:
        raise ConfigError(
            f"assignment has {len(assignment)} entries; expected {sc.num_owners} (one per owner)"
        )
    if len(orders) != sc.num_helpers:
        raise ConfigError(f"got {len(orders)} helper orders; expected {sc.num_helpers}")
    for k, h in enumerate(assignment):
        if not 0 <= h < sc.num_helpers:
            raise ConfigError(
                f"data owner {k} is assigned to helper {h}; expected 0..{sc.num_helpers - 1}"
            )
    for h, order in enumerate(orders):
        seen: dict[int, int] = {}
        for k, kind in order:
            if not 0 <= k < sc.num_owners or assignment[k] != h:
                raise ConfigError(
                    f"helper {h}'s order has a task of data owner {k}, not assigned to it"
                )
            want = TaskKind.FWD if k not in seen else TaskKind.BWD
            if kind != want or seen.get(k, 0) >= 2:
                raise ConfigError(
                    f"helper {h}'s order has {kind} of data owner {k} out of place; expected "
                    f"its fwd task once, then its bwd task once"
                )
            seen[k] = seen.get(k, 0) + 1
        missing = [k for k, a in enumerate(assignment) if a == h and seen.get(k) != 2]
        if missing:
            raise ConfigError(
                f"helper {h}'s order lacks the fwd or bwd task of data owners {missing}"
            )


def evaluate(
    sc: Scenario,
    assignment: Sequence[int],
    orders: Sequence[Sequence[Step]],
    *,
    method: str,
    lower_bound_ms: float | None = None,
    optimal: bool = False,
    solve_ms: float = 0.0,
    notes: Sequence[str] = (),
) -> Schedule:
    """Time every task of ``orders`` (one per helper) in continuous time and build the Schedule."""
    check_orders(sc, assignment, orders)
    check_memory(sc, assignment)
    tasks: list[Task] = []
    makespan = 0.0
    for h, order in enumerate(orders):
        starts, ends, done = helper_times(sc, h, order)
        tasks.extend(
            Task(k, h, TaskKind(kind), s, e)
            for (k, kind), s, e in zip(order, starts, ends, strict=True)
        )
        makespan = max(makespan, done)
    return Schedule(
        makespan_ms=makespan,
        lower_bound_ms=lower_bound_ms,
        optimal=optimal,
        assignment=tuple(int(h) for h in assignment),
        tasks=tuple(tasks),
        method=method,
        solve_ms=solve_ms,
        notes=tuple(notes),
    )


def check_memory(sc: Scenario, assignment: Sequence[int]) -> None:
    """Raise ConfigError when a helper's assigned demand exceeds its capacity."""
    used = [0] * sc.num_helpers
    for k, h in enumerate(assignment):
        used[h] += sc.demand_bytes[k]
    for h, u in enumerate(used):
        if u > sc.capacity_bytes[h]:
            raise ConfigError(
                f"helper {sc.helper_label(h)} is given {u:,} bytes of data owners but has "
                f"{sc.capacity_bytes[h]:,}; move data owners elsewhere"
            )
