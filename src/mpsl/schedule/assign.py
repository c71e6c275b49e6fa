"""Assignment search for the fast method: greedy insertion, local search, kicks.

A helper's cost is the completion of its owners under a dispatch rule (helpers do not interact once
the assignment is fixed), memoized per (helper, owner set). Local search takes a data owner off a
critical helper (one ending at the makespan M), by a move to another helper or a swap with one of
its owners, and accepts it when both changed helpers then end before M: fewer helpers end at M, so
the helper completions sorted in decreasing order (leximax) improve and plateaus do not stall it.
A cheap bound (``Agg``) skips candidates that cannot end before M without dispatching them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from mpsl.schedule.dispatch import Rule, best_dispatch, columns
from mpsl.schedule.evaluate import Step
from mpsl.schedule.scenario import Scenario

# Aggregate of an owner set on a helper: (longest no-wait path, busy time, earliest release,
# shortest tail, memory). Its bound max(path, release + busy + tail) holds for any order.
Agg = tuple[float, float, float, float, int]
EMPTY: Agg = (0.0, 0.0, float("inf"), float("inf"), 0)


class HelperCosts:
    """Completion of an owner set on a helper (best of ``rules``), memoized, and cheap bounds."""

    def __init__(self, sc: Scenario, rules: Sequence[Rule]):
        self.sc = sc
        self.rules = tuple(rules)
        K, H = sc.num_owners, sc.num_helpers
        self.path = [[sc.path_ms(k, h) for h in range(H)] for k in range(K)]
        self.busy = [[sc.fwd_ms[k][h] + sc.bwd_ms[k][h] for h in range(H)] for k in range(K)]
        self.cols = [columns(sc, h) for h in range(H)]
        self.work = 0
        """Owner-dispatches run so far: a deterministic measure of the effort spent."""
        # (completion, order); order None: dispatch stopped early, completion only a lower bound
        self._memo: dict[tuple[int, tuple[int, ...]], tuple[float, list[Step] | None]] = {}

    def cost(self, h: int, owners: Sequence[int], bar: float = math.inf) -> float:
        """Completion of ``owners`` on ``h``; a value >= ``bar`` only means "no better than bar"."""
        key = (h, tuple(sorted(owners)))
        hit = self._memo.get(key)
        if hit is None or (hit[1] is None and hit[0] < bar):
            self.work += len(owners) * len(self.rules)
            done, order, _ = best_dispatch(self.cols[h], h, key[1], self.rules, bar)
            hit = self._memo[key] = (done, order)
        return hit[0]

    def plus(self, agg: Agg, k: int, h: int) -> Agg:
        """``agg`` with owner ``k`` added, on helper ``h``."""
        sc = self.sc
        return (
            max(agg[0], self.path[k][h]),
            agg[1] + self.busy[k][h],
            min(agg[2], sc.release_ms[k][h]),
            min(agg[3], sc.tail_ms[k][h]),
            agg[4] + sc.demand_bytes[k],
        )

    def agg(self, h: int, owners: Sequence[int]) -> Agg:
        """The aggregate of ``owners`` on ``h``."""
        a = EMPTY
        for k in owners:
            a = self.plus(a, k, h)
        return a

    def hopeless(self, agg: Agg, h: int, bar: float) -> bool:
        """True when memory rules the set out on ``h`` or no order of it ends before ``bar``."""
        if agg[4] > self.sc.capacity_bytes[h]:
            return True
        empty = agg[2] == EMPTY[2]
        return not empty and max(agg[0], agg[2] + agg[1] + agg[3]) >= bar


class State:
    """An assignment with its per-helper owners and completions."""

    def __init__(self, costs: HelperCosts, assignment: Sequence[int]):
        H = costs.sc.num_helpers
        self.costs = costs
        self.assignment = list(assignment)
        self.members = [[k for k, a in enumerate(assignment) if a == h] for h in range(H)]
        self.values = [costs.cost(h, m) for h, m in enumerate(self.members)]

    def key(self) -> tuple[float, ...]:
        """Helper completions in decreasing order: compared lexicographically (leximax)."""
        return tuple(sorted(self.values, reverse=True))

    def apply(self, changes: dict[int, list[int]]) -> None:
        """Give each helper in ``changes`` its new owner list."""
        for h, owners in changes.items():
            self.members[h] = owners
            self.values[h] = self.costs.cost(h, owners)
            for k in owners:
                self.assignment[k] = h


def improving_change(state: State) -> dict[int, list[int]] | None:
    """The best move (else swap) off a critical helper that ends both changed helpers before M."""
    costs = state.costs
    M = max(state.values)
    H = len(state.members)
    base = [costs.agg(h, m) for h, m in enumerate(state.members)]
    best: tuple[tuple[float, float], dict[int, list[int]]] | None = None

    def consider(
        c: int, new_c: list[int], agg_c: Agg, b: int, new_b: list[int], agg_b: Agg
    ) -> None:
        nonlocal best
        bar = best[0][0] if best is not None else M  # beat the best so far, not only M
        if costs.hopeless(agg_b, b, bar) or costs.hopeless(agg_c, c, bar):
            return
        vc = costs.cost(c, new_c, bar)
        if vc >= bar:
            return
        vb = costs.cost(b, new_b, bar)
        if vb >= bar:
            return
        rank = (max(vc, vb), vc + vb)
        if best is None or rank < best[0]:
            best = (rank, {c: new_c, b: new_b})

    for c in (h for h in range(H) if state.values[h] == M):
        rests = {k: [j for j in state.members[c] if j != k] for k in state.members[c]}
        rest_agg = {k: costs.agg(c, rest) for k, rest in rests.items()}
        for k, rest in rests.items():
            for b in range(H):
                if b != c:
                    consider(c, rest, rest_agg[k], b, [*state.members[b], k],
                             costs.plus(base[b], k, b))  # fmt: skip
        if best is not None:
            return best[1]
        # swaps are many: take the first that improves
        for b in range(H):
            if b == c:
                continue
            for j in state.members[b]:
                others = [i for i in state.members[b] if i != j]
                others_agg = costs.agg(b, others)
                for k, rest in rests.items():
                    consider(c, [*rest, j], costs.plus(rest_agg[k], j, c), b, [*others, k],
                             costs.plus(others_agg, k, b))  # fmt: skip
                    if best is not None:
                        return best[1]
    return None


def local_search(state: State) -> None:
    """Apply improving moves (then swaps) off critical helpers until none is left."""
    while (change := improving_change(state)) is not None:
        state.apply(change)


def greedy_insertion(costs: HelperCosts) -> list[int] | None:
    """Longest-path data owners first, each to the helper that keeps the makespan lowest."""
    sc = costs.sc
    K, H = sc.num_owners, sc.num_helpers
    members: list[list[int]] = [[] for _ in range(H)]
    used = [0] * H
    values = [0.0] * H
    assignment = [-1] * K
    shortest = [min(costs.path[k]) for k in range(K)]
    for k in sorted(range(K), key=lambda k: (-shortest[k], k)):
        best: tuple[float, float, int] | None = None
        for h in range(H):
            if used[h] + sc.demand_bytes[k] > sc.capacity_bytes[h]:
                continue
            # a value no lower than the best's cannot beat it (ties go to the lower index)
            value = costs.cost(h, [*members[h], k], best[1] if best else math.inf)
            cand = (max(value, max(values)), value, h)
            if best is None or cand < best:
                best = cand
        if best is None:
            return None
        h = best[2]
        members[h].append(k)
        used[h] += sc.demand_bytes[k]
        values[h] = best[1]
        assignment[k] = h
    return assignment


def kick(state: State, rng: random.Random, size: int = 2) -> list[int]:
    """Move ``size`` random owners, one from a critical helper, to random helpers with room."""
    sc = state.costs.sc
    assignment = list(state.assignment)
    used = [sum(sc.demand_bytes[k] for k in m) for m in state.members]
    worst = max(range(len(state.values)), key=lambda h: state.values[h])
    picks = [rng.choice(state.members[worst])] if state.members[worst] else []
    picks += rng.sample(range(sc.num_owners), min(size - len(picks), sc.num_owners))
    for k in picks:
        src = assignment[k]
        room = [h for h in range(sc.num_helpers)
                if h != src and used[h] + sc.demand_bytes[k] <= sc.capacity_bytes[h]]  # fmt: skip
        if room:
            dst = rng.choice(room)
            used[src] -= sc.demand_bytes[k]
            used[dst] += sc.demand_bytes[k]
            assignment[k] = dst
    return assignment
