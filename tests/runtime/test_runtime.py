"""The in-process runtime: policies, partitions, outputs and bad configs."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from mpsl.cli import app
from mpsl.data.synthetic import load_synthetic
from mpsl.errors import ConfigError, FormatError
from mpsl.models import build_model
from mpsl.runtime.compute_node import TaskQueue
from mpsl.runtime.config import RunConfig
from mpsl.runtime.device import Device
from mpsl.runtime.engine import InProcessEngine, share_cores
from mpsl.runtime.messages import Kind, Message
from mpsl.tasks import QueuePolicy
from mpsl.training.fedavg import fedavg
from mpsl.training.memory import SavedBytesMeter, saved_storages

DATA = load_synthetic((1, 8, 8), 10, train_size=120, test_size=24, seed=0)


def _run(scheduling: str = "cooperative", **kw):
    cfg = RunConfig(dataset="synthetic", rounds=1, data_owners=3, batch_size=10, **kw)
    return InProcessEngine(cfg, dataset=DATA, scheduling=scheduling).run()


@pytest.mark.parametrize("scheduling", ["cooperative", "threads"])
@pytest.mark.parametrize("policy", ["fifo", "backward-first"])
@pytest.mark.parametrize("cuts", [[1, 5], [1, 3, 5], [1, 2, 3, 5]])
def test_every_task_runs_once_per_batch(policy, cuts, scheduling):
    res = _run(scheduling, cuts=cuts, queue_policy=policy, partition="dirichlet", alpha=0.5)
    nodes = len(cuts) - 1
    batches = {(r.owner, r.batch) for r in res.events.records if r.kind == "first_fwd"}
    for kind in ("fwd", "bwd"):
        done = [(r.node, r.owner, r.batch) for r in res.events.records if r.kind == kind]
        assert len(done) == len(set(done)) == nodes * len(batches)
    assert res.rounds[0].samples == 120 * res.config.local_epochs


def test_queue_policies_order_tasks():
    fwd = [Message(Kind.ACTIVATION, "a", owner=i) for i in range(2)]
    bwd = Message(Kind.GRADIENT, "b", owner=9)
    for policy, expected in [("fifo", [0, 1, 9]), ("backward-first", [9, 0, 1])]:
        q = TaskQueue(QueuePolicy(policy))
        for m in [*fwd, bwd]:
            q.push(m)
        assert [q.pop().owner for _ in range(3)] == expected
    with pytest.raises(ConfigError, match="unknown queue policy"):
        QueuePolicy.parse("lifo")


@pytest.mark.parametrize("scheduling", ["cooperative", "threads"])
def test_pipeline_overlaps_data_owners(scheduling):
    res = _run(scheduling, cuts=[1, 3, 5])
    node1 = sorted(
        (r for r in res.events.records if r.node == "node1" and r.kind in ("fwd", "bwd")),
        key=lambda r: r.start,
    )
    # Between one batch's forward and its backward, node1 serves other data owners.
    first = node1[0]
    until_back = next(
        i
        for i, r in enumerate(node1)
        if r.kind == "bwd" and (r.owner, r.batch) == (first.owner, first.batch)
    )
    assert {r.owner for r in node1[:until_back]} - {first.owner}


def test_training_learns_and_reports_memory_and_bytes():
    res = InProcessEngine(
        RunConfig(dataset="synthetic", rounds=3, data_owners=2, batch_size=16, lr=0.05),
        dataset=DATA,
    ).run()
    assert res.rounds[-1].loss < res.rounds[0].loss
    assert set(res.peak_memory_bytes) == {"node1", "node2", "owner1", "owner2"}
    assert all(v > 0 for v in res.peak_memory_bytes.values())
    # labels never travel: every data-owner message is an activation or gradient, or weights to the aggregator
    assert res.bytes_per_link["owner1->node1"] > 0 and res.bytes_per_link["owner1->aggregator"] > 0


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"data_owners": 0}, "data_owners"),
        ({"partition": "shards"}, "partition"),
        ({"queue_policy": "lifo"}, "queue_policy"),
        ({"lr": -1}, "lr"),
        ({"colour": 1}, "colour"),
    ],
)
def test_bad_config_names_the_field(values, field):
    with pytest.raises(FormatError, match=f"field '{field}'"):
        RunConfig.from_values(values)


def test_toml_config_and_cli_writes_report(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        'dataset = "synthetic"\nrounds = 1\ndata_owners = 2\nbatch_size = 32\ncuts = [1, 3, 5]\n'
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", "--config", str(cfg), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    threads = tmp_path / "threads"
    args = ["run", "--config", str(cfg), "--out", str(threads), "--quiet", "--engine", "threads"]
    assert CliRunner().invoke(app, args).exit_code == 0
    summary = json.loads((out / "summary.json").read_text())
    by_threads = json.loads((threads / "summary.json").read_text())
    # the same training, whichever way the roles are scheduled
    assert by_threads["rounds"][0]["loss"] == pytest.approx(summary["rounds"][0]["loss"], rel=1e-5)
    assert summary["config"]["cuts"] == [1, 3, 5] and summary["parts"] == 4
    assert set(summary["rounds"][0]) >= {"round", "loss", "accuracy", "seconds"}
    assert summary["bytes_per_link"] and summary["peak_memory_bytes"]
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert {"node", "owner", "batch", "kind", "start", "end", "bytes"} <= set(events[0])
    assert (out / "pipeline.png").stat().st_size > 1000


def test_cli_bad_config_is_a_clear_error(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("rounds = 0\n")
    result = CliRunner().invoke(app, ["run", "--config", str(cfg)])
    assert result.exit_code != 0
    assert "field 'rounds'" in str(result.exception) or "field 'rounds'" in result.output


def test_run_plans_first_with_plan_auto(tmp_path):
    from mpsl.profile.format import LayerProfile, Profile, Timing

    # node "slow" is 10x slower: the optimal plan gives it the least work or leaves it out
    layers = [
        LayerProfile(
            name=f"l{i}", output_bytes=1000, param_bytes=100, ms={"cpu": Timing(fwd=1.0, bwd=2.0)}
        )
        for i in range(1, 7)
    ]
    profile = tmp_path / "p.json"
    Profile(model="digits_cnn", batch_size=16, layers=layers).save(profile)
    cluster = tmp_path / "c.json"
    cluster.write_text(
        json.dumps(
            {
                "data_owners": [
                    {"count": 2, "device": "cpu", "memory_bytes": 1e9, "link_bps": 1e9}
                ],
                "compute_nodes": [
                    {"name": "fast", "device": "cpu", "memory_bytes": 1e9},
                    {"name": "slow", "device": "cpu", "memory_bytes": 1e9, "slowdown": 10},
                ],
                "links": {"compute_to_compute_bps": 1e9},
                "training": {"batch_size": 16, "batches_per_epoch": 4, "local_epochs": 1},
            }
        )
    )
    out = tmp_path / "out"
    args = [
        "run",
        "--dataset",
        "synthetic",
        "--data-owners",
        "2",
        "--rounds",
        "1",
        "--plan",
        "auto",
        "--profile",
        str(profile),
        "--cluster",
        str(cluster),
        "--first-cut",
        "1",
        "--last-cut",
        "5",
        "--out",
        str(out),
        "--quiet",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    cuts = json.loads((out / "summary.json").read_text())["cuts"]
    assert cuts[0] == 1 and cuts[-1] == 5
    i = args.index("--cluster")
    missing = CliRunner().invoke(app, args[:i] + args[i + 2 :])
    assert missing.exit_code != 0 and "needs --cluster" in str(missing.exception)


@pytest.mark.parametrize(("scheduling", "threads"), [("threads", 2), ("cooperative", 6)])
def test_roles_share_the_cores_and_the_callers_threads_come_back(scheduling, threads):
    """Threads: 6 torch threads for 2 data owners and 1 compute node; cooperative: all 6 each."""
    assert share_cores(2, 6) == 1 and share_cores(16, 6) == 2
    assert share_cores(8, 1) == 8 and share_cores(1, 3) == 1
    seen: set[int] = set()

    class Probe(Device):
        def run(self, kind, fn, task=None):
            seen.add(torch.get_num_threads())
            return fn()

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(6)
        cfg = RunConfig(dataset="synthetic", rounds=1, data_owners=2, batch_size=30, cuts=[1, 5])
        devices = {"node1": Probe(), "owner1": Probe()}
        InProcessEngine(cfg, dataset=DATA, devices=devices, scheduling=scheduling).run()
        assert seen == {threads}
        assert torch.get_num_threads() == 6
    finally:
        torch.set_num_threads(before)


def test_fedavg_in_place_matches_a_float64_average():
    gen = torch.Generator().manual_seed(0)
    states = [{"w": torch.randn(5, 3, generator=gen), "n": torch.tensor(k)} for k in (3, 1, 2)]
    weights = [10, 30, 20]
    exact = sum(s["w"].double() * w for s, w in zip(states, weights, strict=True)) / 60
    out = {"w": torch.empty(5, 3), "n": torch.tensor(0)}
    avg = fedavg(states, weights, out=out)
    assert avg["w"] is out["w"] and avg["n"] is out["n"]
    assert float((avg["w"].double() - exact).abs().max()) < 1e-6
    assert int(avg["n"]) == 3 and avg["w"].dtype == torch.float32
    assert torch.equal(fedavg(states, weights)["w"], avg["w"])
    assert torch.equal(states[0]["w"], torch.randn(5, 3, generator=gen.manual_seed(0)))


def test_saved_bytes_are_measured_once_per_kind_of_input():
    model = build_model("digits_cnn", 10, (1, 8, 8), seed=0)
    meter = SavedBytesMeter()
    for batch in (8, 8, 3):
        x = torch.randn(batch, 1, 8, 8)
        with saved_storages(model.parameters()) as fresh:
            model(x)
        _, counted = meter.run(lambda x=x: model(x), model, x)
        assert counted == sum(fresh.values()) > 0
    assert len(meter._known) == 2
