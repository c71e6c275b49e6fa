"""Candidate bottleneck values, and a cheap lower bound of the additive part per candidate.

A chain whose forward bottleneck F equals a value x contains an element (a segment or a hop) whose
forward time is x. Relaxing "each node at most once", the least additive part of a chain through a
given element is ``prefix[i] + element + suffix[k]``, prefix / suffix being shortest paths over
positions (O(n P^2), no subsets). The least of these over the elements of value x bounds the
additive part of every chain with F = x from below, which lets dp.round_search skip most caps.

Values that differ only by float rounding (the same layers summed in another order) are merged into
one candidate, their largest, so that no cap is tried twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INF = np.inf
REL_TOL = 1e-12


@dataclass(frozen=True)
class Candidates:
    """Sorted candidate values of one bottleneck and, for each, a lower bound of the additive part
    of any chain whose bottleneck is that value."""

    values: np.ndarray
    floor: np.ndarray


def relaxed_paths(
    work: np.ndarray, hop2: np.ndarray, first: np.ndarray, last: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(done, into, start, out): least additive part of a chain covering positions 0..i (done),
    the same plus the hand-over at cut i (into), of a chain covering i..M (start), the same plus
    the hand-over at cut i (out); nodes may repeat (a relaxation). ``work[u, i, k]``: f + b;
    ``hop2[i]``: least 2 x hop time at cut i."""
    p = work.shape[1]
    m = p - 1
    into = np.full(p, INF)  # chain over 0..i, ready to hand cut i to the next node
    done = np.full(p, INF)  # chain over 0..i, the last segment ends at i
    done[:] = (first[:, None] + work[:, 0, :]).min(axis=0)
    for k in range(1, p):
        if k > 1:
            done[k] = min(done[k], (into[1:k, None] + work[:, 1:k, k].T).min())
        into[k] = done[k] + hop2[k] if k < m else INF
    out = np.full(p, INF)  # chain over i..M after a hand-over at cut i
    start = np.full(p, INF)  # chain over i..M, its first segment starts at i
    start[:] = (work[:, :, m] + last[:, None]).min(axis=0)
    for i in range(m - 1, -1, -1):
        if i < m - 1:
            start[i] = min(start[i], (work[:, i, i + 1 : m].T + out[i + 1 : m, None]).min())
        out[i] = start[i] + hop2[i] if i > 0 else INF
    return done, into, start, out


def candidates(
    seg_values: np.ndarray, seg_floor: np.ndarray, hop_values: np.ndarray, hop_floor: np.ndarray
) -> Candidates:
    """Merge element values into candidates; each candidate's floor is the least over its
    elements (elements with an infinite value are ignored)."""
    vals = np.concatenate([seg_values.ravel(), hop_values.ravel()])
    lows = np.concatenate([seg_floor.ravel(), hop_floor.ravel()])
    keep = np.isfinite(vals)
    vals, lows = vals[keep], lows[keep]
    order = np.argsort(vals, kind="stable")
    vals, lows = vals[order], lows[order]
    if len(vals) == 0:
        return Candidates(np.zeros(0), np.zeros(0))
    gap = np.diff(vals) > REL_TOL * np.maximum(1.0, np.abs(vals[1:]))
    group = np.concatenate([[0], np.cumsum(gap)])
    count = int(group[-1]) + 1
    reps = np.full(count, -INF)
    np.maximum.at(reps, group, vals)
    floor = np.full(count, INF)
    np.minimum.at(floor, group, lows)
    return Candidates(reps, floor)


def element_floors(
    work: np.ndarray,
    hop: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Lower bound of the additive part of a chain through each segment (u, i, k) and each hop
    (v, u, i); ``work`` and ``hop`` are inf where not allowed."""
    p = work.shape[1]
    m = p - 1
    hop2 = 2 * np.where(np.isfinite(hop), hop, INF).min(axis=(0, 1))
    done, prefix, start, suffix = relaxed_paths(work, hop2, first, last)
    before = np.broadcast_to(prefix[None, :, None], work.shape).copy()
    before[:, 0, :] = first[:, None]
    after = np.broadcast_to(suffix[None, None, :], work.shape).copy()
    after[:, :, m] = last[:, None]
    seg_floor = before + work + after
    # a hop at cut i: a chain over 0..i ending there, the hop itself, a chain over i..M
    hop_floor = done[None, None, :] + 2 * hop + start[None, None, :]
    return seg_floor, np.where(np.isfinite(hop), hop_floor, INF)
