"""estimate(): closed form and simulation on a shipped profile, memory fit, baselines."""

from __future__ import annotations

import pytest

from mpsl.cluster import Cluster
from mpsl.errors import ConfigError
from mpsl.estimate.closed_form import multihop
from mpsl.estimate.costs import pipeline_costs
from mpsl.estimate.memory import memory_by_role
from mpsl.estimate.simulate import simulate_deployment
from mpsl.estimate.summary import estimate
from mpsl.profile.format import Profile


def vgg() -> Profile:
    from importlib import resources

    with resources.as_file(resources.files("mpsl") / "profiles" / "mpsl_vgg19_CIFAR.json") as p:
        return Profile.load(p)


def cluster(owners: int = 6, node_memory: float = 16e9, latency: float = 0.0) -> Cluster:
    return Cluster.model_validate(
        {
            "data_owners": [
                {
                    "name": "pi4",
                    "count": owners,
                    "device": "d1",
                    "memory_bytes": 4e9,
                    "link_bps": 8e6,
                }
            ],
            "compute_nodes": [
                {"name": "vm1", "device": "VM", "memory_bytes": node_memory},
                {"name": "vm2", "device": "VM", "memory_bytes": 16e9},
            ],
            "links": {"compute_to_compute_bps": 7.13e9, "compute_to_compute_latency_s": latency},
            "training": {"batch_size": 128, "batches_per_epoch": 2, "local_epochs": 2},
        }
    )


CUTS = (3, 12, 20)


def test_closed_estimate_uses_the_closed_form_and_busy_over_round() -> None:
    p, c = vgg(), cluster()
    est = estimate(p, c, CUTS)
    costs = pipeline_costs(p, c, CUTS)
    assert est.round_ms == pytest.approx(multihop(costs).round_ms)
    assert est.terms == multihop(costs).terms
    for node, nc in zip(est.nodes, costs.nodes, strict=True):
        assert node.busy_ms == pytest.approx(4 * 6 * (nc.fwd_ms + nc.bwd_ms))
        assert node.utilization == pytest.approx(node.busy_ms / est.round_ms)
    out = est.to_json()
    assert out["round_s"] == pytest.approx(est.round_ms / 1000)
    assert set(out) >= {"round_s", "terms", "memory_bytes", "utilization", "fits"}
    assert out["memory_bytes"] == memory_by_role(p, CUTS, 6, ["vm1", "vm2"])
    assert out["fits"] == {"vm1": True, "vm2": True, "pi4": True}
    assert "queues" not in out and "policy" not in out


def test_sim_estimate_reports_phases_queues_and_links() -> None:
    p, c = vgg(), cluster()
    est = estimate(p, c, CUTS, method="sim", policy="backward-first", trace=True)
    out = est.to_json()
    assert set(out["terms"]) == {"training", "aggregation"}
    assert out["policy"] == "backward-first"
    assert set(out["queues"]) == {"vm1", "vm2"} and set(out["links"]) == {"vm1->vm2", "vm2->vm1"}
    assert out["links"]["vm1->vm2"]["transfers"] == 4 * 6
    assert est.trace and est.round_ms == pytest.approx(
        simulate_deployment(p, c, CUTS, policy="backward-first").round_ms
    )
    assert max(t.end for t in est.trace) == pytest.approx(est.round_s)  # seconds, like a run's


def test_memory_over_capacity_is_marked() -> None:
    est = estimate(vgg(), cluster(owners=40, node_memory=1e9), CUTS)
    assert est.to_json()["fits"]["vm1"] is False
    assert est.to_json()["fits"]["vm2"] is True


def test_baselines_are_added_or_explain_why_not() -> None:
    est = estimate(vgg(), cluster(), CUTS, with_baselines=True)
    base = est.to_json()["baselines"]
    assert set(base) == {"horizontal_one_hop", "sequential_sl", "on_device_fedavg"}
    # Sequential SL runs one batch at a time: longer training than the pipeline's.
    assert base["sequential_sl"]["terms"]["training"] > est.to_json()["terms"]["pipe_full"]
    assert all("round_s" in b or "error" in b for b in base.values())


def test_link_latency_reaches_the_simulation() -> None:
    p = vgg()
    slow = simulate_deployment(p, cluster(latency=0.5), CUTS, trace=True)
    fast = simulate_deployment(p, cluster(), CUTS)
    assert slow.round_ms > fast.round_ms
    # Latency delays delivery but leaves the link free: busy time equals the no-latency case.
    assert [ln.busy_ms for ln in slow.links] == pytest.approx([ln.busy_ms for ln in fast.links])


def test_closed_method_rejects_simulation_options() -> None:
    with pytest.raises(ConfigError, match="method 'sim'"):
        estimate(vgg(), cluster(), CUTS, policy="fifo")
    with pytest.raises(ConfigError, match="unknown method"):
        estimate(vgg(), cluster(), CUTS, method="magic")


def test_the_scheduled_policy_needs_orders_an_estimate_does_not_take() -> None:
    with pytest.raises(ConfigError, match="field 'policy': the scheduled policy") as err:
        estimate(vgg(), cluster(), CUTS, method="sim", policy="scheduled")
    assert err.value.field == "policy"
