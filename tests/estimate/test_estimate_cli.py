"""``mpsl estimate`` end to end, and cluster-file errors as the user sees them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli_run import run
from mpsl.cluster import Cluster
from mpsl.errors import FormatError
from mpsl.profile.format import LayerProfile, Profile, Timing
from mpsl.tasks import TaskRecord

CLUSTER: dict[str, Any] = {
    "data_owners": [
        {"name": "pi4", "count": 4, "device": "d1", "memory_bytes": 4e9, "link_bps": 8e6}
    ],
    "compute_nodes": [
        {"name": "vm1", "device": "VM", "memory_bytes": 16e9},
        {"name": "vm2", "device": "VM", "memory_bytes": 16e9},
    ],
    "links": {"compute_to_compute_bps": 7.13e9},
    "training": {"batch_size": 128, "batches_per_epoch": 2, "local_epochs": 1},
}


def write(tmp_path: Path, data: dict[str, Any], name: str = "cluster.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def estimate(tmp_path: Path, *extra: str, cluster: dict[str, Any] = CLUSTER) -> list[str]:
    """``mpsl estimate`` arguments: the VGG-19 reference profile on ``cluster``, then ``extra``."""
    cluster_file = write(tmp_path, cluster)
    return ["estimate", "--profile", "mpsl_vgg19_CIFAR", "--cluster", cluster_file, *extra]


def test_estimate_json_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = estimate(tmp_path, "--cuts", "3,12,20", "--json", "--baselines")
    code, out, _ = run(args, monkeypatch, capsys)
    assert code == 0
    data = json.loads(out)
    assert data["method"] == "closed" and data["round_s"] > 0
    assert set(data["utilization"]) == {"vm1", "vm2"}
    assert set(data["memory_bytes"]) == {"vm1", "vm2", "data_owner"}
    assert data["fits"] == {"vm1": True, "vm2": True, "pi4": True}
    assert set(data["baselines"]) == {"horizontal_one_hop", "sequential_sl", "on_device_fedavg"}


def test_estimate_sim_writes_a_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "trace.jsonl"
    args = [
        *estimate(tmp_path, "--cuts", "3,12,20"),
        "--nodes",
        "vm2,vm1",
        "--method",
        "sim",
        "--policy",
        "backward-first",
        "--stragglers",
        "0=2",
        "--trace",
        str(trace),
        "--json",
    ]
    code, out, _ = run(args, monkeypatch, capsys)
    assert code == 0
    data = json.loads(out)
    assert data["policy"] == "backward-first" and set(data["queues"]) == {"vm1", "vm2"}
    assert list(data["links"]) == ["vm2->vm1", "vm1->vm2"]
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert {r["node"] for r in records} >= {"vm1", "vm2", "owner1", "owner1.link", "aggregator"}
    assert all(r["end"] >= r["start"] for r in records)
    assert set(records[0]) == {"node", "owner", "batch", "round", "kind", "start", "end", "bytes"}
    assert [TaskRecord.from_json(r).to_json() for r in records] == records


def test_roles_sharing_one_core_take_as_long_as_all_their_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fast_links = {
        **CLUSTER,
        "data_owners": [{**CLUSTER["data_owners"][0], "device": "VM", "link_bps": 1e15}],
        "links": {"compute_to_compute_bps": 1e15},
    }
    base = estimate(tmp_path, "--cuts", "3,12,20", "--method", "sim", "--json", cluster=fast_links)
    apart = json.loads(run(base, monkeypatch, capsys)[1])
    one = json.loads(run([*base, "--shared-cores", "1"], monkeypatch, capsys)[1])
    busy = sum(u * apart["round_s"] for u in apart["utilization"].values())
    assert one["round_s"] > apart["round_s"]
    # one core: both nodes' work and the data owners' own work, one after the other
    assert one["round_s"] > busy
    assert sum(u * one["round_s"] for u in one["utilization"].values()) == pytest.approx(busy)


def test_estimate_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = estimate(tmp_path, "--cuts", "3,12,20", "--method", "sim")
    code, out, _ = run(args, monkeypatch, capsys)
    assert code == 0
    assert "round time (sim, fifo)" in out and "vm1->vm2" in out and "pi4" in out


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c.pop("links"), "field 'links': Field required"),
        (
            lambda c: c["compute_nodes"][1].pop("memory_bytes"),
            "field 'compute_nodes[1].memory_bytes': Field required",
        ),
        (
            lambda c: c["compute_nodes"][1].update(device="tpu9"),
            "compute_nodes[1].device 'tpu9' not in the profile",
        ),
        (
            lambda c: c["data_owners"][0].update(device="phone"),
            "data_owners[0].device 'phone' not in the profile",
        ),
        (lambda c: c["data_owners"][0].update(link_bps=-1), "data_owners[0].link_bps"),
    ],
)
def test_cluster_errors_name_the_field(
    change: Any,
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = json.loads(json.dumps(CLUSTER))
    change(bad)
    path = write(tmp_path, bad)
    args = ["estimate", "--profile", "mpsl_vgg19_CIFAR", "--cluster", path, "--cuts", "3,12,20"]
    code, out, err = run(args, monkeypatch, capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and expected in err and path in err


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--cuts", "3,30"], "cut 30 is outside"),
        (["--cuts", "3,12,20", "--policy", "fifo"], "method 'sim'"),
        (["--cuts", "3,12,20", "--method", "sim", "--stragglers", "9=2"], "straggler index 9"),
        (["--cuts", "3,12,20", "--method", "sim", "--stragglers", "x"], "OWNER=FACTOR"),
        (["--cuts", "3,12,20", "--nodes", "vm1,vm7"], "no compute node 'vm7'"),
        (["--cuts", "3,12,20", "--profile", "nope"], "no such profile file"),
        (["--cuts", "3,12,20", "--shared-cores", "1"], "method 'sim'"),
        (["--cuts", "3,12,20", "--method", "sim", "--shared-cores", "0"], "at least 1 core"),
    ],
)
def test_bad_options_are_clear_errors(
    extra: list[str],
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = estimate(tmp_path, *extra)
    code, _, err = run(args, monkeypatch, capsys)
    assert code == 2 and expected in err


def test_check_devices_names_every_missing_device() -> None:
    profile = Profile(
        model="m",
        batch_size=8,
        layers=[
            LayerProfile(name="a", output_bytes=1, param_bytes=1, ms={"VM": Timing(fwd=1, bwd=1)})
        ],
    )
    bad = json.loads(json.dumps(CLUSTER))
    bad["compute_nodes"][1]["device"] = "gpu"
    cluster = Cluster.model_validate(bad)
    with pytest.raises(FormatError) as err:
        profile.require_devices(cluster.devices(), source="c.json")
    msg = str(err.value)
    assert msg.startswith("c.json: ")
    assert "compute_nodes[1].device 'gpu'" in msg and "data_owners[0].device 'd1'" in msg
    assert "compute_nodes[0]" not in msg and "devices there: VM" in msg
