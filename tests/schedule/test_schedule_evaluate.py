"""The shared evaluator on hand-computed instances; dispatch rules agree with it."""

from __future__ import annotations

import random

import pytest

from mpsl.errors import ConfigError
from mpsl.schedule import Scenario, evaluate
from mpsl.schedule.dispatch import ALL_RULES, dispatch
from mpsl.tasks import Order, TaskKind

F, B = TaskKind.FWD, TaskKind.BWD


def two_owners_one_helper() -> Scenario:
    # owner 0: release 0, fwd 2, lag 3, bwd 4, tail 1; owner 1: release 1, fwd 1, lag 1, bwd 2, tail 5
    return Scenario(
        release_ms=[[0.0], [1.0]], fwd_ms=[[2.0], [1.0]], lag_ms=[[3.0], [1.0]],
        bwd_ms=[[4.0], [2.0]], tail_ms=[[1.0], [5.0]], demand_bytes=[1, 1], capacity_bytes=[2],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("order", "makespan"),
    [
        # F0 [0,2] F1 [2,3] B1 ready 4 -> [4,6] done 11; B0 ready 5 -> [6,10] done 11
        ([(0, F), (1, F), (1, B), (0, B)], 11.0),
        # F0 [0,2] F1 [2,3] B0 ready 5 -> [5,9] done 10; B1 ready 4 -> [9,11] done 16
        ([(0, F), (1, F), (0, B), (1, B)], 16.0),
        # F1 [1,2] F0 [2,4] B1 ready 3 -> [4,6] done 11; B0 ready 7 -> [7,11] done 12
        ([(1, F), (0, F), (1, B), (0, B)], 12.0),
        # F0 [0,2] B0 ready 5 -> [5,9] done 10; F1 [9,10] B1 ready 11 -> [11,13] done 18
        ([(0, F), (0, B), (1, F), (1, B)], 18.0),
    ],
)
def test_makespan_of_hand_computed_orders(order: list, makespan: float) -> None:
    s = evaluate(two_owners_one_helper(), [0, 0], [order], method="test")
    assert s.makespan_ms == pytest.approx(makespan)


def test_task_times_and_helper_order() -> None:
    s = evaluate(two_owners_one_helper(), [0, 0], [[(0, F), (1, F), (1, B), (0, B)]], method="t")
    times = [(t.owner, t.kind, t.start_ms, t.end_ms) for t in s.tasks]
    assert times == [(0, F, 0.0, 2.0), (1, F, 2.0, 3.0), (1, B, 4.0, 6.0), (0, B, 6.0, 10.0)]
    assert s.helper_order(0) == [(0, "fwd"), (1, "fwd"), (1, "bwd"), (0, "bwd")]
    assert s.orders() == {0: Order.of(s.helper_order(0))}
    assert str(s.orders()[0]) == "0F0 1F0 1B0 0B0"
    assert s.owners_of(0) == [0, 1]


def test_two_helpers_run_independently() -> None:
    sc = Scenario(
        release_ms=[[0.0, 5.0], [0.0, 0.0]], fwd_ms=[[1.0, 1.0], [2.0, 2.0]],
        lag_ms=[[1.0, 1.0], [0.0, 0.0]], bwd_ms=[[1.0, 1.0], [3.0, 3.0]],
        tail_ms=[[0.5, 0.5], [1.0, 1.0]], demand_bytes=[1, 1], capacity_bytes=[1, 1],
    )  # fmt: skip
    s = evaluate(sc, [0, 1], [[(0, F), (0, B)], [(1, F), (1, B)]], method="t")
    # helper 0: F0 [0,1], B0 [2,3] done 3.5; helper 1: F1 [0,2], B1 [2,5] done 6
    assert s.makespan_ms == pytest.approx(6.0)


@pytest.mark.parametrize(
    ("assignment", "orders", "match"),
    [
        ([0, 0], [[(0, B), (0, F), (1, F), (1, B)]], "out of place"),
        ([0, 0], [[(0, F), (0, B), (1, F)]], "lacks"),
        ([0, 1], [[(0, F), (0, B), (1, F), (1, B)]], "expected 0..0"),
        ([0], [[(0, F), (0, B)]], "expected 2"),
        ([0, 0], [[(0, F), (0, B), (0, B), (1, F), (1, B)]], "out of place"),
    ],
)
def test_invalid_orders_are_rejected(assignment: list, orders: list, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        evaluate(two_owners_one_helper(), assignment, orders, method="t")


def test_memory_overflow_is_rejected() -> None:
    sc = two_owners_one_helper().model_copy(update={"capacity_bytes": [1]})
    with pytest.raises(ConfigError, match="has 1"):
        evaluate(sc, [0, 0], [[(0, F), (0, B), (1, F), (1, B)]], method="t")


def test_json_form_has_the_documented_keys() -> None:
    s = evaluate(two_owners_one_helper(), [0, 0], [[(0, F), (1, F), (1, B), (0, B)]], method="t")
    out = s.to_json()
    assert set(out) == {"makespan_ms", "lower_bound_ms", "optimal", "assignment", "tasks",
                        "solve_ms", "method"}  # fmt: skip
    assert out["tasks"][0] == {
        "owner": 0,
        "helper": 0,
        "kind": "fwd",
        "start_ms": 0.0,
        "end_ms": 2.0,
    }


def test_every_dispatch_rule_reproduces_the_evaluator() -> None:
    rng = random.Random(3)
    K = 7
    m = lambda: [[rng.uniform(0, 10)] for _ in range(K)]  # noqa: E731
    sc = Scenario(release_ms=m(), fwd_ms=m(), lag_ms=m(), bwd_ms=m(), tail_ms=m(),
                  demand_bytes=[1] * K, capacity_bytes=[K])  # fmt: skip
    for rule in ALL_RULES:
        done, order = dispatch(sc, 0, range(K), rule)
        assert order is not None
        assert evaluate(sc, [0] * K, [order], method="t").makespan_ms == pytest.approx(done)
        # with a bar below the result, dispatch may stop early but never claims to beat it
        early, _ = dispatch(sc, 0, range(K), rule, bar=done - 1.0)
        assert early >= done - 1.0
