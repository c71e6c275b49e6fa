"""The discrete-event simulation: hand-computed rounds, the closed form, policies, stragglers,
prescribed orders."""

from __future__ import annotations

import dataclasses

import pytest

from mpsl.errors import ConfigError
from mpsl.estimate.closed_form import multihop, sequential_sl
from mpsl.estimate.costs import HopCosts, NodeCosts, OwnerCosts, PipelineCosts
from mpsl.estimate.simulate import SimResult, simulate
from mpsl.tasks import AGGREGATOR, Order, QueuePolicy, TaskKind, owner_endpoint


def owner(count: int = 1, name: str = "g", **ms: float) -> OwnerCosts:
    """A data-owner group; every time not given is 0."""
    # the times after name and count; the optional fields (a shared uplink) keep their defaults
    keys = [f.name for f in dataclasses.fields(OwnerCosts) if f.default is dataclasses.MISSING]
    return OwnerCosts(name=name, count=count, **{k: ms.get(k, 0.0) for k in keys[2:]})


def costs(
    owners: list[OwnerCosts],
    nodes: list[tuple[float, float]],
    hops: list[tuple[float, float]] | None = None,
    batches: int = 1,
    aggregation: float = 0.0,
) -> PipelineCosts:
    """Pipeline costs with nodes n1..nN of (fwd, bwd) and hops of (act, grad)."""
    node_costs = tuple(NodeCosts(f"n{i}", i, i, f, b) for i, (f, b) in enumerate(nodes, 1))
    hop_list = hops if hops is not None else [(0.0, 0.0)] * (len(nodes) - 1)
    return PipelineCosts(
        tuple(owners), node_costs, tuple(HopCosts(a, g) for a, g in hop_list), batches, aggregation
    )


ONE = owner(
    first_fwd_ms=1,
    first_bwd_ms=2,
    last_ms=3,
    up_act_ms=4,
    down_act_ms=5,
    up_grad_ms=6,
    down_grad_ms=7,
    upload_model_ms=8,
    download_model_ms=9,
)


def test_one_owner_is_the_sum_of_all_stages_times_batches_plus_aggregation() -> None:
    c = costs(
        [ONE],
        [(10, 20), (11, 21), (12, 22)],
        [(0.5, 0.25), (0.75, 0.125)],
        batches=3,
        aggregation=13,
    )
    per_batch = 1 + 4 + 10 + 0.5 + 11 + 0.75 + 12 + 5 + 3 + 6 + 22 + 0.125 + 21 + 0.25 + 20 + 7 + 2
    r = simulate(c)
    assert r.training_ms == pytest.approx(3 * per_batch)
    assert r.round_ms == pytest.approx(3 * per_batch + 8 + 13 + 9)
    assert r.aggregation_ms == pytest.approx(8 + 13 + 9)
    assert r.round_ms == pytest.approx(sequential_sl(c).round_ms)  # one data owner: no overlap
    assert [n.busy_ms for n in r.nodes] == pytest.approx([90, 96, 102])
    assert [n.max_queue for n in r.nodes] == [0, 0, 0]
    assert {ln.name: ln.busy_ms for ln in r.links} == pytest.approx(
        {"n1->n2": 1.5, "n2->n3": 2.25, "n2->n1": 0.75, "n3->n2": 0.375}
    )


def test_one_compute_node_one_owner() -> None:
    c = costs([ONE], [(10, 20)], batches=2)
    r = simulate(c)
    assert r.round_ms == pytest.approx(2 * (1 + 4 + 10 + 5 + 3 + 6 + 20 + 7 + 2) + 8 + 9)
    assert r.links == ()


def test_full_pipeline_matches_closed_form() -> None:
    # 200 owners keep a clear bottleneck node (n2) busy in both directions.
    o = owner(
        200,
        first_fwd_ms=2,
        first_bwd_ms=2,
        last_ms=2,
        up_act_ms=1,
        down_act_ms=1,
        up_grad_ms=1,
        down_grad_ms=1,
        upload_model_ms=50,
        download_model_ms=50,
    )
    c = costs([o], [(3, 5), (10, 20), (4, 6)], [(0.5, 0.5), (0.5, 0.5)], batches=4, aggregation=5)
    r = simulate(c)
    closed = multihop(c).round_ms
    assert r.round_ms == pytest.approx(closed, rel=0.01)
    assert r.nodes[1].busy_ms == pytest.approx(200 * 4 * 30)
    assert r.nodes[1].utilization > 0.99
    assert r.nodes[1].max_queue > 100


def in_seconds(rows: list[tuple[int, str, float, float]]) -> list[tuple[int, str, float, float]]:
    """Hand-computed (owner, kind, start ms, end ms) rows as the trace holds them: seconds."""
    return [(k, kind, start / 1000, end / 1000) for k, kind, start, end in rows]


def _on(r: SimResult, node: str) -> list[tuple[int, str, float, float]]:
    return [(t.owner, t.kind, t.start, t.end) for t in r.trace if t.node == node]


def _crafted(policy: str) -> list[tuple[int, str, float, float]]:
    c = costs([owner(3, last_ms=0.5)], [(1, 1)])
    return _on(simulate(c, policy=policy, trace=True), "n1")


def test_fifo_runs_the_earlier_arrival() -> None:
    assert _crafted("fifo") == in_seconds([
        (0, "fwd", 0, 1),
        (1, "fwd", 1, 2),
        (2, "fwd", 2, 3),
        (0, "bwd", 3, 4),
        (1, "bwd", 4, 5),
        (2, "bwd", 5, 6),
    ])  # fmt: skip


def test_backward_first_overtakes_a_waiting_forward() -> None:
    # At t=2 owner 2's forward (arrived 0) and owner 0's backward (arrived 1.5) wait.
    assert _crafted("backward-first") == in_seconds([
        (0, "fwd", 0, 1),
        (1, "fwd", 1, 2),
        (0, "bwd", 2, 3),
        (1, "bwd", 3, 4),
        (2, "fwd", 4, 5),
        (2, "bwd", 5.5, 6.5),
    ])  # fmt: skip


def test_policies_give_different_rounds_on_the_crafted_case() -> None:
    c = costs([owner(3, last_ms=0.5)], [(1, 1)])
    assert simulate(c, policy="fifo").round_ms == 6.0
    assert simulate(c, policy=QueuePolicy.BACKWARD_FIRST).round_ms == 6.5


def test_simultaneous_arrivals_go_by_owner_index() -> None:
    r = simulate(costs([owner(4)], [(1, 1)]), trace=True)
    fwd = [t.owner for t in r.trace if t.node == "n1" and t.kind == "fwd"]
    assert fwd == [0, 1, 2, 3]


def test_a_slower_node_never_shortens_this_round() -> None:
    o = owner(8, first_fwd_ms=3, first_bwd_ms=3, last_ms=4, up_act_ms=2, down_grad_ms=2)
    rounds = [
        simulate(costs([o], [(2, 4), (3 * s, 5 * s)], [(1, 1)], batches=5)).round_ms
        for s in (0.5, 1, 1.5, 2, 3)
    ]
    assert rounds == sorted(rounds)
    assert rounds[-1] > rounds[0]


def test_straggler_slows_its_own_compute_and_the_round() -> None:
    c = costs([owner(3, first_fwd_ms=1, first_bwd_ms=1, last_ms=1)], [(1, 1)], batches=4)
    base = simulate(c)
    slow = simulate(c, stragglers={2: 5.0}, trace=True)
    assert slow.round_ms > base.round_ms
    assert slow.owner_finish_ms[2] == max(slow.owner_finish_ms)
    own = [t for t in slow.trace if t.node == owner_endpoint(2) and t.batch == 0]
    assert own[0].node == "owner3" and {t.owner for t in own} == {2}  # 1-based names, 0-based index
    assert [t.kind for t in own] == ["first_fwd", "last", "first_bwd"]
    assert [t.end - t.start for t in own] == pytest.approx([0.005] * 3)


def test_heterogeneous_groups_and_parallel_aggregation() -> None:
    fast = owner(1, "fast", first_fwd_ms=1, upload_model_ms=8, download_model_ms=9)
    slow = owner(1, "slow", first_fwd_ms=4, upload_model_ms=20, download_model_ms=30)
    r = simulate(costs([fast, slow], [(1, 1)], batches=2, aggregation=13), trace=True)
    assert r.owner_finish_ms[1] > r.owner_finish_ms[0]
    assert r.round_ms == pytest.approx(r.training_ms + 20 + 13 + 30)
    agg = [t for t in r.trace if t.node == AGGREGATOR]
    assert [t.kind for t in agg] == [TaskKind.AGGREGATE]
    assert [1000 * agg[0].start - r.training_ms, 1000 * agg[0].end - r.training_ms] == (
        pytest.approx([20, 33])
    )
    links = [(t.node, t.kind) for t in r.trace if t.owner == 1 and t.batch == -1]
    assert links == [("owner2.link", "upload"), ("owner2.link", "download")]


def test_hop_latency_delays_delivery_without_occupying_the_link() -> None:
    c = costs([owner(2)], [(0, 0), (1, 1)], [(10, 10)])
    plain = simulate(c, trace=True)
    lat = simulate(c, hop_latency_ms=[8], trace=True)
    starts = [
        [t.start for t in r.trace if t.node == "n2" and t.kind == "fwd"] for r in (plain, lat)
    ]
    assert starts == [[10 / 1000, 20 / 1000], [10 / 1000, 12 / 1000]]
    assert lat.links[0].busy_ms == pytest.approx(4)


def test_shared_link_serves_in_hand_over_order() -> None:
    c = costs([owner(3)], [(1, 1), (0, 0)], [(5, 5)])
    r = simulate(c, trace=True)
    act = [(t.owner, t.start) for t in r.trace if t.node == "n1->n2"]
    assert act == [(0, 1 / 1000), (1, 6 / 1000), (2, 11 / 1000)]


def test_simulation_is_deterministic() -> None:
    o = owner(7, first_fwd_ms=1.3, first_bwd_ms=0.7, last_ms=2.1, up_act_ms=0.4)
    c = costs([o], [(1.1, 2.3), (0.9, 1.7)], [(0.3, 0.2)], batches=6)
    a = simulate(c, policy="backward-first", stragglers={3: 2.5}, trace=True)
    b = simulate(c, policy="backward-first", stragglers={3: 2.5}, trace=True)
    assert a == b


def test_utilization_and_queue_stats() -> None:
    r = simulate(costs([owner(3, last_ms=0.5)], [(1, 1)]))
    (n,) = r.nodes
    assert n.utilization == 1.0 and n.tasks == 6 and n.max_queue == 2
    # Waiting: 2 in [0,1); then per unit step 1 until a backward arrives at x.5, 2 after it;
    # 1 in [4,5); none in [5,6).
    area = 2 * 1 + 3 * (1 * 0.5 + 2 * 0.5) + 1 * 1
    assert n.mean_queue == pytest.approx(area / 6)


OWNER_1_FIRST = Order.of([(1, "fwd"), (0, "fwd"), (1, "bwd"), (0, "bwd")])


@pytest.mark.parametrize("policy", ["fifo", "backward-first", "scheduled"])
def test_a_prescribed_order_runs_exactly_and_early_tasks_wait(policy: str) -> None:
    r = simulate(costs([owner(2)], [(1, 1)], batches=2), policy=policy, orders={0: OWNER_1_FIRST},
                 trace=True)  # fmt: skip
    ran = [t for t in r.trace if t.node == "n1"]
    assert [(t.owner, t.batch, t.kind) for t in ran] == [
        (a.owner, a.batch, a.kind) for a in map(OWNER_1_FIRST.at, range(8))
    ]
    # Back to back from 0 ms: owner 0's forward, there at 0, waits for owner 1's to run first.
    assert [(t.start, t.end) for t in ran] == [(i / 1000, (i + 1) / 1000) for i in range(8)]
    assert r.nodes[0].tasks == 8 and r.nodes[0].max_queue == 1


def test_an_order_of_what_fifo_does_changes_nothing() -> None:
    c = costs([owner(3, last_ms=0.5)], [(1, 1)])
    arrival = Order.of([(0, "fwd"), (1, "fwd"), (2, "fwd"), (0, "bwd"), (1, "bwd"), (2, "bwd")])
    assert simulate(c, orders={0: arrival}, trace=True).trace == simulate(c, trace=True).trace


def test_orders_on_some_nodes_leave_the_others_to_the_policy() -> None:
    c = costs([owner(2)], [(1, 1), (1, 1)])
    r = simulate(c, orders={1: OWNER_1_FIRST}, trace=True)
    assert [(k, kind) for k, kind, *_ in _on(r, "n1")] == [
        (0, "fwd"), (1, "fwd"), (1, "bwd"), (0, "bwd")
    ]  # fmt: skip
    assert [(k, kind) for k, kind, *_ in _on(r, "n2")] == [
        (1, "fwd"), (0, "fwd"), (1, "bwd"), (0, "bwd")
    ]  # fmt: skip


def test_orders_that_wait_on_each_other_are_a_deadlock() -> None:
    c = costs([owner(2)], [(1, 1), (1, 1)])
    owner_0_first = Order.of([(0, "fwd"), (0, "bwd"), (1, "fwd"), (1, "bwd")])
    owner_1_first = Order.of([(1, "fwd"), (1, "bwd"), (0, "fwd"), (0, "bwd")])
    with pytest.raises(ConfigError, match=r"deadlock: n1 waits to run 0B0, n2 waits to run 1F0"):
        simulate(c, orders={0: owner_0_first, 1: owner_1_first})


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"policy": "lifo"}, "policy"),
        ({"orders": {2: OWNER_1_FIRST}}, "orders"),
        ({"orders": {0: Order.of([(0, "fwd"), (0, "bwd")])}}, "orders"),
        (
            {"orders": {0: Order.of([(o, kind) for kind in ("fwd", "bwd") for o in range(3)])}},
            "orders",
        ),
        ({"policy": "scheduled"}, "orders"),
        ({"policy": "scheduled", "orders": {0: OWNER_1_FIRST}}, "orders"),
        ({"stragglers": {5: 2.0}}, "stragglers"),
        ({"stragglers": {0: 0.0}}, "stragglers"),
        ({"hop_latency_ms": [1.0, 2.0]}, "hop_latency_ms"),
        ({"hop_latency_ms": [50.0]}, "hop_latency_ms"),
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict, field: str) -> None:
    c = costs([owner(2)], [(1, 1), (1, 1)], [(5, 5)])
    with pytest.raises(ConfigError) as err:
        simulate(c, **kwargs)
    assert err.value.field == field
