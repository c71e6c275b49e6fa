"""The exact method: a CP-SAT model of assignment + sequencing, with a time limit.

Model (integer time in units of ``resolution_ms``): x[k,h] says data owner k is at helper h; k's
forward task starts at sf[k] and its backward task at sb[k]; per (k,h) two optional intervals of
fixed size, present iff x[k,h], and one NoOverlap per helper. Enforced by x[k,h]:
sf[k] >= release, sb[k] >= sf[k] + fwd + lag, C >= sb[k] + bwd + tail. Memory is a knapsack per
helper. Minimise C.

Rounding is made safe in both directions. Every duration is rounded down, so the integer model is a
relaxation: any continuous schedule, its starts rounded down, is feasible in it with C <=
floor(makespan / unit) (floor(a + b) >= floor(a) + floor(b)). Hence unit x the solver's bound is a
true lower bound. The solver's task order is then re-timed by the shared continuous evaluator, so
the reported makespan is exact; ``optimal`` means the solver proved its model optimal and the
continuous makespan is within ``(2K + 3) x unit`` of the bound (the most rounding can shift a
chain of one helper's tasks plus a release, a lag and a tail).
"""

from __future__ import annotations

import logging
import math
import time

from ortools.sat.python import cp_model

from mpsl.errors import InfeasibleError, MpslError
from mpsl.schedule.evaluate import Schedule, Step, evaluate
from mpsl.schedule.fast import solve_fast
from mpsl.schedule.scenario import Scenario, check_capacity, trivial_lower_bound
from mpsl.tasks import TaskKind

log = logging.getLogger(__name__)

DEFAULT_RESOLUTION_MS = 0.01
MAX_WORKERS = 2


def _units(ms: float, unit: float) -> int:
    return math.floor(ms / unit)


class _Model:
    """The CP-SAT variables of one scenario."""

    def __init__(self, sc: Scenario, unit: float, horizon: int):
        self.sc, self.unit = sc, unit
        K, H = sc.num_owners, sc.num_helpers
        m = self.m = cp_model.CpModel()
        self.x = [[m.new_bool_var(f"x{k}_{h}") for h in range(H)] for k in range(K)]
        self.sf = [m.new_int_var(0, horizon, f"sf{k}") for k in range(K)]
        self.sb = [m.new_int_var(0, horizon, f"sb{k}") for k in range(K)]
        self.c = m.new_int_var(_units(trivial_lower_bound(sc), unit), horizon, "makespan")
        for k in range(K):
            m.add_exactly_one(self.x[k])
            for h in range(H):
                if not sc.fits(k, h):
                    m.add(self.x[k][h] == 0)
        for h in range(H):
            self._helper(h)
        m.minimize(self.c)

    def _helper(self, h: int) -> None:
        sc, m, u = self.sc, self.m, self.unit
        intervals = []
        for k in range(sc.num_owners):
            x = self.x[k][h]
            p, q = _units(sc.fwd_ms[k][h], u), _units(sc.bwd_ms[k][h], u)
            intervals.append(m.new_optional_fixed_size_interval_var(self.sf[k], p, x, f"F{k}_{h}"))
            intervals.append(m.new_optional_fixed_size_interval_var(self.sb[k], q, x, f"B{k}_{h}"))
            m.add(self.sf[k] >= _units(sc.release_ms[k][h], u)).only_enforce_if(x)
            m.add(self.sb[k] >= self.sf[k] + p + _units(sc.lag_ms[k][h], u)).only_enforce_if(x)
            m.add(self.c >= self.sb[k] + q + _units(sc.tail_ms[k][h], u)).only_enforce_if(x)
        m.add_no_overlap(intervals)
        m.add(
            sum(sc.demand_bytes[k] * self.x[k][h] for k in range(sc.num_owners))
            <= sc.capacity_bytes[h]
        )

    def hint(self, s: Schedule) -> None:
        """Seed the search with ``s`` (its starts rounded down: feasible in the relaxed model)."""
        for k, a in enumerate(s.assignment):
            for h in range(self.sc.num_helpers):
                self.m.add_hint(self.x[k][h], h == a)
        for t in s.tasks:
            var = self.sf[t.owner] if t.kind == TaskKind.FWD else self.sb[t.owner]
            self.m.add_hint(var, _units(t.start_ms, self.unit))
        self.m.add_hint(self.c, _units(s.makespan_ms, self.unit))

    def orders(self, solver: cp_model.CpSolver) -> tuple[list[int], list[list[Step]]]:
        """Assignment and per-helper task order of the solver's solution."""
        sc = self.sc
        assignment = [
            next(h for h in range(sc.num_helpers) if solver.boolean_value(self.x[k][h]))
            for k in range(sc.num_owners)
        ]
        timed: list[list[tuple[int, int, int, Step]]] = [[] for _ in range(sc.num_helpers)]
        for k, h in enumerate(assignment):
            sf, sb = solver.value(self.sf[k]), solver.value(self.sb[k])
            # zero-length tasks may share a start: fwd before bwd, shorter first
            timed[h].append((sf, _units(sc.fwd_ms[k][h], self.unit), 0, (k, TaskKind.FWD)))
            timed[h].append((sb, _units(sc.bwd_ms[k][h], self.unit), 1, (k, TaskKind.BWD)))
        return assignment, [[step for *_, step in sorted(rows)] for rows in timed]


def _any_schedule_bound(sc: Scenario) -> float:
    """A makespan no semi-active schedule exceeds: all forwards, then all backwards, per helper."""
    K, H = sc.num_owners, sc.num_helpers
    worst = [max(sc.fwd_ms[k][h] + sc.bwd_ms[k][h] for h in range(H)) for k in range(K)]
    return (
        sum(worst)
        + max(max(r) for r in sc.release_ms)
        + max(max(r) for r in sc.lag_ms)
        + max(max(r) for r in sc.tail_ms)
    )


def solve_exact(
    sc: Scenario,
    *,
    time_limit_s: float = 10.0,
    hint: Schedule | None = None,
    seed: int = 0,
    resolution_ms: float = DEFAULT_RESOLUTION_MS,
    workers: int = MAX_WORKERS,
) -> Schedule:
    """CP-SAT with a time limit, seeded by ``hint`` (default: the fast method's schedule)."""
    t0 = time.perf_counter()
    check_capacity(sc)
    if hint is None:
        try:
            hint = solve_fast(sc, seed=seed)
        except InfeasibleError:  # fast's packing failed; the solver packs exactly, unhinted
            hint = None
    upper = hint.makespan_ms if hint is not None else _any_schedule_bound(sc)
    model = _Model(sc, resolution_ms, _units(upper, resolution_ms) + 1)
    if hint is not None:
        model.hint(hint)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.01, time_limit_s)
    solver.parameters.num_workers = max(1, min(workers, MAX_WORKERS))
    solver.parameters.random_seed = seed
    status = solver.solve(model.m)
    log.debug("cp-sat: %s, objective %s, bound %s", solver.status_name(status),
              solver.objective_value, solver.best_objective_bound)  # fmt: skip
    if status == cp_model.INFEASIBLE:
        raise InfeasibleError(
            f"no assignment fits the helpers' memory: demands {list(sc.demand_bytes)} bytes, "
            f"capacities {list(sc.capacity_bytes)}; add helper memory or helpers"
        )
    best = hint
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        assignment, orders = model.orders(solver)
        found = evaluate(sc, assignment, orders, method="exact")
        if best is None or found.makespan_ms < best.makespan_ms:
            best = found
    if best is None:
        raise MpslError(
            f"exact found no schedule that fits the helpers' memory within {time_limit_s:g} s "
            f"(status {solver.status_name(status)}); raise --time-limit"
        )
    bound = max(trivial_lower_bound(sc), solver.best_objective_bound * resolution_ms)
    tolerance = (2 * sc.num_owners + 3) * resolution_ms
    optimal = status == cp_model.OPTIMAL and best.makespan_ms - bound <= tolerance
    orders_of = [[(t.owner, t.kind) for t in best.tasks if t.helper == h]
                 for h in range(sc.num_helpers)]  # fmt: skip
    return evaluate(
        sc,
        best.assignment,
        orders_of,
        method="exact",
        lower_bound_ms=bound,
        optimal=optimal,
        solve_ms=(time.perf_counter() - t0) * 1000,
        notes=(f"cp-sat status {solver.status_name(status)}",),
    )
