"""``mpsl schedule`` through typer's test runner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mpsl.cli import app
from mpsl.errors import MpslError
from mpsl.schedule import Scenario

runner = CliRunner()
KEYS = {"makespan_ms", "lower_bound_ms", "optimal", "assignment", "tasks", "solve_ms", "method"}


def _json(args: list[str]) -> dict:
    result = runner.invoke(app, ["schedule", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_generate_json_has_the_documented_keys(tmp_path: Path) -> None:
    saved = tmp_path / "sc.json"
    out = _json(["--generate", "--owners", "6", "--helpers", "2", "--method", "fast",
                 "--save-scenario", str(saved)])  # fmt: skip
    assert set(out) >= KEYS
    assert out["method"] == "fast" and len(out["assignment"]) == 6 and len(out["tasks"]) == 12
    assert set(out["tasks"][0]) == {"owner", "helper", "kind", "start_ms", "end_ms"}
    assert {t["kind"] for t in out["tasks"]} == {"fwd", "bwd"}
    assert Scenario.load(saved).num_owners == 6
    again = _json(["--scenario", str(saved), "--method", "fast"])
    assert again["makespan_ms"] == out["makespan_ms"]


def test_exact_reports_bound_and_optimality() -> None:
    out = _json(["--generate", "--model", "vgg19", "--owners", "5", "--helpers", "2",
                 "--heterogeneity", "high", "--method", "exact", "--time-limit", "5"])  # fmt: skip
    assert out["optimal"] is True
    assert out["lower_bound_ms"] <= out["makespan_ms"]


def test_auto_names_its_pick() -> None:
    out = _json(["--generate", "--owners", "4", "--helpers", "2", "--time-limit", "5"])
    assert out["requested_method"] == "auto" and out["method"] == "exact"


def test_profile_and_cluster_source(tmp_path: Path) -> None:
    cluster = tmp_path / "cluster.json"
    cluster.write_text(json.dumps({
        "data_owners": [{"count": 3, "device": "d1", "memory_bytes": 4e9, "link_bps": 8e6}],
        "compute_nodes": [{"name": "vm", "device": "VM", "memory_bytes": 16e9}],
        "links": {"compute_to_compute_bps": 7e9},
    }))  # fmt: skip
    profile = Path(__file__).parents[2] / "src/mpsl/profiles/workflow_resnet101_CIFAR.json"
    out = _json(["--profile", str(profile), "--cluster", str(cluster), "--cuts", "3,33",
                 "--method", "balanced-greedy"])  # fmt: skip
    assert out["assignment"] == [0, 0, 0]


def test_human_summary() -> None:
    result = runner.invoke(app, ["schedule", "--generate", "--owners", "4", "--helpers", "2",
                                 "--method", "random"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "makespan" in result.stdout and "h0" in result.stdout


def _error(args: list[str]) -> str:
    result = runner.invoke(app, ["schedule", *args])
    assert isinstance(result.exception, MpslError), result.output
    return str(result.exception)


def test_bad_input_is_an_mpsl_error(tmp_path: Path) -> None:
    assert "exactly one scenario source" in _error([])
    assert "exactly one scenario source" in _error(["--generate", "--scenario", "x.json"])
    assert "unknown method" in _error(["--generate", "--method", "best"])
    assert "missing: --cuts" in _error(["--profile", "p.json", "--cluster", "c.json"])
    assert "file not found" in _error(["--scenario", str(tmp_path / "none.json")])
    assert "choose 1 <= c0 < c1" in _error(["--generate", "--cuts", "3,99"])
