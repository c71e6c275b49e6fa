"""Emulation from a profile and a cluster: the runtime moves the bytes the profile says."""

from __future__ import annotations

import pytest

from mpsl.cluster import Cluster
from mpsl.emulate.emulation import Emulation
from mpsl.profile.format import LayerProfile, Profile, Timing
from mpsl.runtime.device import Device

PROFILE = Profile(
    model="toy",
    batch_size=8,
    layers=[
        LayerProfile(
            name=f"l{i}",
            output_bytes=1000 * i,
            param_bytes=10 * i,
            ms={"dev": Timing(fwd=0.01, bwd=0.02, opt=0.0)},
        )
        for i in range(1, 7)
    ],
)


def _cluster(owners: int) -> Cluster:
    return Cluster.model_validate(
        {
            "data_owners": [
                {"count": owners, "device": "dev", "memory_bytes": 1e9, "link_bps": 1e12}
            ],
            "compute_nodes": [
                {"name": f"n{i}", "device": "dev", "memory_bytes": 1e9} for i in range(3)
            ],
            "links": {"compute_to_compute_bps": 1e12},
            "training": {"batch_size": 8, "batches_per_epoch": 3, "local_epochs": 2},
        }
    )


def test_emulated_run_sends_profiled_bytes_and_runs_every_task():
    cuts = [1, 3, 5]  # owner keeps 1 and 6; nodes 2-3 and 4-5
    result = Emulation(PROFILE, _cluster(2), cuts).run()
    batches = 3 * 2
    links = result.bytes_per_link
    # The cluster's compute nodes n0 and n1 host the two middle parts, under their own names.
    assert links["owner1->n0"] == batches * 1000  # layer 1's activation
    assert links["n0->n1"] == 2 * batches * 3000  # layer 3's activation, both owners
    assert links["n1->owner2"] == batches * 5000  # layer 5's activation
    assert links["owner2->n1"] == batches * 5000  # its gradient
    assert links["n1->n0"] == 2 * batches * 3000
    assert links["n0->owner1"] == batches * 1000
    kinds = [r.kind for r in result.events.records if r.node == "n1"]
    assert kinds.count("fwd") == kinds.count("bwd") == 2 * batches


def test_emulation_devices_follow_profile_and_stragglers():
    em = Emulation(PROFILE, _cluster(2), [1, 3, 5], stragglers={1: 3.0})
    devices = em.devices()
    assert devices["n0"].times_ms == {"fwd": 0.02, "bwd": 0.04}
    assert devices["owner2"].times_ms["first_fwd"] == 3 * devices["owner1"].times_ms["first_fwd"]


def test_real_device_runs_work_and_emulated_device_skips_it_without_compute():
    calls = []
    assert Device().run("fwd", lambda: calls.append(1) or 7) == 7
    assert Device({"fwd": 0.0}, compute=False).run("fwd", lambda: calls.append(2)) is None
    assert calls == [1]


def test_emulate_command_reports_measured_and_predicted(tmp_path):
    import json

    from typer.testing import CliRunner

    from mpsl.cli import app

    profile, cluster = tmp_path / "p.json", tmp_path / "c.json"
    PROFILE.save(profile)
    _cluster(2).save(cluster)
    out = tmp_path / "run"
    args = [
        "emulate",
        "--profile",
        str(profile),
        "--cluster",
        str(cluster),
        "--cuts",
        "1,3,5",
        "--out",
        str(out),
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["measured_round_s"] > 0 and report["sim_round_s"] > 0
    assert (out / "events.jsonl").exists()
    bad = CliRunner().invoke(app, [*args[:-1], "--time-scale", "0"])
    assert bad.exit_code != 0


def test_emulation_with_real_compute_trains_the_real_model():
    from mpsl.data.synthetic import load_synthetic
    from mpsl.models import build_model

    data = load_synthetic((1, 8, 8), 10, train_size=64, test_size=16, seed=0)
    model = build_model("digits_cnn", 10, (1, 8, 8), seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    profile = PROFILE.model_copy(update={"model": "digits_cnn"})
    result = Emulation(profile, _cluster(2), [1, 3, 5]).run(compute=True, model=model, dataset=data)
    after = result.model.state_dict()
    assert any(not (before[k] == after[k]).all() for k in before)
    assert result.rounds[0].accuracy == result.rounds[0].accuracy  # evaluated (not NaN)
    assert result.bytes_per_link["owner1->n0"] == 6 * 8 * 32 * 8 * 8 * 4  # real activations


def test_emulated_device_starts_from_the_due_time_not_from_its_thread_waking_up():
    import threading
    import time
    from types import SimpleNamespace

    from mpsl.runtime.clock import Timeline

    seen = []
    transport = SimpleNamespace(keeping=True)
    timeline = Timeline()

    def role():
        clock = timeline
        due = time.perf_counter() - 10.0  # everything was due long ago: this thread is late
        clock.arrived(transport, "round_start", due - 1.0)
        clock.arrived(transport, "activation", due)
        device = Device({"fwd": 2.0, "first_fwd": 3.0}, compute=False, clock=timeline)
        device.run("fwd", lambda: None)  # starts when its activation was due
        seen.append(clock.now - due)
        device.run("first_fwd", lambda: None)  # no trigger: right after the previous task
        seen.append(clock.now - due)
        seen.append(clock.send_time(transport) == clock.now)
        seen.append(clock.send_time(SimpleNamespace(keeping=True)) != clock.now)  # not its clock

    worker = threading.Thread(target=role)
    worker.start()
    worker.join()
    assert seen[0] == pytest.approx(0.002, abs=1e-9)
    assert seen[1] == pytest.approx(0.005, abs=1e-9)
    assert seen[2] is True and seen[3] is True


def test_a_task_message_waits_for_a_late_sender_with_an_earlier_one():
    import threading

    from mpsl.runtime.clock import Timeline
    from mpsl.runtime.links import EmulatedLinks
    from mpsl.runtime.messages import Kind, Message

    transport = EmulatedLinks(lambda sender, dest, msg: (1e12, 0.0, msg.nbytes), Timeline())
    transport.MAX_HOLD_S = 3600.0  # never give up waiting in this test, however slow the machine
    parked, go = threading.Event(), threading.Event()

    def late_role():
        transport.recv("late")  # round start
        Device({"first_fwd": 1.0}, compute=False, clock=transport.clock).run(
            "first_fwd", lambda: None
        )
        parked.set()  # emulated time: its activation is due 1 ms after the round start
        go.wait()
        transport.send("node", Message(Kind.ACTIVATION, "late", owner=0))
        transport.recv("late")  # stop

    worker = threading.Thread(target=late_role)
    worker.start()
    transport.send("late", Message(Kind.ROUND_START, "main"))
    parked.wait()
    transport.send("node", Message(Kind.ACTIVATION, "main", owner=1))  # sent first, due later
    go.set()
    first, second = transport.recv("node"), transport.recv("node")
    transport.send("late", Message(Kind.STOP, "main"))
    worker.join()
    transport.close()
    assert (first.owner, second.owner) == (0, 1)


def test_simulated_and_emulated_task_records_match_one_by_one():
    from mpsl.estimate.simulate import simulate_deployment

    profile = Profile(
        model="toy",
        batch_size=8,
        layers=[
            LayerProfile(
                name=f"l{i}",
                output_bytes=1000,
                param_bytes=10,
                ms={"dev": Timing(fwd=0.7 + 0.3 * i, bwd=1.1 + 0.2 * i, opt=0.0)},
            )
            for i in range(1, 7)
        ],
    )
    cluster = _cluster(3)
    stragglers = {1: 1.37, 2: 1.91}
    cuts = [1, 3, 5]
    sim = simulate_deployment(profile, cluster, cuts, stragglers=stragglers, trace=True)
    result = Emulation(profile, cluster, cuts, stragglers=stragglers).run()

    # One vocabulary: the simulation's trace and the run's task log name the same rows (the
    # cluster's compute nodes, owner1..owner3), kinds, data owners and batches, record by record.
    def compute_rows(records) -> dict[str, list[tuple[int, str, int]]]:
        rows: dict[str, list[tuple[int, str, int]]] = {}
        for r in sorted(records, key=lambda r: (r.start, r.end)):
            if r.kind.computes:
                rows.setdefault(r.node, []).append((r.owner, str(r.kind), r.batch))
        return rows

    simulated, measured = compute_rows(sim.trace), compute_rows(result.events.records)
    assert set(simulated) == {"n0", "n1", "owner1", "owner2", "owner3"}
    assert measured == simulated
