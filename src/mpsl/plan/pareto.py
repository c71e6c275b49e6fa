"""The cost objective and the time/cost frontier.

All nodes of a plan are rented for the whole round, so a plan using the node set S costs
``sum(price_per_hour over S) x round time``. For a fixed S the cheapest plan is its fastest, so the
answer is the least over sets S of ``price(S) x T*(S)``, T*(S) the least round time using exactly S,
and the frontier lies among the points (T*(S), cost(S)). ``dp.round_search`` finds T*(S) for all
sets at once (one target per set); sets that cannot beat the best cost found are dropped early.
"""

from __future__ import annotations

import logging

import numpy as np

from mpsl.plan.chain import popcounts
from mpsl.plan.dp import Search, chain_masks, one_hop, rebuild, round_search
from mpsl.plan.problem import INF, Problem, Solution

log = logging.getLogger(__name__)

MS_PER_HOUR = 3.6e6


def frontier(points: list[Solution], max_round_s: float | None = None) -> list[Solution]:
    """The non-dominated (round time, cost) points within ``max_round_s``, fastest first;
    ties: fewer nodes."""
    limit = INF if max_round_s is None else max_round_s * 1000.0
    ordered = sorted(
        (x for x in points if x.round_ms <= limit),
        key=lambda x: (x.round_ms, x.value, len(x.nodes)),
    )
    out: list[Solution] = []
    for point in ordered:
        if not out or point.value < out[-1].value:
            out.append(point)
    return out


def cheapest(points: list[Solution], max_round_s: float | None) -> Solution | None:
    """The least cost among ``points`` within ``max_round_s``; ties: faster, then fewer nodes."""
    limit = INF if max_round_s is None else max_round_s * 1000.0
    within = [x for x in points if x.round_ms <= limit]
    return min(within, key=lambda x: (x.value, x.round_ms, len(x.nodes)), default=None)


def solve_cost(
    problem: Problem, with_frontier: bool = False
) -> tuple[Solution | None, list[Solution]]:
    """Exact cheapest plan meeting ``problem.max_round_s``, and the frontier if asked for."""
    search = Search(problem)
    singles = one_hop(problem)
    limit = INF if problem.max_round_s is None else problem.max_round_s * 1000.0
    points = list(singles)
    if search.max_size >= 2:
        masks, subsets = chain_masks(problem, per_subset=True)
        bits = (subsets[:, None] >> np.arange(problem.n)[None, :]) & 1
        hourly = bits @ problem.price
        single_best = min((x.value for x in singles if x.round_ms <= limit), default=INF)

        def cutoff(best: np.ndarray) -> np.ndarray:
            """Round time (ms) each node set must beat to matter: within the limit and, unless
            the whole frontier is wanted, cheaper than the cheapest plan found so far."""
            within = np.nextafter(limit, INF)
            if with_frontier:
                return np.full(len(best), within)
            ok = np.isfinite(best) & (best <= limit)
            found = (hourly[ok] * best[ok] / MS_PER_HOUR).min(initial=INF)
            incumbent = np.nextafter(min(single_best, float(found)), INF)  # keep equal costs
            with np.errstate(divide="ignore", invalid="ignore"):
                beat = np.where(hourly > 0, incumbent * MS_PER_HOUR / hourly, INF)
            return np.minimum(within, beat)

        best, caps = round_search(search, masks, cutoff)
        costs = np.where(np.isfinite(best), hourly * np.where(np.isfinite(best), best, 0), INF)
        costs = costs / MS_PER_HOUR
        log.debug("cost search: %d DP runs for %d node sets", search.dps, len(subsets))
        wanted = np.isfinite(best)
        if not with_frontier:
            # only the cheapest set within the limit needs its chain rebuilt
            ok = np.nonzero(wanted & (best <= limit))[0]
            keys = [(costs[t], best[t], int(bits[t].sum()), t) for t in ok]
            wanted[:] = False
            if keys and min(keys)[0] <= single_best:
                wanted[min(keys)[3]] = True
        for t in np.nonzero(wanted)[0]:
            points.append(rebuild(search, masks, int(t), caps[t]))
    chosen = cheapest(points, problem.max_round_s)
    return chosen, frontier(points, problem.max_round_s) if with_frontier else []


def subset_count(problem: Problem) -> int:
    """How many node sets the cost search considers (for the log and the benchmark)."""
    return int(np.isin(popcounts(problem.n), problem.sizes).sum())
