"""The fast method: speed- and link-aware assignment, local search, best dispatch rule per helper.

1. Greedy insertion: data owners with the longest no-wait batch time first, each to the helper
   that keeps the makespan lowest (so fast helpers and good links win).
2. Local search on it (``assign``), helpers costed by the best of longest-tail (Schrage),
   bwd-first-tail and active-longest-tail: the rules that win on reference and random scenarios.
3. Seeded kicks (move two data owners, search again) to leave local optima: up to 100, cut
   short by an effort budget counted in dispatched owners (not seconds).
4. Each helper's order: the best of all dispatch rules, then insertion moves and owner swaps on
   the critical helper's order, timed by the shared evaluator. Balanced-greedy's assignment gets
   the same treatment and wins if better, so fast never loses to balanced-greedy.
Deterministic for a seed; no wall clock decides anything.
"""

from __future__ import annotations

import logging
import random
import time

from mpsl.errors import InfeasibleError
from mpsl.schedule.assign import HelperCosts, State, greedy_insertion, kick, local_search
from mpsl.schedule.baselines import balanced_assignment
from mpsl.schedule.dispatch import ALL_RULES, Rule, dispatch_all
from mpsl.schedule.evaluate import Schedule, Step, evaluate, helper_times
from mpsl.schedule.scenario import Scenario, check_capacity, trivial_lower_bound
from mpsl.tasks import TaskKind

log = logging.getLogger(__name__)

DEFAULT_KICKS = 100
DEFAULT_BUDGET = 60_000
SEARCH_RULES = (Rule.LONGEST_TAIL, Rule.BWD_FIRST_TAIL, Rule.ACTIVE_LONGEST_TAIL)


def polish_order(sc: Scenario, h: int, order: list[Step], max_passes: int = 3) -> list[Step]:
    """Insertion moves and owner swaps on one helper's order, kept when the completion improves."""
    best = helper_times(sc, h, order)[2]
    for _ in range(max_passes):
        improved = False
        for i in range(len(order)):
            for found in (_best_insertion(sc, h, order, i), _best_swap(sc, h, order, i)):
                if found is not None and found[0] < best - 1e-9:
                    best, order = found
                    improved = True
        if not improved:
            break
    return order


def _best_swap(sc: Scenario, h: int, order: list[Step], i: int) -> tuple[float, list[Step]] | None:
    """The best order that swaps the places of task ``i``'s owner and another owner (both tasks)."""
    if order[i][1] != TaskKind.FWD:
        return None
    a = order[i][0]
    best: tuple[float, list[Step]] | None = None
    for b in {k for k, kind in order[i + 1 :] if kind == TaskKind.FWD}:
        cand = [((b if k == a else a if k == b else k), kind) for k, kind in order]
        done = helper_times(sc, h, cand)[2]
        if best is None or done < best[0]:
            best = (done, cand)
    return best


def _best_insertion(
    sc: Scenario, h: int, order: list[Step], i: int
) -> tuple[float, list[Step]] | None:
    """The best order that moves task ``i`` elsewhere, keeping each fwd before its bwd."""
    k, kind = order[i]
    partner = next(p for p in range(len(order)) if order[p][0] == k and p != i)
    rest = order[:i] + order[i + 1 :]
    at = partner - (partner > i)  # the partner's index in ``rest``
    positions = range(0, at + 1) if kind == TaskKind.FWD else range(at + 1, len(order))
    best: tuple[float, list[Step]] | None = None
    for j in positions:
        if j == i:
            continue
        cand = [*rest[:j], order[i], *rest[j:]]
        done = helper_times(sc, h, cand)[2]
        if best is None or done < best[0]:
            best = (done, cand)
    return best


def polish(sc: Scenario, orders: list[list[Step]]) -> list[list[Step]]:
    """Polish the critical helper's order, then the next critical one, while that helps."""
    orders = [list(o) for o in orders]
    tried: set[int] = set()
    while True:
        done = [helper_times(sc, h, o)[2] for h, o in enumerate(orders)]
        h = max(range(len(orders)), key=lambda h: done[h])
        if h in tried:
            return orders
        tried.add(h)
        orders[h] = polish_order(sc, h, orders[h])


def search_assignment(
    sc: Scenario, seed: int = 0, kicks: int = DEFAULT_KICKS, budget: int = DEFAULT_BUDGET
) -> list[int]:
    """The assignment of steps 1-3 (see module doc); kicks stop early once ``budget`` is spent."""
    costs = HelperCosts(sc, SEARCH_RULES)
    start = greedy_insertion(costs) or balanced_assignment(sc)
    if start is None:
        raise InfeasibleError(
            f"fast found no assignment of {sc.num_owners} data owners that fits the helpers' "
            f"memory (capacities {list(sc.capacity_bytes)}); try --method exact, which packs "
            f"memory exactly"
        )
    best = current = State(costs, start)
    local_search(best)
    rng = random.Random(seed)
    for i in range(kicks):
        if costs.work > budget:
            log.debug("fast: effort budget spent after %d kicks", i)
            break
        trial = State(costs, kick(current, rng))
        local_search(trial)
        if trial.key() <= current.key():
            current = trial
            if trial.key() < best.key():
                best = trial
    log.debug("fast: %d helper costs, %d owner-dispatches", len(costs._memo), costs.work)
    return best.assignment


def solve_fast(
    sc: Scenario, *, seed: int = 0, kicks: int = DEFAULT_KICKS, budget: int = DEFAULT_BUDGET
) -> Schedule:
    """Assignment by greedy insertion + local search + kicks; order by the best rule, polished."""
    t0 = time.perf_counter()
    check_capacity(sc)
    candidates = [search_assignment(sc, seed, kicks, budget)]
    balanced = balanced_assignment(sc)
    if balanced is not None and balanced != candidates[0]:
        candidates.append(balanced)
    best: tuple[float, list[int], list[list[Step]]] | None = None
    for assignment in candidates:
        orders = polish(sc, dispatch_all(sc, assignment, ALL_RULES))
        makespan = max(helper_times(sc, h, o)[2] for h, o in enumerate(orders))
        if best is None or makespan < best[0]:
            best = (makespan, assignment, orders)
    assert best is not None
    return evaluate(
        sc,
        best[1],
        best[2],
        method="fast",
        lower_bound_ms=trivial_lower_bound(sc),
        solve_ms=(time.perf_counter() - t0) * 1000,
    )
