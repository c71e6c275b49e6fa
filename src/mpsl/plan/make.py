"""make_plan: validate, solve, compare with the manual split, and package the answer as a Plan."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any, cast

from mpsl.cluster import Cluster
from mpsl.errors import ConfigError, MpslError
from mpsl.plan.brute import solve_brute
from mpsl.plan.diagnose import explain
from mpsl.plan.dp import solve_epoch, solve_paper
from mpsl.plan.manual import MANUAL_KINDS, manual_plan
from mpsl.plan.memory import least_memory, solve_memory
from mpsl.plan.milp import solve_milp
from mpsl.plan.pareto import solve_cost
from mpsl.plan.problem import UNITS, Objective, Problem, Solution, build_problem
from mpsl.plan.types import Baseline, FrontierPoint, ManualKind, Plan, PlanPart
from mpsl.profile.format import Profile

log = logging.getLogger(__name__)

Solver = Callable[[Problem, bool], tuple[Solution | None, list[Solution]]]


def _dp(problem: Problem, with_frontier: bool) -> tuple[Solution | None, list[Solution]]:
    if problem.objective is Objective.COST:
        return solve_cost(problem, with_frontier)
    if problem.objective is Objective.MEMORY:
        return solve_memory(problem, least_memory, solve_epoch), []
    solve = solve_paper if problem.objective is Objective.PAPER else solve_epoch
    return solve(problem), []


def _milp(problem: Problem, with_frontier: bool) -> tuple[Solution | None, list[Solution]]:
    if with_frontier:
        raise ConfigError("the MILP does not list the frontier; use --method dp", field="--pareto")
    return solve_milp(problem)


SOLVERS: dict[str, Solver] = {"dp": _dp, "milp": _milp, "brute": solve_brute}


def solve(
    problem: Problem, method: str = "dp", with_frontier: bool = False
) -> tuple[Solution | None, list[Solution]]:
    """The optimal Solution (None: infeasible) and, for the cost objective, the frontier."""
    if method not in SOLVERS:
        raise ConfigError(f"expected one of {', '.join(SOLVERS)}; got {method!r}", field="--method")
    best, front = SOLVERS[method](problem, with_frontier)
    limit = problem.max_round_s
    if best is not None and limit is not None and best.round_ms > limit * 1000.0:
        best = None  # the epoch objective's optimum is the fastest plan: none is fast enough
    return best, front


def make_plan(
    profile: Profile,
    cluster: Cluster,
    first_cut: int,
    last_cut: int,
    objective: str = "epoch",
    hops: int | str = "auto",
    max_round_s: float | None = None,
    *,
    method: str = "dp",
    pareto: bool = False,
    manual: str = "balanced",
) -> Plan:
    """The optimal plan (cuts and node of each middle part) for ``objective``.

    ``hops``: the number of compute nodes to use, or "auto" for the best number. ``manual``: the
    kind of manual split to compare with (``MANUAL_KINDS``). Infeasible inputs give
    ``Plan(feasible=False, reason=...)``; invalid inputs raise an MpslError.
    """
    if manual not in MANUAL_KINDS:
        raise ConfigError(
            f"expected one of {', '.join(MANUAL_KINDS)}; got {manual!r}", field="--manual"
        )
    if isinstance(hops, str) and hops != "auto":
        if not hops.isdigit():
            raise ConfigError(
                f"expected a number of compute nodes or 'auto'; got {hops!r}", field="--hops"
            )
        hops = int(hops)
    start = time.perf_counter()  # solve_ms: from the inputs to the optimal plan
    problem = build_problem(profile, cluster, first_cut, last_cut, objective, hops, max_round_s)
    best, front = solve(problem, method, pareto and problem.objective is Objective.COST)
    solve_ms = (time.perf_counter() - start) * 1000.0
    if pareto and problem.objective is not Objective.COST:
        cost = dataclasses.replace(_as(problem, Objective.COST), max_round_s=None)
        front = solve(cost, method, True)[1]
    fields: dict[str, Any] = {
        "model": profile.model,
        "num_layers": profile.num_layers,
        "objective": problem.objective.value,
        "objective_unit": UNITS[problem.objective],
        "num_data_owners": cluster.num_data_owners,
        "hops": str(hops),
        "method": method,
        "solve_ms": solve_ms,
        "frontier": [_point(x) for x in front] if pareto else None,
        "manual": _baseline(
            problem, len(best.nodes) if best else max(problem.sizes), best, cast(ManualKind, manual)
        ),
    }
    if best is None:
        return Plan.model_validate({**fields, "feasible": False, "reason": _reason(problem)})
    est = problem.estimate(best.nodes, best.cuts)
    log.info(
        "plan %s: cuts %s on %s, %s = %.6g",
        profile.model,
        best.cuts,
        best.nodes,
        problem.objective.value,
        best.value,
    )
    return Plan.model_validate(
        {
            **fields,
            "feasible": True,
            "cuts": list(best.cuts),
            "parts": [
                PlanPart(node=name, first_layer=lo + 1, last_layer=hi)
                for name, lo, hi in zip(best.nodes, best.cuts, best.cuts[1:], strict=False)
            ],
            "objective_value": best.value,
            "predicted": {"round_s": est.round_s, **{f"{k}_ms": v for k, v in est.terms.items()}},
            "memory_bytes": _memory(problem, best.nodes, best.cuts),
            "memory_unbudgeted_bytes": _unbudgeted(problem, best.nodes, best.cuts),
        }
    )


def _as(problem: Problem, objective: Objective) -> Problem:
    """The same instance under another objective (arrays rebuilt: memory and hops differ)."""
    hops: int | str = problem.sizes[0] if len(problem.sizes) == 1 else "auto"
    return build_problem(
        problem.profile,
        problem.cluster,
        problem.first_cut,
        problem.last_cut,
        objective,
        hops,
        problem.max_round_s,
    )


def _reason(problem: Problem) -> str:
    fastest = None
    if problem.max_round_s is not None:
        epoch = dataclasses.replace(_as(problem, Objective.EPOCH), max_round_s=None)
        found = solve_epoch(epoch)
        fastest = found.round_ms if found else None
    return explain(problem, fastest)


def _memory(problem: Problem, names: tuple[str, ...], cuts: tuple[int, ...]) -> dict[str, int]:
    return {
        name: problem.node_need_bytes(name, lo + 1, hi)
        for name, lo, hi in zip(names, cuts, cuts[1:], strict=False)
    }


def _unbudgeted(
    problem: Problem, names: tuple[str, ...], cuts: tuple[int, ...]
) -> dict[str, int] | None:
    """Memory per node with every instance resident; None when no node of the plan has a
    budget (then it equals memory_bytes)."""
    if all(problem.cluster.node(name).memory_budget_bytes is None for name in names):
        return None
    return {
        name: problem.need_bytes(lo + 1, hi)
        for name, lo, hi in zip(names, cuts, cuts[1:], strict=False)
    }


def _point(x: Solution) -> FrontierPoint:
    return FrontierPoint(
        nodes=list(x.nodes), cuts=list(x.cuts), round_s=x.round_ms / 1000.0, cost=x.value
    )


def _baseline(problem: Problem, size: int, best: Solution | None, kind: ManualKind) -> Baseline:
    """The ``kind`` manual split with as many nodes as the plan, evaluated the same way."""
    names, cuts = manual_plan(problem, size, kind)
    obstacle = problem.obstacle(names, cuts)
    memory = _memory(problem, names, cuts)
    if obstacle and "not measured" in obstacle:
        return Baseline(
            kind=kind,
            cuts=list(cuts),
            nodes=list(names),
            runnable=False,
            reason=obstacle,
            memory_bytes=memory,
        )
    try:
        est = problem.estimate(names, cuts)
    except MpslError as exc:  # e.g. a layer not measured on a node's device
        return Baseline(
            kind=kind, cuts=list(cuts), nodes=list(names), runnable=False, reason=str(exc)
        )
    value = problem.value(names, cuts, est)
    gain = None
    if best is not None and value > 0:
        gain = 100.0 * (value - best.value) / value
    return Baseline(
        kind=kind,
        cuts=list(cuts),
        nodes=list(names),
        runnable=obstacle is None,
        reason=obstacle,
        objective_value=value,
        round_s=est.round_s,
        memory_bytes=memory,
        gain_pct=gain,
    )
