"""Exact combinatorial planner: branch and bound over the bottleneck values, a DP for each.

The epoch objective of a chain of N >= 2 nodes is ``const + add + W * (F + B)``: ``add`` the
additive part (compute of every part, hops, owner links of the end nodes), F / B the largest
forward / backward stage (segment or hop). F and B take values in a finite set (segment and hop
times), so the optimum is the least over caps (Lf, Lb) from that set of
``const + W * (Lf + Lb) + minsum(Lf, Lb)``, minsum the least additive part over chains whose stages
all stay within the caps (chain.run_chain, "sum" mode). It is exact: at the optimum's own maxima
the bound is met. Lower bounds (bounds.py and min-max DPs) keep the caps actually solved few.

The paper objective (F + B, no additive part) is the same search with W = 1 and no minsum.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable

import numpy as np

from mpsl.plan.bounds import candidates, element_floors
from mpsl.plan.chain import ChainResult, popcounts, run_chain, run_chains
from mpsl.plan.problem import INF, Objective, Problem, Solution

log = logging.getLogger(__name__)

Cutoff = Callable[[np.ndarray], np.ndarray]

ARITY = 2  # intervals of forward caps split in this many parts per batched min-max DP


class Search:
    """The DPs of one problem at given caps, and exact measurement of a chain."""

    def __init__(self, problem: Problem) -> None:
        pr = self.problem = problem
        self.f = np.where(pr.seg_ok, pr.seg_f, INF)
        self.b = np.where(pr.seg_ok, pr.seg_b, INF)
        self.hop = pr.hop
        paper = pr.objective is Objective.PAPER
        zeros = np.zeros(pr.n)
        self.first = zeros if paper else pr.first_c
        self.last = zeros if paper else pr.last_c
        self.const = 0.0 if paper else pr.const_ms
        self.weight = 1 if paper else pr.weight
        self.additive = not paper  # paper: F + B only
        self.max_size = max(pr.sizes)
        seg_floor, hop_floor = element_floors(self.f + self.b, self.hop, self.first, self.last)
        if paper:  # no additive part in the objective
            seg_floor, hop_floor = np.zeros_like(seg_floor), np.zeros_like(hop_floor)
        self.cf = candidates(self.f, seg_floor, self.hop, hop_floor)
        # least additive part of any chain, nodes allowed to repeat (a relaxation): a lower bound
        self.relaxed_floor = float(min(seg_floor[:, 0, :].min(), INF)) if not paper else 0.0
        self.cb = candidates(self.b, seg_floor, self.hop, hop_floor)
        self.dps = 0  # DP runs, for the log

    def total(self, lf: float, lb: float, trace: bool = False) -> ChainResult:
        """Least additive part of chains whose stages stay within (lf, lb)."""
        self.dps += 1
        seg = np.where((self.f <= lf) & (self.b <= lb), self.f + self.b, INF)
        hop = np.where(self.hop <= min(lf, lb), 2 * self.hop, INF)
        return run_chain(seg, hop, self.first, self.last, "sum", self.max_size, trace)

    def least_b(self, lf: float) -> np.ndarray:
        """Least backward bottleneck of chains whose forward stages stay within lf, per subset."""
        self.dps += 1
        seg = np.where(self.f <= lf, self.b, INF)
        hop = np.where(self.hop <= lf, self.hop, INF)
        zeros = np.zeros(self.problem.n)
        return run_chains(seg[None], hop[None], zeros, zeros, "max", self.max_size)[0]

    def least_f_and_b(self) -> tuple[np.ndarray, np.ndarray]:
        """(least F, least B) of each subset without caps, in one pass."""
        self.dps += 1
        seg, hop = np.stack([self.f, self.b]), np.stack([self.hop, self.hop])
        zeros = np.zeros(self.problem.n)
        both = run_chains(seg, hop, zeros, zeros, "max", self.max_size)
        return both[0], both[1]

    def layer_floor(self) -> tuple[float, float]:
        """Lower bounds of F and B of any chain: each layer runs on some node, alone or not."""
        i = np.arange(self.f.shape[1] - 1)
        return float(self.f[:, i, i + 1].min(axis=0).max()), float(
            self.b[:, i, i + 1].min(axis=0).max()
        )

    def measure(self, segments: list[tuple[int, int, int]]) -> tuple[float, float, float]:
        """(F, B, additive part) of a chain of (node, start, end) segments."""
        fs = [self.f[u, i, k] for u, i, k in segments]
        bs = [self.b[u, i, k] for u, i, k in segments]
        add = self.first[segments[0][0]] + self.last[segments[-1][0]] + sum(fs) + sum(bs)
        for (v, _, i), (u, _, _) in itertools.pairwise(segments):
            fs.append(self.hop[v, u, i])
            bs.append(self.hop[v, u, i])
            add += 2 * self.hop[v, u, i]
        return float(max(fs)), float(max(bs)), float(add)

    def value(self, segments: list[tuple[int, int, int]]) -> float:
        """The objective in ms (const + additive + W * (F + B)) of a chain."""
        f, b, add = self.measure(segments)
        return self.const + add + self.weight * (f + b)

    def solution(self, result: ChainResult, subset: int) -> Solution:
        """The chain of ``subset`` in ``result`` as an exactly evaluated Solution."""
        segments = result.chain(subset)
        return self.problem.solution([u for u, _, _ in segments], self.problem.cuts_of(segments))


def chain_masks(problem: Problem, per_subset: bool) -> tuple[np.ndarray, np.ndarray]:
    """Targets over subsets of >= 2 nodes of an allowed size: one per subset, or one for all.

    Returns (masks (T, 2^n) bool, subsets of each target's first member)."""
    counts = popcounts(problem.n)
    allowed = np.isin(counts, [s for s in problem.sizes if s >= 2])
    if per_subset:
        subsets = np.nonzero(allowed)[0]
        return np.arange(1 << problem.n)[None, :] == subsets[:, None], subsets
    return allowed[None, :], np.zeros(1, dtype=int)


def _times(w: float, x: np.ndarray) -> np.ndarray:
    """w * x with w * inf = inf also for w = 0 (one batch per round: no pipe-full term)."""
    return np.where(np.isfinite(x), w * np.where(np.isfinite(x), x, 0.0), INF)


def _values(masks: np.ndarray, result: ChainResult) -> np.ndarray:
    return _pick(masks, result.final)


def _pick(masks: np.ndarray, final: np.ndarray) -> np.ndarray:
    """Best value of each target (a set of final subsets) from values per subset."""
    return np.where(masks, final[None, :], INF).min(axis=1)


def _argbest(masks: np.ndarray, result: ChainResult, t: int) -> int:
    return int(np.where(masks[t], result.final, INF).argmin())


def round_search(
    search: Search, masks: np.ndarray, cutoff: Cutoff | None = None
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Least objective (ms) of each target (a set of final subsets) and the caps that reach it.

    Branch and bound over intervals of forward caps: chains whose F lies in [F_a, F_b] cost at
    least ``const + add + W * (F_a + least B with F <= F_b)``; intervals that cannot beat the best
    found are dropped, the others split (one min-max DP each) down to single caps, each then solved
    over its backward caps. ``cutoff(best)`` may lower the value each target must beat.
    """
    s, w, c = search, search.weight, search.const
    nt = masks.shape[0]
    best = np.full(nt, INF)
    caps: list[tuple[float, float]] = [(INF, INF)] * nt
    values, floors = s.cf.values, s.cf.floor
    last = len(values) - 1
    least_b: dict[int, np.ndarray] = {}  # least B with F <= values[j], per target
    # Lower bounds to start from. One target: cheap ones (uncapped DPs cost more than they save).
    # Many targets (node sets): exact per-target values from three uncapped DPs pay off.
    floor = np.full(nt, s.relaxed_floor)
    f_low, b_low = s.layer_floor()
    if nt > 1:
        if s.additive:
            r0 = s.total(INF, INF, trace=True)
            floor = _values(masks, r0)
            for t in np.nonzero(np.isfinite(floor))[0]:
                best[t] = s.value(r0.chain(_argbest(masks, r0, int(t))))
        f_free, b_free = s.least_f_and_b()
        f_min, least_b[last] = _pick(masks, f_free), _pick(masks, b_free)
        f_low = float(f_min.min())
    if not np.isfinite(f_low + b_low):
        return best, caps

    def need(j: int) -> None:
        if j not in least_b:
            least_b[j] = _pick(masks, s.least_b(float(values[j])))

    def bound(ja: int, jb: int) -> np.ndarray:
        add = np.maximum(floor, floors[ja : jb + 1].min())
        return c + add + _times(w, values[ja] + least_b.get(jb, b_low))

    def limit() -> np.ndarray:
        return best if cutoff is None else np.minimum(best, cutoff(best))

    heap = [(0.0, int(np.searchsorted(values, f_low)), last)]
    while heap:
        _, ja, jb = heapq.heappop(heap)
        if not (bound(ja, jb) < limit()).any():
            continue
        if ja == jb:
            need(ja)
            _solve_cap(s, masks, ja, least_b[ja], floor, best, caps, limit)
            continue
        # bisect (splitting in more parts with one batched DP was slower: a batch's band and
        # windows are those of its widest cap)
        mid = (ja + jb) // 2
        need(mid)
        for lo, hi in ((ja, mid), (mid + 1, jb)):
            child = bound(lo, hi)
            open_ = child < limit()
            if open_.any():
                heapq.heappush(heap, (float(child[open_].min()), lo, hi))
    return best, caps


def _solve_cap(
    s: Search,
    masks: np.ndarray,
    j: int,
    b_least: np.ndarray,
    floor: np.ndarray,
    best: np.ndarray,
    caps: list[tuple[float, float]],
    limit: Callable[[], np.ndarray],
) -> None:
    """The chains whose forward bottleneck is candidate j: improve ``best`` / ``caps`` in place."""
    w, c = s.weight, s.const
    lf = float(s.cf.values[j])
    if not s.additive:  # the least B within lf gives a chain with F + B <= lf + b_least
        for t in np.nonzero(lf + b_least < best)[0]:
            best[t], caps[t] = lf + b_least[t], (lf, float(b_least[t]))
        return
    add_low = np.maximum(floor, s.cf.floor[j])
    live = c + add_low + _times(w, lf + b_least) < limit()
    if not live.any():
        return
    r = s.total(lf, INF, trace=True)
    add_low = np.maximum(add_low, _values(masks, r))
    b_stop = np.full(len(best), INF)
    for t in np.nonzero(live)[0]:
        f, b, add = s.measure(r.chain(_argbest(masks, r, int(t))))
        b_stop[t] = b  # caps at or above b give this same chain
        if c + add + w * (f + b) < best[t]:
            best[t], caps[t] = c + add + w * (f + b), (lf, INF)
    cb = s.cb
    for jb in range(int(np.searchsorted(cb.values, b_least[live].min())), len(cb.values)):
        lb = float(cb.values[jb])
        live &= (lb < b_stop) & (c + add_low + w * (lf + lb) < limit())
        if not live.any():
            return
        low = c + np.maximum(add_low, cb.floor[jb]) + w * (lf + lb)
        now = live & (lb >= b_least) & (low < limit())
        if now.any():
            g = c + _values(masks, s.total(lf, lb)) + w * (lf + lb)
            for t in np.nonzero(now & (g < best))[0]:
                best[t], caps[t] = g[t], (lf, lb)


def rebuild(search: Search, masks: np.ndarray, t: int, cap: tuple[float, float]) -> Solution:
    """The chain the search found for target ``t`` at ``cap``, evaluated exactly."""
    result = search.total(*cap, trace=True)
    return search.solution(result, _argbest(masks, result, t))


def one_hop(problem: Problem) -> list[Solution]:
    """Every single-node plan that fits (N = 1 has its own round formula)."""
    if 1 not in problem.sizes:
        return []
    cuts = (problem.first_cut, problem.last_cut)
    return [
        problem.solution([u], cuts) for u in range(problem.n) if np.isfinite(problem.one_hop_ms(u))
    ]


def pick(solutions: list[Solution]) -> Solution | None:
    """Least value; ties: fewer nodes, then the earlier found."""
    return min(solutions, key=lambda x: (x.value, len(x.nodes)), default=None)


def solve_epoch(problem: Problem) -> Solution | None:
    """Exact least-round-time plan (epoch objective), or None when nothing fits."""
    search = Search(problem)
    found = one_hop(problem)
    if search.max_size >= 2:
        masks, _ = chain_masks(problem, per_subset=False)
        best, caps = round_search(search, masks)
        if np.isfinite(best[0]):
            found.append(rebuild(search, masks, 0, caps[0]))
    log.debug("epoch search: %d DP runs", search.dps)
    return pick(found)


def solve_paper(problem: Problem) -> Solution | None:
    """Exact least L_fwd + L_back plan (paper objective), or None when nothing fits."""
    s = Search(problem)
    masks = np.isin(popcounts(problem.n), problem.sizes)[None, :]
    best, caps = round_search(s, masks)
    log.debug("paper search: %d DP runs", s.dps)
    if not np.isfinite(best[0]):
        return None
    # among the chains within the optimal caps, the least total compute (a deterministic tie-break)
    result = s.total(*caps[0], trace=True)
    return s.solution(result, _argbest(masks, result, 0))
