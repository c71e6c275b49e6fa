"""The task vocabulary: actions, orders, queue policies, records and names, used by every layer."""

from __future__ import annotations

import pytest

from mpsl.errors import ConfigError
from mpsl.tasks import (
    Action,
    Order,
    QueuePolicy,
    TaskKind,
    TaskRecord,
    owner_endpoint,
    owner_index,
)


def test_an_order_repeats_batch_after_batch_and_position_inverts_at():
    order = Order.of([(1, "fwd"), (0, "fwd"), (1, "bwd"), (0, "bwd")])
    assert str(order) == "1F0 0F0 1B0 0B0"
    assert order.at(5) == Action(0, TaskKind.FWD, 1)
    for i in range(12):
        a = order.at(i)
        assert order.position(a.owner, a.kind, a.batch) == i
    assert order.owners == [0, 1]


@pytest.mark.parametrize(
    ("steps", "needle"),
    [
        ([], "at least one task"),
        ([(0, "bwd"), (0, "fwd")], "one fwd task and then one bwd"),
        ([(0, "fwd")], "one fwd task and then one bwd"),
        ([(0, "fwd"), (0, "bwd"), (0, "fwd")], "one fwd task and then one bwd"),
    ],
)
def test_bad_orders_are_refused(steps, needle):
    with pytest.raises(ConfigError, match=needle):
        Order.of(steps)


def test_actions_are_compute_node_tasks():
    with pytest.raises(ConfigError, match="fwd or bwd"):
        Action(0, TaskKind.LAST)
    with pytest.raises(ConfigError, match="start at 0"):
        Action(-1, TaskKind.FWD)


def test_queue_policy_ranks():
    assert QueuePolicy.FIFO.rank(TaskKind.FWD) == QueuePolicy.FIFO.rank(TaskKind.BWD) == 0
    bf = QueuePolicy.BACKWARD_FIRST
    assert bf.rank(TaskKind.BWD) < bf.rank(TaskKind.FWD)
    with pytest.raises(ConfigError, match="choose fifo, backward-first, scheduled"):
        QueuePolicy.parse("lifo")


def test_records_round_trip_json_and_names_are_one_based():
    rec = TaskRecord("vm2", 0, 3, 1, TaskKind.BWD, 0.5, 0.75, 1024)
    assert TaskRecord.from_json(rec.to_json()) == rec
    assert rec.to_json()["kind"] == "bwd"
    assert owner_endpoint(0) == "owner1" and owner_index("owner12") == 11
    for bad in ("owner0", "node1", "owner"):
        with pytest.raises(ConfigError, match="not a data owner"):
            owner_index(bad)


def test_a_run_config_offers_every_policy_that_needs_no_order():
    from typing import get_args

    from mpsl.runtime.config import RunConfig

    offered = set(get_args(RunConfig.model_fields["queue_policy"].annotation))
    assert offered == {p.value for p in QueuePolicy} - {QueuePolicy.SCHEDULED.value}
