"""Horizontally scaled one hop: helpers serve their assigned data owners in a prescribed order."""

from __future__ import annotations

import copy

import pytest
import torch

from mpsl.data import partition
from mpsl.data.synthetic import load_synthetic
from mpsl.errors import ConfigError
from mpsl.models import build_model
from mpsl.runtime.compute_node import TaskQueue
from mpsl.runtime.config import RunConfig
from mpsl.runtime.engine import InProcessEngine
from mpsl.runtime.messages import Kind, Message
from mpsl.runtime.setup import optimizer_factory
from mpsl.tasks import Order, QueuePolicy
from mpsl.training.plain import fedavg_round
from mpsl.training.steps import Workload

DATA = load_synthetic((1, 8, 8), 10, train_size=96, test_size=16, seed=1)
ASSIGNMENT = [0, 1, 0, 1, 1]
STEPS = {
    0: [(2, "fwd"), (0, "fwd"), (2, "bwd"), (0, "bwd")],
    1: [(4, "fwd"), (1, "fwd"), (3, "fwd"), (1, "bwd"), (4, "bwd"), (3, "bwd")],
}
ORDERS = {helper: Order.of(steps) for helper, steps in STEPS.items()}


def _config(**kw):
    return RunConfig(
        dataset="synthetic",
        data_owners=5,
        cuts=[2, 4],
        rounds=1,
        local_epochs=1,
        batches_per_epoch=3,
        batch_size=8,
        seed=2,
        **kw,
    )


def test_helpers_follow_assignment_and_order():
    res = InProcessEngine(_config(), dataset=DATA, assignment=ASSIGNMENT, orders=ORDERS).run()
    for helper, order in STEPS.items():
        done = [
            (r.owner, r.kind)
            for r in sorted(res.events.records, key=lambda r: r.start)
            if r.node == f"node{helper + 1}" and r.kind in ("fwd", "bwd")
        ]
        assert done == order * 3  # the same order for each of the 3 batches
    assert res.bytes_per_link["owner1->node1"] > 0 and "owner1->node2" not in res.bytes_per_link


def test_horizontal_round_equivalence_with_fedavg_of_local_training():
    cfg = _config()
    start = build_model("digits_cnn", 10, (1, 8, 8), seed=4)
    reference = copy.deepcopy(start)
    result = InProcessEngine(
        cfg, dataset=DATA, model=start, assignment=ASSIGNMENT, orders=ORDERS
    ).run()
    shares = [
        DATA.train.subset(torch.from_numpy(i))
        for i in partition(DATA.train.y.numpy(), 5, "iid", 0.5, 2)
    ]
    workload = Workload(cfg.batch_size, cfg.local_epochs, cfg.batches_per_epoch, cfg.seed)
    expected = fedavg_round(reference, shares, workload, optimizer_factory(cfg), 0)
    got = result.model.state_dict()
    assert max(float((got[k] - expected[k]).abs().max()) for k in got) < 1e-5


def test_scheduled_queue_waits_for_its_turn():
    q = TaskQueue(QueuePolicy.SCHEDULED, Order.of([(1, "fwd"), (0, "fwd"), (1, "bwd"), (0, "bwd")]))
    q.push(Message(Kind.ACTIVATION, "x", owner=0, batch=0))
    assert not q.ready()  # owner 1 goes first
    q.push(Message(Kind.ACTIVATION, "x", owner=1, batch=0))
    assert [q.pop().owner, q.pop().owner] == [1, 0]


@pytest.mark.parametrize(
    ("kw", "engine_kw", "field"),
    [
        ({"cuts": [1, 3, 5]}, {"assignment": ASSIGNMENT}, "cuts"),
        ({}, {"assignment": [0, 1]}, "data_owners"),
        (
            {"batches_per_epoch": None},
            {"assignment": ASSIGNMENT, "orders": ORDERS},
            "batches_per_epoch",
        ),
    ],
)
def test_bad_horizontal_setups(kw, engine_kw, field):
    values = {**_config().model_dump(), **kw}
    with pytest.raises(ConfigError, match=f"field '{field}'"):
        InProcessEngine(RunConfig(**values), dataset=DATA, **engine_kw)


def test_an_order_must_cover_the_helpers_data_owners():
    wrong = {0: Order.of([(1, "fwd"), (0, "fwd"), (1, "bwd"), (0, "bwd")]), 1: ORDERS[1]}
    with pytest.raises(ConfigError, match=r"covers data owners \[0, 1\]; node1 serves \[0, 2\]"):
        InProcessEngine(_config(), dataset=DATA, assignment=ASSIGNMENT, orders=wrong)


def test_run_follows_a_schedule_file(tmp_path):
    import json

    from typer.testing import CliRunner

    from mpsl.cli import app

    tasks = [
        {"owner": o, "helper": h, "kind": kind, "start_ms": float(i), "end_ms": i + 0.5}
        for h, order in STEPS.items()
        for i, (o, kind) in enumerate(order)
    ]
    sched = tmp_path / "schedule.json"
    sched.write_text(json.dumps({"assignment": ASSIGNMENT, "tasks": tasks, "makespan_ms": 1.0}))
    out = tmp_path / "run"
    args = [
        "run",
        "--dataset",
        "synthetic",
        "--data-owners",
        "5",
        "--cuts",
        "2,4",
        "--rounds",
        "1",
        "--batches-per-epoch",
        "2",
        "--schedule",
        str(sched),
        "--out",
        str(out),
        "--quiet",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    node2 = [
        (e["owner"], e["kind"])
        for e in events
        if e["node"] == "node2" and e["kind"] in ("fwd", "bwd")
    ]
    assert node2 == STEPS[1] * 2 * 2  # 2 batches per epoch, 2 local epochs (default)
    bad = json.loads(sched.read_text())
    bad["tasks"] = bad["tasks"][1:]
    sched.write_text(json.dumps(bad))
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0


def test_a_helper_without_data_owners_stays_idle():
    order = [(k, "fwd") for k in range(5)] + [(k, "bwd") for k in range(5)]
    res = InProcessEngine(
        _config(), dataset=DATA, assignment=[1] * 5, orders={1: Order.of(order)}
    ).run()
    assert not [r for r in res.events.records if r.node == "node1" and r.kind in ("fwd", "bwd")]
    assert res.rounds[0].samples == 5 * 3 * 8
