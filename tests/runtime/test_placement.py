"""The plan's placement reaches the run: a named compute node of the cluster hosts its part."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_run import run
from mpsl.cluster import Cluster
from mpsl.errors import ConfigError
from mpsl.models import build_model
from mpsl.plan import make_plan
from mpsl.profile.format import LayerProfile, Profile, Timing
from mpsl.runtime.config import RunConfig
from mpsl.runtime.engine import InProcessEngine
from mpsl.runtime.layout import Layout

MODEL = build_model("digits_cnn", 10, (1, 8, 8))


def _profile() -> Profile:
    """digits_cnn's layers: the 'fast' server is 50x quicker than the 'slow' one."""
    layers = [
        LayerProfile(
            name=name,
            output_bytes=4096,
            param_bytes=1024,
            ms={
                "phone": Timing(fwd=1.0, bwd=2.0, opt=0.1),
                "slow": Timing(fwd=5.0, bwd=10.0, opt=0.5),
                "fast": Timing(fwd=0.1, bwd=0.2, opt=0.01),
            },
        )
        for name in MODEL.layer_names()
    ]
    return Profile(model="digits_cnn", batch_size=16, layers=layers)


def _cluster() -> Cluster:
    """Two compute nodes; the first one listed (the default host of part 1) is the slow one."""
    return Cluster.model_validate(
        {
            "data_owners": [{"count": 2, "device": "phone", "memory_bytes": 4e9, "link_bps": 1e9}],
            "compute_nodes": [
                {"name": "vm1", "device": "slow", "memory_bytes": 1e10},
                {"name": "vm2", "device": "fast", "memory_bytes": 1e10},
            ],
            "links": {"compute_to_compute_bps": 1e10},
            "training": {"batch_size": 16, "batches_per_epoch": 2, "local_epochs": 1},
        }
    )


def test_the_planned_node_runs_the_middle_part(tmp_path: Path, monkeypatch, capsys) -> None:
    profile, cluster = tmp_path / "profile.json", tmp_path / "cluster.json"
    _profile().save(profile)
    _cluster().save(cluster)
    last = MODEL.num_layers - 1
    plan = make_plan(_profile(), _cluster(), 1, last)
    assert plan.nodes == ["vm2"]  # the optimum is not the default (first) node
    out = tmp_path / "run"
    args = ["run", "--plan", "auto", "--profile", str(profile), "--cluster", str(cluster)]
    args += ["--first-cut", "1", "--last-cut", str(last), "--data-owners", "2", "--rounds", "1"]
    args += ["--local-epochs", "1", "--batches-per-epoch", "2", "--out", str(out), "--quiet"]
    code, _, err = run(args, monkeypatch, capsys)
    assert code == 0, err
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    middle = [e for e in events if e["kind"] in ("fwd", "bwd")]
    assert {e["node"] for e in middle} == {"vm2"}
    assert len(middle) == 2 * 2 * 2  # 2 data owners, 2 batches, forward and backward
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["nodes"] == ["vm2"]
    assert summary["job"]["plan"] == "auto" and summary["job"]["first_cut"] == 1  # provenance
    assert set(summary["bytes_per_link"]) >= {"owner1->vm2", "vm2->owner1"}


def test_the_emulator_runs_the_plan_on_its_nodes(tmp_path: Path, monkeypatch, capsys) -> None:
    profile, cluster, plan = (tmp_path / f for f in ("p.json", "c.json", "plan.json"))
    _profile().save(profile)
    _cluster().save(cluster)
    made = make_plan(_profile(), _cluster(), 1, MODEL.num_layers - 1)
    made.save(plan)
    out = tmp_path / "emulated"
    args = ["emulate", "--profile", str(profile), "--cluster", str(cluster), "--plan", str(plan)]
    code, stdout, err = run(
        [*args, "--time-scale", "0.05", "--out", str(out), "--json"], monkeypatch, capsys
    )
    assert code == 0, err
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert {e["node"] for e in events if e["kind"] in ("fwd", "bwd")} == {"vm2"}
    assert "owner1->vm2" in json.loads(stdout)["bytes_per_link"]
    code, _, err = run([*args, "--cuts", "1,5"], monkeypatch, capsys)
    assert code == 2 and "not both" in err


def test_a_chain_follows_the_placement_order() -> None:
    data_cfg = RunConfig(
        dataset="synthetic",
        input_shape=[1, 8, 8],
        num_classes=10,
        data_owners=2,
        cuts=[1, 3, 5],
        nodes=["vm2", "vm1"],
        rounds=1,
        local_epochs=1,
        batches_per_epoch=2,
        batch_size=8,
    )
    result = InProcessEngine(data_cfg, evaluate=False).run()
    links = result.bytes_per_link
    # Part 1 on vm2, part 2 on vm1: data owners enter at vm2 and leave from vm1.
    assert links["owner1->vm2"] > 0 and links["vm2->vm1"] > 0 and links["vm1->owner1"] > 0
    assert "owner1->vm1" in links  # the gradient goes back to the last node, vm1
    first = {r.node for r in result.events.records if r.kind == "fwd" and r.batch == 0}
    assert first == {"vm1", "vm2"}


@pytest.mark.parametrize(
    ("nodes", "needle"),
    [
        (["vm1"], "name 1 compute nodes but the run has 2"),
        (["vm1", "vm1"], "one part only"),
        (["owner1", "vm2"], "another role"),
        (["aggregator", "vm2"], "another role"),
        (["a b", "vm2"], "letters, digits"),
    ],
)
def test_bad_placements_are_refused(nodes: list[str], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        RunConfig(cuts=[1, 3, 5], nodes=nodes)


def test_roles_are_named_by_the_placement() -> None:
    layout = Layout.chain(2, 3, ["gpu-a", "gpu-b"])
    assert layout.members == ["gpu-a", "gpu-b", "aggregator", "owner1", "owner2", "owner3"]
    assert layout.next_hop(0)(0) == "gpu-b" and layout.prev_hop(1)(2) == "gpu-a"
    with pytest.raises(ConfigError, match="2 middle parts need 2 compute node names"):
        Layout.chain(2, 3, ["gpu-a"])


def test_the_chart_shows_named_nodes_in_chain_order() -> None:
    from mpsl.report.gantt import _row_order
    from mpsl.tasks import TaskKind, TaskRecord

    def rec(node: str, kind: TaskKind, start: float, owner: int = 0) -> TaskRecord:
        return TaskRecord(node, owner, 0, 0, kind, start, start + 0.1)

    tasks = [
        rec("owner2", TaskKind.FIRST_FWD, 0.0, 1),
        rec("owner1", TaskKind.FIRST_FWD, 0.0),
        rec("zeta", TaskKind.FWD, 0.2),  # first in the chain, though last by name
        rec("alpha", TaskKind.FWD, 0.4),
        rec("zeta", TaskKind.BWD, 0.9),
        rec("aggregator", TaskKind.AGGREGATE, 1.0, -1),
    ]
    names = {t.node for t in tasks}
    assert _row_order(names, tasks) == ["owner1", "owner2", "zeta", "alpha", "aggregator"]
