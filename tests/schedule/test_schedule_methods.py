"""Every method's schedule is feasible; exact matches brute force and never loses to fast/greedy."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpsl.schedule import Scenario, Schedule, generate, solve
from mpsl.schedule.baselines import solve_balanced_greedy
from mpsl.schedule.cpsat import DEFAULT_RESOLUTION_MS, solve_exact
from mpsl.schedule.fast import solve_fast

EPS = 1e-6


def check_feasible(sc: Scenario, s: Schedule) -> None:
    """Independent of the library's evaluator: every constraint of the problem, checked."""
    K, H = sc.num_owners, sc.num_helpers
    assert len(s.assignment) == K and all(0 <= h < H for h in s.assignment)
    for h in range(H):
        used = sum(sc.demand_bytes[k] for k in range(K) if s.assignment[k] == h)
        assert used <= sc.capacity_bytes[h]
    by_key = {(t.owner, str(t.kind)): t for t in s.tasks}
    assert len(s.tasks) == 2 * K and len(by_key) == 2 * K
    done = 0.0
    for k in range(K):
        h = s.assignment[k]
        f, b = by_key[(k, "fwd")], by_key[(k, "bwd")]
        assert f.helper == h and b.helper == h
        assert f.start_ms >= sc.release_ms[k][h] - EPS
        assert f.end_ms == pytest.approx(f.start_ms + sc.fwd_ms[k][h])
        assert b.start_ms >= f.end_ms + sc.lag_ms[k][h] - EPS
        assert b.end_ms == pytest.approx(b.start_ms + sc.bwd_ms[k][h])
        done = max(done, b.end_ms + sc.tail_ms[k][h])
    for h in range(H):
        mine = sorted((t for t in s.tasks if t.helper == h), key=lambda t: (t.start_ms, t.end_ms))
        for a, c in itertools.pairwise(mine):
            assert c.start_ms >= a.end_ms - EPS, f"overlap on helper {h}: {a} {c}"
    assert s.makespan_ms == pytest.approx(done)
    if s.lower_bound_ms is not None:
        assert s.lower_bound_ms <= s.makespan_ms + EPS


@st.composite
def scenarios(draw: st.DrawFn, max_owners: int = 5, max_helpers: int = 3) -> Scenario:
    K = draw(st.integers(1, max_owners))
    H = draw(st.integers(1, max_helpers))
    t = st.floats(0, 20, allow_nan=False, allow_infinity=False)
    m = lambda: draw(st.lists(st.lists(t, min_size=H, max_size=H), min_size=K, max_size=K))  # noqa: E731
    demand = draw(st.lists(st.integers(0, 3), min_size=K, max_size=K))
    # every helper can hold everyone: memory never makes a drawn scenario infeasible
    capacity = [sum(demand) + draw(st.integers(0, 2)) for _ in range(H)]
    return Scenario(release_ms=m(), fwd_ms=m(), lag_ms=m(), bwd_ms=m(), tail_ms=m(),
                    demand_bytes=demand, capacity_bytes=capacity)  # fmt: skip


FAST_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@FAST_SETTINGS
@given(scenarios(max_owners=7))
def test_heuristics_are_feasible(sc: Scenario) -> None:
    for method in ("fast", "balanced-greedy", "random"):
        check_feasible(sc, solve(sc, method, seed=1))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(max_owners=5))
def test_exact_is_feasible_and_never_worse_than_fast(sc: Scenario) -> None:
    fast = solve_fast(sc)
    exact = solve_exact(sc, time_limit_s=5, hint=fast)
    check_feasible(sc, exact)
    assert exact.makespan_ms <= fast.makespan_ms + EPS


def _orders(owners: list[int]) -> Iterator[list[tuple[int, str]]]:
    """Every sequence of the owners' fwd and bwd tasks with each fwd before its bwd."""
    tasks = [(k, kind) for k in owners for kind in ("fwd", "bwd")]
    for perm in itertools.permutations(tasks):
        pos = {task: i for i, task in enumerate(perm)}
        if all(pos[(k, "fwd")] < pos[(k, "bwd")] for k in owners):
            yield list(perm)


def _completion(sc: Scenario, h: int, order: list[tuple[int, str]]) -> float:
    free = done = 0.0
    fwd_end: dict[int, float] = {}
    for k, kind in order:
        if kind == "fwd":
            free = max(free, sc.release_ms[k][h]) + sc.fwd_ms[k][h]
            fwd_end[k] = free
        else:
            free = max(free, fwd_end[k] + sc.lag_ms[k][h]) + sc.bwd_ms[k][h]
            done = max(done, free + sc.tail_ms[k][h])
    return done


def brute_force(sc: Scenario) -> float:
    """The optimal makespan: every feasible assignment, every order on every helper."""
    best = float("inf")
    for assignment in itertools.product(range(sc.num_helpers), repeat=sc.num_owners):
        used = [0] * sc.num_helpers
        for k, h in enumerate(assignment):
            used[h] += sc.demand_bytes[k]
        if any(u > c for u, c in zip(used, sc.capacity_bytes, strict=True)):
            continue
        worst = 0.0
        for h in range(sc.num_helpers):
            owners = [k for k, a in enumerate(assignment) if a == h]
            worst = max(worst, min(_completion(sc, h, o) for o in _orders(owners)) if owners else 0)
        best = min(best, worst)
    return best


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(max_owners=4, max_helpers=2))
def test_exact_matches_brute_force_and_its_bound_is_sound(sc: Scenario) -> None:
    optimum = brute_force(sc)
    exact = solve_exact(sc, time_limit_s=10)
    tolerance = (2 * sc.num_owners + 3) * DEFAULT_RESOLUTION_MS
    assert exact.optimal
    assert exact.makespan_ms == pytest.approx(optimum, abs=tolerance)
    assert exact.makespan_ms >= optimum - EPS  # the evaluator re-times it: never below optimum
    assert exact.lower_bound_ms is not None and exact.lower_bound_ms <= optimum + EPS
    assert exact.makespan_ms <= solve_balanced_greedy(sc).makespan_ms + EPS


def test_fast_beats_random_on_average_and_never_loses_to_balanced_greedy() -> None:
    fast_total = random_total = 0.0
    for seed in range(4):
        for heterogeneity in ("low", "high"):
            sc = generate("resnet101", 20, 5, heterogeneity, seed=seed)
            fast = solve(sc, "fast", seed=seed)
            check_feasible(sc, fast)
            fast_total += fast.makespan_ms
            random_total += solve(sc, "random", seed=seed).makespan_ms
            assert fast.makespan_ms <= solve(sc, "balanced-greedy").makespan_ms + EPS
    assert fast_total < random_total


def test_fast_is_deterministic_for_a_seed() -> None:
    sc = generate("vgg19", 15, 3, "high", seed=5)
    a, b = solve_fast(sc, seed=2), solve_fast(sc, seed=2)
    assert (a.assignment, a.tasks) == (b.assignment, b.tasks)


def test_auto_says_what_it_picked() -> None:
    small = solve(generate("resnet101", 6, 2, seed=0), "auto", time_limit_s=5)
    assert small.method == "exact" and "auto picked exact" in small.notes[0]
    large = solve(generate("resnet101", 25, 5, seed=0), "auto")
    assert large.method == "fast" and "auto picked fast" in large.notes[0]


def test_exact_proves_small_reference_instance() -> None:
    sc = generate("vgg19", 8, 2, "low", seed=1)
    exact = solve(sc, "exact", time_limit_s=10)
    check_feasible(sc, exact)
    assert exact.optimal and exact.lower_bound_ms is not None
    assert exact.makespan_ms - exact.lower_bound_ms <= (2 * 8 + 3) * DEFAULT_RESOLUTION_MS
