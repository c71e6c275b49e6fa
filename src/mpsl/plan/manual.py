"""The manual baselines: the first N compute nodes in cluster order, and cuts a person would pick.

Two kinds (``MANUAL_KINDS``): ``balanced`` balances the load, a layer's load being its forward +
backward + optimizer time averaged over those N nodes (slowdown included), the way one splits by
hand from a profile; the cuts minimise the largest part load (a min-max partition of the chain,
solved exactly). ``equal`` gives each node the same number of layers (``split.equal_cuts``), the
way one splits without a profile. Both ignore memory and links, as by hand.
"""

from __future__ import annotations

from typing import get_args

import numpy as np

from mpsl.errors import ConfigError
from mpsl.plan.problem import INF, Problem
from mpsl.plan.types import ManualKind
from mpsl.split import equal_cuts

MANUAL_KINDS: tuple[str, ...] = get_args(ManualKind)


def layer_loads(problem: Problem, names: tuple[str, ...]) -> np.ndarray:
    """Average per-batch time (ms) of each middle layer over the nodes ``names``."""
    scale = problem.cluster.training.batch_size / problem.profile.batch_size
    loads = []
    for lp in problem.profile.layers[problem.first_cut : problem.last_cut]:
        times = []
        for name in names:
            node = problem.cluster.node(name)
            if node.device in lp.ms:
                t = lp.ms[node.device]
                times.append((t.fwd + t.bwd + t.opt) * node.slowdown * scale)
        loads.append(sum(times) / len(times) if times else INF)
    return np.array(loads)


def balanced_cuts(loads: np.ndarray, parts: int) -> list[int]:
    """Cut positions (0 < p1 < ... < M) that minimise the largest part sum; ties: earliest cuts."""
    m = len(loads)
    total = np.concatenate([[0.0], np.cumsum(loads)])
    best = np.full((parts + 1, m + 1), INF)
    back = np.zeros((parts + 1, m + 1), dtype=int)
    best[0, 0] = 0.0
    for j in range(1, parts + 1):
        for k in range(j, m + 1):
            starts = np.arange(j - 1, k)
            cand = np.maximum(best[j - 1, starts], total[k] - total[starts])
            pick = int(cand.argmin())
            best[j, k], back[j, k] = cand[pick], starts[pick]
    cuts, k = [], m
    for j in range(parts, 0, -1):
        cuts.append(k)
        k = back[j, k]
    return cuts[::-1]


def manual_plan(
    problem: Problem, size: int, kind: str = "balanced"
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(nodes, full cut list) of the ``kind`` manual split over the first ``size`` compute nodes."""
    names = problem.names[:size]
    if kind == "equal":
        return names, equal_cuts(problem.first_cut, problem.last_cut, size)
    if kind != "balanced":
        raise ConfigError(
            f"expected one of {', '.join(MANUAL_KINDS)}; got {kind!r}", field="--manual"
        )
    inner = balanced_cuts(layer_loads(problem, names), size)
    return names, (problem.first_cut, *(problem.first_cut + p for p in inner))
