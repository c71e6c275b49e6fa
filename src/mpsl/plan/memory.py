"""The memory objective: the least memory on the largest compute node, then the shortest round.

Lexicographic, in two exact stages. Stage one finds M*, the least over plans that fit of the
largest node's memory: a min-max DP over the same chain as the other objectives
(``chain.run_chain`` in "max" mode, segment value = its memory on that node, hops free when the
link exists), exact because the largest of a chain's segment values is what "max" composes.
Stage two is the epoch objective restricted to segments that need at most M*: its optimum is the
fastest plan among the least-memory ones. Both stages take a solver, so the DP and the MILP each
give the whole answer independently (tests check both against brute force).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from mpsl.plan.chain import popcounts, run_chain
from mpsl.plan.problem import INF, Objective, Problem, Solution

Fastest = Callable[[Problem], Solution | None]


def least_memory(problem: Problem) -> float | None:
    """M*: the least largest-node memory (bytes) over plans that fit, by the min-max DP."""
    seg = np.where(problem.seg_ok, problem.seg_mem.astype(float), INF)
    hop = np.where(np.isfinite(problem.hop), -INF, INF)  # a hop adds no memory; no link: barred
    none = np.full(problem.n, -INF)
    result = run_chain(seg, hop, none, none, "max", max(problem.sizes), trace=False)
    allowed = np.isin(popcounts(problem.n), problem.sizes)
    best = float(np.where(allowed, result.final, INF).min())
    return best if np.isfinite(best) else None


def within_memory(problem: Problem, limit: float) -> Problem:
    """The epoch problem over the segments that need at most ``limit`` bytes on their node."""
    ok = problem.seg_ok & (problem.seg_mem <= limit)
    return dataclasses.replace(problem, objective=Objective.EPOCH, seg_ok=ok)


def solve_memory(
    problem: Problem, least: Callable[[Problem], float | None], fastest: Fastest
) -> Solution | None:
    """Least-memory plan, ties broken by the shortest round; None when nothing fits."""
    limit = least(problem)
    if limit is None:
        return None
    found = fastest(within_memory(problem, limit))
    if found is None:  # cannot happen when ``least`` is exact: the M* plan itself qualifies
        raise AssertionError(f"no plan within the least memory {limit} bytes")
    value = problem.value(found.nodes, found.cuts, problem.estimate(found.nodes, found.cuts))
    return dataclasses.replace(found, value=value)
