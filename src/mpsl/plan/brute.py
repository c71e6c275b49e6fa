"""Brute force: every node count, node order and cut list, each evaluated with the estimator itself
(pipeline_costs + closed_form.multihop) and the memory model. For tests on small instances only."""

from __future__ import annotations

import itertools

from mpsl.plan.pareto import cheapest, frontier
from mpsl.plan.problem import Objective, Problem, Solution


def all_plans(problem: Problem) -> list[Solution]:
    """Every feasible plan of the allowed sizes, exactly evaluated."""
    out = []
    inner = range(problem.first_cut + 1, problem.last_cut)
    for size in problem.sizes:
        for names in itertools.permutations(problem.names, size):
            for mid in itertools.combinations(inner, size - 1):
                cuts = (problem.first_cut, *mid, problem.last_cut)
                if problem.obstacle(names, cuts) is None:
                    est = problem.estimate(names, cuts)
                    out.append(Solution(names, cuts, problem.value(names, cuts, est), est.round_ms))
    return out


def solve_brute(
    problem: Problem, with_frontier: bool = False
) -> tuple[Solution | None, list[Solution]]:
    """The optimum (and for the cost objective the frontier) by enumeration."""
    plans = all_plans(problem)
    if problem.objective is Objective.MEMORY:  # least memory, then the shortest round
        return min(plans, key=lambda x: (x.value, x.round_ms, len(x.nodes)), default=None), []
    if problem.objective is not Objective.COST:
        return min(plans, key=lambda x: (x.value, len(x.nodes)), default=None), []
    fastest: dict[frozenset[str], Solution] = {}
    for x in plans:
        key = frozenset(x.nodes)
        if key not in fastest or x.round_ms < fastest[key].round_ms:
            fastest[key] = x
    points = list(fastest.values())
    return cheapest(points, problem.max_round_s), frontier(
        points, problem.max_round_s
    ) if with_frontier else []
