"""The planning problem as a mixed-integer linear program (HiGHS through scipy.optimize.milp).

A cross-check of the combinatorial solver and the in-run baseline of the benchmark. Variables:
x[u, i, k] = 1 when node u holds positions i..k (only segments that fit and are measured);
y[v, u, i] = 1 when cut i passes from v to u (continuous: the flow constraints make it 0/1);
F and B the bottlenecks. Each node appears at most once; the chain runs from position 0 to M.
Single-node plans follow their own round formula and are enumerated instead. The memory objective
(plan/memory.py) runs two MILPs: the least largest-node memory (F bounds each node's memory), then
the epoch MILP over the segments within it.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

from mpsl.errors import MpslError
from mpsl.plan.dp import one_hop, pick
from mpsl.plan.memory import solve_memory
from mpsl.plan.pareto import MS_PER_HOUR, cheapest
from mpsl.plan.problem import INF, Objective, Problem, Solution
from mpsl.quiet import silenced

log = logging.getLogger(__name__)


class _Rows:
    """A sparse constraint matrix built row by row."""

    def __init__(self) -> None:
        self.r: list[int] = []
        self.c: list[int] = []
        self.v: list[float] = []
        self.lo: list[float] = []
        self.hi: list[float] = []

    def add(self, coefs: dict[int, float], lo: float, hi: float) -> None:
        row = len(self.lo)
        for col, val in coefs.items():
            self.r.append(row)
            self.c.append(col)
            self.v.append(val)
        self.lo.append(lo)
        self.hi.append(hi)

    def constraint(self, cols: int) -> LinearConstraint:
        a = coo_array((self.v, (self.r, self.c)), shape=(len(self.lo), cols)).tocsr()
        return LinearConstraint(a, self.lo, self.hi)


def solve_milp(problem: Problem, time_limit_s: float = 600.0) -> tuple[Solution | None, list]:
    """The optimum by MILP (plus enumerated single-node plans)."""
    pr, obj = problem, problem.objective
    if obj is Objective.MEMORY:
        return solve_memory(pr, least_memory_milp, lambda p: solve_milp(p)[0]), []
    paper = obj is Objective.PAPER
    singles = [] if paper else one_hop(pr)
    sizes = [s for s in pr.sizes if paper or s >= 2]
    chain = _chain_milp(pr, min(sizes), max(sizes), time_limit_s) if sizes else None
    found = singles + ([chain] if chain else [])
    if obj is Objective.COST:
        return cheapest(found, pr.max_round_s), []
    return pick(found), []


def least_memory_milp(problem: Problem) -> float | None:
    """M* (plan/memory.py) by MILP: the largest node memory of the plan that minimises it."""
    found = _chain_milp(problem, min(problem.sizes), max(problem.sizes), 600.0)
    return None if found is None else float(problem.largest_bytes(found.nodes, found.cuts))


def _chain_milp(pr: Problem, lo_n: int, hi_n: int, time_limit_s: float) -> Solution | None:
    memory = pr.objective is Objective.MEMORY  # F is the largest node memory; nothing else
    paper = memory or pr.objective is Objective.PAPER
    cost = pr.objective is Objective.COST
    m = pr.positions - 1
    xs = [(u, i, k) for u, i, k in zip(*np.nonzero(pr.seg_ok), strict=True)]
    ys = [(v, u, i) for v, u, i in zip(*np.nonzero(np.isfinite(pr.hop)), strict=True)]
    nx, ny = len(xs), len(ys)
    col_f, col_b = nx + ny, nx + ny + 1
    ncols = nx + ny + 2 + (pr.n if cost else 0)
    by: dict[tuple[str, int, int], list[int]] = defaultdict(list)
    for j, (u, i, k) in enumerate(xs):
        by["node", u, 0].append(j)
        by["starts", u, i].append(j)
        by["ends", u, k].append(j)
    for j, (v, u, i) in enumerate(ys):
        by["into", u, i].append(nx + j)
        by["out", v, i].append(nx + j)
        by["at", i, 0].append(nx + j)
    rows = _Rows()
    rows.add({j: 1.0 for j, (_, i, _) in enumerate(xs) if i == 0}, 1, 1)
    rows.add({j: 1.0 for j, (_, _, k) in enumerate(xs) if k == m}, 1, 1)
    rows.add({j: 1.0 for j in range(nx)}, lo_n, hi_n)
    for u in range(pr.n):
        mine = by["node", u, 0]
        rows.add(dict.fromkeys(mine, 1.0), 0, 1)
        for i in range(1, m):
            # the node entering at cut i came from one node; the node leaving goes to one node
            rows.add(
                {**dict.fromkeys(by["into", u, i], 1.0), **dict.fromkeys(by["starts", u, i], -1.0)},
                0,
                0,
            )
            rows.add(
                {**dict.fromkeys(by["out", u, i], 1.0), **dict.fromkeys(by["ends", u, i], -1.0)},
                0,
                0,
            )
        # each node holds at most one segment, so its bottleneck share is a sum
        # memory in GB: byte-sized coefficients would strain the solver's tolerances
        seg_f = pr.seg_mem / 1e9 if memory else pr.seg_f
        rows.add({col_f: 1.0, **{j: -float(seg_f[xs[j]]) for j in mine}}, 0, INF)
        rows.add({col_b: 1.0, **{j: -pr.seg_b[xs[j]] for j in mine}}, 0, INF)
    if not paper:
        for i in range(1, m):
            hops = {j: -pr.hop[ys[j - nx]] for j in by["at", i, 0]}
            rows.add({col_f: 1.0, **hops}, 0, INF)
            rows.add({col_b: 1.0, **hops}, 0, INF)
    time = np.zeros(ncols)  # the round in ms, less const_ms
    if memory:
        time[col_f] = 1.0
    elif paper:
        time[col_f] = time[col_b] = 1.0
    else:
        for j, (u, i, k) in enumerate(xs):
            time[j] = pr.seg_f[u, i, k] + pr.seg_b[u, i, k]
            time[j] += (pr.first_c[u] if i == 0 else 0.0) + (pr.last_c[u] if k == m else 0.0)
        for j, y in enumerate(ys):
            time[nx + j] = 2 * pr.hop[y]
        time[col_f] = time[col_b] = pr.weight
    c = time
    if cost:
        big = _round_bound(pr)
        for u in range(pr.n):
            # w_u >= round - big * (1 - used_u): the price of u counts only when u is used
            coefs = {int(j): -float(time[j]) for j in np.nonzero(time)[0]}
            for j in by["node", u, 0]:
                coefs[j] = coefs.get(j, 0.0) - big
            coefs[nx + ny + 2 + u] = 1.0
            rows.add(coefs, pr.const_ms - big, INF)
        if pr.max_round_s is not None:
            bound = pr.max_round_s * 1e3 - pr.const_ms
            rows.add({int(j): float(time[j]) for j in np.nonzero(time)[0]}, -INF, bound)
        c = np.zeros(ncols)
        c[nx + ny + 2 :] = pr.price / MS_PER_HOUR
    integrality = np.zeros(ncols)
    integrality[:nx] = 1
    upper = np.full(ncols, INF)
    upper[: nx + ny] = 1.0
    with silenced(1):
        res = milp(
            c,
            integrality=integrality,
            bounds=Bounds(np.zeros(ncols), upper),
            constraints=rows.constraint(ncols),
            options={"mip_rel_gap": 1e-9, "time_limit": time_limit_s},
        )
    if res.x is None:
        if res.status == 2:  # infeasible
            return None
        raise MpslError(f"the MILP ended without a plan ({res.message}), limit {time_limit_s} s")
    if res.status == 1:
        log.warning("MILP hit its time limit of %s s; the plan may not be optimal", time_limit_s)
    chosen = sorted((xs[j] for j in range(nx) if res.x[j] > 0.5), key=lambda x: x[1])
    return pr.solution([u for u, _, _ in chosen], pr.cuts_of(chosen))


def _round_bound(pr: Problem) -> float:
    """An upper bound of any plan's round time (ms): the big-M of the cost linearisation."""
    ok = pr.seg_ok
    work = np.where(ok, pr.seg_f + pr.seg_b, 0.0).max(axis=(1, 2)).sum()
    f = np.where(ok, pr.seg_f, 0.0).max()
    b = np.where(ok, pr.seg_b, 0.0).max()
    hop = np.where(np.isfinite(pr.hop), pr.hop, 0.0).max(initial=0.0)
    return float(
        pr.const_ms
        + pr.first_c.max()
        + pr.last_c.max()
        + work
        + 2 * hop * pr.positions
        + pr.weight * (f + b + 2 * hop)
        + 1.0
    )
