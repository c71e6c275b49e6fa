"""Dynamic programming over the layer chain and the subsets of compute nodes used so far.

State (S, v, k): the nodes in S cover the middle layers up to position k, node v (in S) holding the
segment that ends at k. Adding node u (not in S) for the segment (k, k') costs
``hop[v, u, k] (+) seg[u, k, k']``, where (+) is + (min-sum) or max (min-max). Because node order
is free and nodes are heterogeneous, S must be a set, not a count: 2^n * n * P states, each
transition a min over the previous node and the previous cut, done level by level (|S| = 1, 2, ...)
with numpy. A state (T, u) has exactly one predecessor subset T \\ {u}, so each level writes its
states once. Only segments with a finite value are kept (a band of widths), and only positions from
which a chain can still be completed (windows): under tight caps both are small.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np

Mode = Literal["sum", "max"]


@dataclass(frozen=True)
class Level:
    """The subsets of one size and, for each (subset, node not in it), the subset it leads to."""

    subsets: np.ndarray  # (C,)
    rows: np.ndarray  # (E,) index of the subset of each extension
    nodes: np.ndarray  # (E,) the node added
    targets: np.ndarray  # (E,) subset | 1 << node


@functools.lru_cache(maxsize=16)
def levels(n: int) -> tuple[Level, ...]:
    """Subsets of n nodes grouped by size (index = size; entry 0 is empty)."""
    all_sets = np.arange(1 << n)
    bits = (all_sets[:, None] >> np.arange(n)[None, :]) & 1
    sizes = bits.sum(axis=1)
    out = [Level(*(np.zeros(0, int),) * 4)]
    for p in range(1, n + 1):
        subs = all_sets[sizes == p]
        rows, nodes = np.nonzero(bits[subs] == 0)
        out.append(Level(subs, rows, nodes, subs[rows] | (1 << nodes)))
    return tuple(out)


def popcounts(n: int) -> np.ndarray:
    """Number of nodes in each subset 0 .. 2^n - 1."""
    all_sets = np.arange(1 << n)
    return ((all_sets[:, None] >> np.arange(n)[None, :]) & 1).sum(axis=1)


@dataclass(frozen=True, eq=False)
class ChainResult:
    """Best value per final subset, and back-pointers to rebuild the chain."""

    final: np.ndarray  # (2^n,) best value over chains that use exactly the subset, inf: none
    final_node: np.ndarray  # (2^n,) last node of that chain
    prev_pos: np.ndarray  # (2^n, n, P) where the segment ending at (T, u, k) starts
    prev_node: np.ndarray  # (2^n, n, P) the node before u in that chain
    positions: int

    def chain(self, subset: int) -> list[tuple[int, int, int]]:
        """(node, start, end) of each segment of the best chain using exactly ``subset``."""
        u, k, t = int(self.final_node[subset]), self.positions - 1, subset
        segments = []
        while True:
            last = t & (t - 1) == 0
            i = 0 if last else int(self.prev_pos[t, u, k])
            segments.append((u, i, k))
            if last:
                return segments[::-1]
            t, u, k = t ^ (1 << u), int(self.prev_node[t, u, k]), i


def run_chain(
    seg: np.ndarray,
    hop: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    mode: Mode,
    max_size: int,
    trace: bool = True,
) -> ChainResult:
    """Best chain value for every subset of nodes of size <= ``max_size``.

    ``seg[u, i, k]``: value of node u hosting positions i..k (inf: not allowed);
    ``hop[v, u, i]``: value of passing cut i from v to u; ``first[u]`` / ``last[u]``: added when u
    holds the first / last segment. A chain's value combines all of these by ``mode``.
    ``trace=False`` skips the back-pointers (values only, faster).
    """
    final, final_node, prev_pos, prev_node = _run(
        seg[None], hop[None], first, last, mode, max_size, trace
    )
    p = seg.shape[1]
    return ChainResult(final[0], final_node[0], prev_pos[0], prev_node[0], p)


def run_chains(
    seg: np.ndarray, hop: np.ndarray, first: np.ndarray, last: np.ndarray, mode: Mode, max_size: int
) -> np.ndarray:
    """Values only, for a batch of DPs of the same shape in one pass: ``seg`` (batch, n, P, P),
    ``hop`` (batch, n, n, P); returns (batch, 2^n)."""
    return _run(seg, hop, first, last, mode, max_size, False)[0]


def _run(
    seg: np.ndarray,
    hop: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    mode: Mode,
    max_size: int,
    trace: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    comb = np.add if mode == "sum" else np.maximum
    bt, n, p, _ = seg.shape
    size = 1 << n
    d = np.full((bt, size, n, p), np.inf)
    keep = (bt, size, n, p) if trace else (bt, 0, n, p)
    prev_pos = np.zeros(keep, dtype=np.int16)
    prev_node = np.zeros(keep, dtype=np.int8)
    nodes = np.arange(n)
    band, back = _band(seg)  # (batch, u, k, w): segment of w + 1 positions ending at k
    window = _windows(seg, n)
    lo, hi = window[1]
    d[:, 1 << nodes, nodes, lo : hi + 1] = comb(first[None, :, None], seg[:, :, 0, lo : hi + 1])
    shared = _shared_hops(hop)
    for size_now, lvl in enumerate(levels(n)[1:max_size], 1):
        lo, hi = window[size_now + 1]
        here = d[:, lvl.subsets]  # (batch, C, v, P)
        if lo > hi or not np.isfinite(here[..., 1 : p - 1]).any():
            break
        ks = slice(lo, hi + 1)
        # cross cut i from the previous node v to the new node u, then u holds i..k
        if shared is not None:
            enter = comb(here.min(axis=2), shared[:, None, :])  # (batch, C, P): same for all u
            span = comb(enter[:, :, None, back[ks]], band[:, None, :, ks])  # (batch, C, u, k, w)
        else:
            via = comb(here.transpose(0, 1, 3, 2)[:, :, None], hop.transpose(0, 2, 3, 1)[:, None])
            span = comb(via.min(axis=4)[:, :, :, back[ks]], band[:, None, :, ks])  # via: .., v)
        rows, added, targets = lvl.rows, lvl.nodes, lvl.targets
        d[:, targets, added, ks] = span.min(axis=4)[:, rows, added]
        if trace:
            best_i = back[np.arange(lo, hi + 1), span[:, rows, added].argmin(axis=3)]  # (., E, k)
            if shared is not None:
                best_v = _last_argmin(here, axis=2)[:, rows]  # (batch, E, P)
            else:
                best_v = _last_argmin(via, axis=4)[:, rows, added]
            prev_pos[:, targets, added, ks] = best_i
            prev_node[:, targets, added, ks] = np.take_along_axis(best_v, best_i, axis=2)
    ends = comb(d[:, :, :, p - 1], last[None, None, :])  # (batch, 2^n, n)
    final_node = _last_argmin(ends, axis=2)
    final = np.take_along_axis(ends, final_node[..., None], axis=2)[..., 0]
    return final, final_node, prev_pos, prev_node


def _last_argmin(x: np.ndarray, axis: int) -> np.ndarray:
    """argmin preferring the highest index on ties: among identical nodes the chain, rebuilt from
    its end, then runs in cluster order."""
    flipped = np.flip(x, axis=axis).argmin(axis=axis)
    return x.shape[axis] - 1 - flipped


def _windows(seg: np.ndarray, n: int) -> list[tuple[int, int]]:
    """For each number of nodes used, the positions a chain can reach and still be completed:
    the nodes' longest allowed segments bound how far s nodes get and how much the others cover.
    Dropping the other states changes no result and saves most of the work under tight caps."""
    m = seg.shape[-1] - 1
    finite = np.isfinite(seg).any(axis=0)  # (n, P, P)
    span = np.arange(m + 1)[None, :] - np.arange(m + 1)[:, None]
    longest = np.where(finite, span[None], 0).max(axis=(1, 2))
    top = np.concatenate([[0], np.cumsum(np.sort(longest)[::-1])])
    return [(max(s, m - int(top[n - s])), min(m, int(top[s]))) for s in range(n + 1)]


def _band(seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Only segments with a finite value matter, and tight caps allow only short ones: keep
    seg[.., u, k - w - 1, k] for w below the longest allowed segment, and the start positions."""
    p = seg.shape[-1]
    ii, kk = np.nonzero(np.isfinite(seg).any(axis=(0, 1)))
    width = int((kk - ii).max()) if len(ii) else 1
    k = np.arange(p)[:, None]
    start = k - 1 - np.arange(width)[None, :]  # (k, w)
    band = np.where(start >= 0, seg[:, :, np.maximum(start, 0), k], np.inf)
    return band, np.maximum(start, 0)


def _shared_hops(hop: np.ndarray) -> np.ndarray | None:
    """hop[.., i] when every cut costs the same whichever two nodes it joins (one link rate), else
    None. Then the previous node only matters through its best value, which saves a dimension."""
    n = hop.shape[1]
    if n < 2:
        return None
    values = hop[:, ~np.eye(n, dtype=bool)]  # (batch, n * (n - 1), P)
    return values[:, 0].copy() if (values == values[:, :1]).all() else None
