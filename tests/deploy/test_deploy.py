"""Deployments over loopback: every role its own process (or thread), same result as in-process."""

import threading

import pytest
import torch
from deploy_helpers import small_config
from pydantic import ValidationError

from mpsl.deploy.control import ControlKind
from mpsl.deploy.coordinator import DeploymentCoordinator
from mpsl.deploy.launch import run_processes
from mpsl.deploy.role import Role
from mpsl.deploy.wire import DTYPE_CODES, HEAD
from mpsl.errors import ConfigError, RuntimeFailure
from mpsl.runtime.engine import InProcessEngine
from mpsl.runtime.layout import Layout, RoleKind
from mpsl.runtime.messages import Kind
from mpsl.runtime.setup import load_run_data, owner_shares
from mpsl.training.steps import batch_plan, owner_seed


def test_equivalence_of_processes_and_in_process_engine():
    """Coordinator, 2 compute nodes, aggregator, 3 data owners as processes: same final weights."""
    cfg = small_config(rounds=2)
    local = InProcessEngine(cfg).run()
    remote = run_processes(DeploymentCoordinator(cfg))
    want, got = local.model.state_dict(), remote.model.state_dict()
    assert set(want) == set(got)
    for k in want:
        assert torch.allclose(want[k], got[k], atol=1e-5, rtol=0), k
    assert [r.samples for r in remote.rounds] == [r.samples for r in local.rounds]
    assert remote.rounds[-1].accuracy == pytest.approx(local.rounds[-1].accuracy, abs=1e-9)
    # Every member reported its tasks and links, as the in-process engine does.
    assert {e.node for e in remote.events.records} == {
        "node1",
        "node2",
        "aggregator",
        "owner1",
        "owner2",
        "owner3",
    }
    assert remote.bytes_per_link.keys() == local.bytes_per_link.keys()
    assert set(remote.peak_memory_bytes) >= {"node1", "node2"}


def test_thread_deployment_reports_like_the_local_engine(deployment):
    result = deployment().run()
    assert len(result.rounds) == 1 and result.rounds[0].samples == 3 * 3 * 16
    kinds = {(e.node, e.kind) for e in result.events.records}
    assert ("node1", "fwd") in kinds and ("node2", "bwd") in kinds and ("owner3", "last") in kinds
    starts = [e.start for e in result.events.records]
    assert min(starts) >= 0  # one clock: the coordinator's


def test_a_deployment_follows_the_placement(deployment):
    """Members named after the plan's nodes host its parts: vm2 the first, vm1 the second."""
    cfg = small_config(nodes=["vm2", "vm1"])
    local = InProcessEngine(cfg).run()
    dep = deployment(cfg)
    assert dep.coordinator.members[:2] == ["vm2", "vm1"]
    result = dep.run()
    kinds = {(e.node, e.kind) for e in result.events.records}
    assert {("vm2", "fwd"), ("vm1", "bwd")} <= kinds
    assert not {e.node for e in result.events.records} & {"node1", "node2"}
    assert result.bytes_per_link.keys() == local.bytes_per_link.keys()
    assert {"owner1->vm2", "vm2->vm1", "vm1->owner1"} <= set(result.bytes_per_link)
    want, got = local.model.state_dict(), result.model.state_dict()
    assert all(torch.allclose(want[k], got[k], atol=1e-5, rtol=0) for k in want)


def test_label_privacy_audit(deployment):
    """Record every message a data owner sends: no labels, no raw inputs cross the wire."""
    dep = deployment(small_config(batches_per_epoch=2))
    sent: dict[str, list[tuple[str, Kind, list[bytes]]]] = {}

    def recording(options):
        role = Role(options)
        transport = role.transport
        original = transport.send
        log = sent.setdefault(options.name, [])

        def send(dest, msg):
            from mpsl.deploy.wire import encode

            log.append((dest, msg.kind, [bytes(f) for f in encode(msg)]))
            original(dest, msg)

        transport.send = send
        return role

    for name in dep.coordinator.members:
        dep.start_member(name, recording if name.startswith("owner") else Role)
    dep.coordinator.run(dep.transport)
    dep.transport.close()

    data = load_run_data(dep.config)
    shares = owner_shares(dep.config, data)
    for k in range(3):
        log = sent[f"owner{k + 1}"]
        assert log, "the data owner sent nothing"
        # Where a data owner's messages go, and what they are.
        allowed = {
            ("node1", Kind.ACTIVATION),
            ("node2", Kind.GRADIENT),
            ("aggregator", Kind.WEIGHTS),
            ("coordinator", ControlKind.REGISTER),
            ("coordinator", ControlKind.READY),
            ("coordinator", Kind.ROUND_DONE),
            ("coordinator", ControlKind.HEARTBEAT),
            ("coordinator", ControlKind.RECORDS),  # task timings while the rounds run
            ("coordinator", ControlKind.METRICS),
        }
        assert {(d, kind) for d, kind, _ in log} <= allowed
        wire = b"".join(b for _, _, frames in log for b in frames)
        x, y = shares[k].x, shares[k].y
        # No raw input sample, in any dtype it could be sent as, appears in any frame.
        for row in x.reshape(len(x), -1):
            for dtype in (torch.float32, torch.float16, torch.float64):
                assert row.to(dtype).numpy().tobytes() not in wire
        # No batch's labels, in the order the data owner trained on them, appear in any frame.
        cfg = dep.config
        batches = batch_plan(
            len(y),
            cfg.batch_size,
            cfg.batches_per_epoch,
            cfg.local_epochs,
            owner_seed(cfg.seed, k, 0),
        )
        for idx in batches:
            labels = y[idx]
            assert labels.unique().numel() > 1  # a meaningful pattern to look for
            for dtype in (torch.int64, torch.int32, torch.uint8, torch.float32):
                assert labels.to(dtype).numpy().tobytes() not in wire
        # Tensors sent are activations/gradients/weights: floating point only.
        for _, kind, frames in log:
            if kind in (Kind.ACTIVATION, Kind.GRADIENT):
                assert HEAD.unpack_from(frames[0])[4] == DTYPE_CODES[torch.float32]


class Silent(Role):
    """A member that registers and gets ready, then never speaks again (a crashed host)."""

    released = threading.Event()

    def _serve(self, worker, heartbeat_s, timeout_s):
        self.released.wait(60)


def test_a_vanished_member_ends_the_run_with_a_clear_error(deployment):
    dep = deployment(timeout_s=1.5)
    dep.start_member("node2", Silent)
    try:
        with pytest.raises(RuntimeFailure, match=r"compute-node node2 at tcp://.* vanished"):
            dep.run(skip=("node2",))
    finally:
        Silent.released.set()  # no member thread outlives the test
        dep.join()


def test_member_names_are_checked():
    layout = Layout.chain(3, 12)
    assert layout.role_of("node3") is RoleKind.COMPUTE_NODE
    assert layout.role_of("owner12") is RoleKind.DATA_OWNER
    assert Layout.chain(2, 1, ["vm2", "vm1"]).role_of("vm1") is RoleKind.COMPUTE_NODE
    for bad in ("node0", "node4", "nodes", "owner", "owner13", "helper1"):
        with pytest.raises(ConfigError, match="not a member of this run"):
            layout.role_of(bad)


def test_schedules_are_refused_by_a_deployment(tmp_path, monkeypatch, capsys):
    # A RunConfig holds no schedule (the CLI's JobConfig does): `mpsl run --engine processes`
    # refuses one before planning or starting any process (`mpsl coordinator`:
    # tests/cli/test_run_options.py).
    from cli_run import run

    with pytest.raises(ValidationError, match="schedule"):
        small_config(schedule="s.json", compute_nodes=1)
    out = tmp_path / "never"
    args = ["run", "--engine", "processes", "--schedule", str(tmp_path / "s.json"), "--out"]
    code, _, err = run([*args, str(out)], monkeypatch, capsys)
    assert code == 2 and "a deployment runs the multihop chain" in err
    assert not out.exists()  # refused before anything was written
