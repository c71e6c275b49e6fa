"""The published heuristic and baseline: balanced-greedy and random assignment, both FCFS.

balanced-greedy: each data owner in turn goes to the helper with the fewest data owners (memory
permitting; ties to the lower helper index); each helper serves its tasks first come first served.
random: each data owner goes to a helper drawn uniformly among those with room; FCFS.
"""

from __future__ import annotations

import logging
import random
import time

from mpsl.errors import InfeasibleError
from mpsl.schedule.dispatch import Rule, dispatch_all
from mpsl.schedule.evaluate import Schedule, evaluate
from mpsl.schedule.scenario import Scenario, check_capacity, trivial_lower_bound

log = logging.getLogger(__name__)

RANDOM_TRIES = 100


def balanced_assignment(sc: Scenario) -> list[int] | None:
    """Each owner in turn to the helper with the fewest owners that has room; None if stuck."""
    count = [0] * sc.num_helpers
    room = list(sc.capacity_bytes)
    assignment: list[int] = []
    for k, need in enumerate(sc.demand_bytes):
        fits = [h for h in range(sc.num_helpers) if room[h] >= need]
        if not fits:
            log.debug("balanced-greedy: no helper has room for data owner %d", k)
            return None
        h = min(fits, key=lambda h: (count[h], h))
        count[h] += 1
        room[h] -= need
        assignment.append(h)
    return assignment


def random_assignment(sc: Scenario, rng: random.Random) -> list[int] | None:
    """Each owner in index order to a uniformly drawn helper with room; None if stuck."""
    room = list(sc.capacity_bytes)
    assignment: list[int] = []
    for need in sc.demand_bytes:
        fits = [h for h in range(sc.num_helpers) if room[h] >= need]
        if not fits:
            return None
        h = rng.choice(fits)
        room[h] -= need
        assignment.append(h)
    return assignment


def _stuck(sc: Scenario, method: str) -> InfeasibleError:
    return InfeasibleError(
        f"{method} could not fit the {sc.num_owners} data owners (demand {sum(sc.demand_bytes):,} "
        f"bytes in all) into helpers with capacities {list(sc.capacity_bytes)}; the totals fit, so "
        f"try --method fast or exact, which pack memory more carefully"
    )


def _fcfs(sc: Scenario, assignment: list[int], method: str, t0: float) -> Schedule:
    orders = dispatch_all(sc, assignment, (Rule.FCFS,))
    return evaluate(
        sc,
        assignment,
        orders,
        method=method,
        lower_bound_ms=trivial_lower_bound(sc),
        solve_ms=(time.perf_counter() - t0) * 1000,
    )


def solve_balanced_greedy(sc: Scenario) -> Schedule:
    """The published balanced-greedy heuristic: fewest-owners assignment, FCFS order."""
    t0 = time.perf_counter()
    check_capacity(sc)
    assignment = balanced_assignment(sc)
    if assignment is None:
        raise _stuck(sc, "balanced-greedy")
    return _fcfs(sc, assignment, "balanced-greedy", t0)


def solve_random(sc: Scenario, seed: int = 0) -> Schedule:
    """The published baseline: a random feasible assignment (seeded), FCFS order."""
    t0 = time.perf_counter()
    check_capacity(sc)
    rng = random.Random(seed)
    for _ in range(RANDOM_TRIES):
        assignment = random_assignment(sc, rng)
        if assignment is not None:
            return _fcfs(sc, assignment, "random", t0)
    raise _stuck(sc, f"random (after {RANDOM_TRIES} draws)")
