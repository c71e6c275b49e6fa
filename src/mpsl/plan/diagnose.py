"""Why no plan exists: the plan that comes closest to fitting in memory, and its worst node.

A min-max DP over the same chain (chain.run_chain) minimises the largest memory shortfall
(need - memory_bytes) over all measured chains of the allowed sizes: if even that chain is short,
no plan fits, and its worst node and shortfall are the most useful thing to tell the user.
"""

from __future__ import annotations

import numpy as np

from mpsl.plan.chain import popcounts, run_chain
from mpsl.plan.problem import INF, Problem, gb


def _sizes_text(problem: Problem) -> str:
    if len(problem.sizes) == 1:
        n = problem.sizes[0]
        return f"{n} compute node{'s' if n > 1 else ''}"
    return f"1..{max(problem.sizes)} compute nodes"


def unmeasured_layers(problem: Problem) -> list[int]:
    """Middle layers that no compute node's device has a timing for."""
    devices = {node.device for node in problem.cluster.compute_nodes}
    return [
        i
        for i in range(problem.first_cut + 1, problem.last_cut + 1)
        if not devices & set(problem.profile.layers[i - 1].ms)
    ]


def memory_reason(problem: Problem) -> str | None:
    """The reason no chain fits in memory, or None when some chain does."""
    short = np.where(problem.measured, problem.seg_mem - problem.memory[:, None, None], INF)
    hop = np.where(np.isfinite(problem.hop), -INF, INF)
    none = np.full(problem.n, -INF)
    result = run_chain(short, hop, none, none, "max", max(problem.sizes))
    allowed = np.isin(popcounts(problem.n), problem.sizes)
    final = np.where(allowed, result.final, INF)
    subset = int(final.argmin())
    where = f"layers {problem.first_cut + 1}..{problem.last_cut}"
    if not np.isfinite(final[subset]):
        missing = unmeasured_layers(problem)
        if missing:
            return (
                f"no compute node can run layer(s) {missing}: no timing on any compute node's "
                f"device in the profile; profile those layers or move the cuts"
            )
        return (
            f"no chain of {_sizes_text(problem)} covers {where} with measured timings; "
            f"profile the missing layers or allow other node counts (--hops)"
        )
    if final[subset] <= 0:
        return None
    segments = result.chain(subset)
    worst = max(segments, key=lambda s: short[s])
    u, i, k = worst
    name, first, last = problem.names[u], problem.first_cut + i + 1, problem.first_cut + k
    need = int(problem.seg_mem[u, i, k])
    cuts = problem.cuts_of(segments)
    return (
        f"no plan with {_sizes_text(problem)} fits in memory for {problem.num_owners} data owners "
        f"({where}): the closest plan (cuts {list(cuts)}) still needs {gb(need)} on node "
        f"'{name}' for layers {first}..{last}, which has {gb(problem.memory[u])}: short by "
        f"{gb(need - problem.memory[u])}; give '{name}' more memory or a memory_budget_bytes, "
        f"allow more compute nodes (--hops), or plan for fewer data owners"
    )


def explain(problem: Problem, fastest_round_ms: float | None = None) -> str:
    """The reason of an infeasible problem, for Plan.reason."""
    reason = memory_reason(problem)
    if reason:
        return reason
    if problem.max_round_s is not None:
        got = (
            f"the fastest plan that fits takes {fastest_round_ms / 1000:.3f} s"
            if fastest_round_ms is not None
            else "no plan that fits is that fast"
        )
        return (
            f"no plan meets --max-round-s {problem.max_round_s}: {got}; "
            f"raise the limit or add faster compute nodes"
        )
    return "no plan satisfies the constraints"
