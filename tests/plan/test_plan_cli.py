"""``mpsl plan``: JSON keys, exit codes, the plan file, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mpsl.cli import app
from mpsl.errors import ConfigError, CutError, FormatError
from mpsl.plan import Plan

runner = CliRunner()


def write_cluster(
    tmp_path: Path, memory_gb: float = 16, owners: int = 100, device: str = "VM"
) -> Path:
    data = {
        "data_owners": [{"count": owners, "device": "d1", "memory_bytes": 4e9, "link_bps": 8e6}],
        "compute_nodes": [
            {"name": "vm1", "device": device, "memory_bytes": memory_gb * 1e9, "price_per_hour": 1},
            {
                "name": "vm2",
                "device": "VM",
                "memory_bytes": memory_gb * 1e9,
                "slowdown": 1.5,
                "price_per_hour": 0.5,
            },
            {
                "name": "laptop",
                "device": "laptop",
                "memory_bytes": memory_gb * 1e9,
                "price_per_hour": 0.2,
            },
        ],
        "links": {"compute_to_compute_bps": 7.13e9},
    }
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps(data))
    return path


def plan_args(cluster: Path, *extra: str) -> list[str]:
    return [
        "plan",
        "--profile",
        "mpsl_vgg19_CIFAR",
        "--cluster",
        str(cluster),
        "--first-cut",
        "3",
        "--last-cut",
        "20",
        *extra,
    ]


def test_json_has_the_documented_keys(tmp_path: Path) -> None:
    result = runner.invoke(app, plan_args(write_cluster(tmp_path), "--json"))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in (
        "feasible",
        "cuts",
        "parts",
        "objective",
        "objective_value",
        "predicted",
        "memory_bytes",
        "solve_ms",
        "manual",
    ):
        assert key in data
    assert data["feasible"] is True and data["objective"] == "epoch"
    assert data["cuts"][0] == 3 and data["cuts"][-1] == 20
    assert set(data["parts"][0]) == {"node", "first_layer", "last_layer"}
    assert data["predicted"]["round_s"] == pytest.approx(data["objective_value"])
    assert set(data["memory_bytes"]) == {p["node"] for p in data["parts"]}
    assert {"cuts", "nodes", "objective_value"} <= set(data["manual"])


def test_out_writes_a_plan_that_loads(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = runner.invoke(
        app, plan_args(write_cluster(tmp_path), "--hops", "2", "--out", str(out))
    )
    assert result.exit_code == 0, result.output
    plan = Plan.load(out)
    assert plan.feasible and len(plan.parts) == 2 and len(plan.nodes) == 2
    assert plan.parts[0].first_layer == 4 and plan.parts[-1].last_layer == 20


def test_objectives_and_pareto(tmp_path: Path) -> None:
    cluster = write_cluster(tmp_path, memory_gb=64, owners=20)
    for objective in ("paper", "cost"):
        result = runner.invoke(app, plan_args(cluster, "--objective", objective, "--json"))
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["objective"] == objective
    result = runner.invoke(app, plan_args(cluster, "--objective", "cost", "--pareto", "--json"))
    front = json.loads(result.stdout)["frontier"]
    assert front and {"nodes", "cuts", "round_s", "cost"} <= set(front[0])
    human = runner.invoke(app, plan_args(cluster, "--pareto"))
    assert human.exit_code == 0 and "frontier" in human.stdout and "manual split" in human.stdout


def test_infeasible_exit_codes(tmp_path: Path) -> None:
    cluster = write_cluster(tmp_path, memory_gb=2)
    with_json = runner.invoke(app, plan_args(cluster, "--json"))
    assert with_json.exit_code == 0
    data = json.loads(with_json.stdout)
    assert data["feasible"] is False and "short by" in data["reason"]
    plain = runner.invoke(app, plan_args(cluster))
    assert plain.exit_code == 2
    assert "short by" in plain.stderr


def test_infeasible_writes_no_plan_file(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    runner.invoke(app, plan_args(write_cluster(tmp_path, memory_gb=2), "--json", "--out", str(out)))
    assert not out.exists()


def test_bad_inputs_raise_clear_errors(tmp_path: Path) -> None:
    cluster = write_cluster(tmp_path)
    args = plan_args(cluster)
    args[args.index("--first-cut") + 1] = "21"
    result = runner.invoke(app, args)
    assert isinstance(result.exception, CutError) and "must be below" in str(result.exception)
    result = runner.invoke(app, plan_args(write_cluster(tmp_path, device="tpu")))
    assert isinstance(result.exception, FormatError) and "tpu" in str(result.exception)
    result = runner.invoke(app, plan_args(tmp_path / "missing.json"))
    assert isinstance(result.exception, FormatError) and "not found" in str(result.exception)


def test_main_turns_errors_into_exit_code_2(tmp_path: Path, monkeypatch, capsys) -> None:
    from mpsl.cli import main

    args = plan_args(write_cluster(tmp_path))
    args[args.index("--last-cut") + 1] = "30"
    monkeypatch.setattr("sys.argv", ["mpsl", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "outside" in err


def test_memory_objective_and_equal_manual_split(tmp_path: Path) -> None:
    cluster = write_cluster(tmp_path, memory_gb=64, owners=20)
    result = runner.invoke(
        app, plan_args(cluster, "--objective", "memory", "--manual", "equal", "--json")
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["objective"] == "memory"
    assert data["objective_value"] == max(data["memory_bytes"].values())
    assert data["manual"]["kind"] == "equal"
    assert data["manual"]["objective_value"] >= data["objective_value"]  # the optimum is least
    human = runner.invoke(app, plan_args(cluster, "--objective", "memory", "--manual", "equal"))
    assert human.exit_code == 0 and "manual split (equal)" in human.stdout


def test_sweep_parts_gives_one_plan_per_multihop_level(tmp_path: Path) -> None:
    cluster = write_cluster(tmp_path, memory_gb=64, owners=20)
    out = tmp_path / "sweep.json"
    args = plan_args(cluster, "--objective", "memory", "--sweep-parts", "3..", "--json")
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert json.loads(out.read_text()) == data
    assert [p["parts"] for p in data["points"]] == [3, 4, 5]  # 3 compute nodes: P up to 5
    for point in data["points"]:
        assert len(point["plan"]["parts"]) == point["parts"] - 2
        assert point["largest_node_bytes"] == max(point["plan"]["memory_bytes"].values())
    largest = [p["largest_node_bytes"] for p in data["points"]]
    assert largest == sorted(largest, reverse=True)
    human = runner.invoke(app, plan_args(cluster, "--sweep-parts", "3..4"))
    assert human.exit_code == 0 and "per multihop level" in human.stdout


@pytest.mark.parametrize("bad", ["2..4", "3..9", "x", "5..4"])
def test_sweep_parts_refuses_levels_the_model_cannot_have(tmp_path: Path, bad: str) -> None:
    result = runner.invoke(app, plan_args(write_cluster(tmp_path), "--sweep-parts", bad))
    assert isinstance(result.exception, ConfigError), result.output
    assert "--sweep-parts" in str(result.exception) and bad in str(result.exception)


def test_sweep_parts_shows_levels_without_a_plan_and_why(tmp_path: Path) -> None:
    cluster = write_cluster(tmp_path, memory_gb=16, owners=100)  # one node cannot hold K = 100
    args = plan_args(cluster, "--objective", "memory", "--sweep-parts", "3..4")
    human = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert human.exit_code == 0, human.output
    assert "none fits" in human.stdout and "P = 3: no plan with 1 compute node" in human.stdout
    data = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    first, second = data["points"]
    assert first["plan"]["feasible"] is False and "largest_node_bytes" not in first
    assert second["plan"]["feasible"] is True and second["largest_node_bytes"] > 0


def test_a_cluster_with_shared_hosts_or_uplinks_is_refused_naming_them(tmp_path: Path) -> None:
    path = write_cluster(tmp_path)
    data = json.loads(path.read_text())
    data["compute_nodes"][0]["host"] = data["compute_nodes"][1]["host"] = "box"
    data["hosts"] = [{"name": "box", "cores": 4}]
    path.write_text(json.dumps(data))
    result = runner.invoke(app, plan_args(path))
    assert isinstance(result.exception, ConfigError)
    message = str(result.exception)
    assert "field 'host'" in message and "shared host box" in message
    assert "--method sim" in message
