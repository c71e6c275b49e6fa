"""A compute node's memory budget (issue #18) in the estimator and the planner: memory flat in K,
swap time in the round, plans that fit only with a budget, and nothing changed without one."""

from __future__ import annotations

import importlib.resources
import json

import pytest
from typer.testing import CliRunner

from mpsl.cli import app
from mpsl.cluster import DEFAULT_SWAP_BYTES_PER_S, Cluster, reference_testbed
from mpsl.estimate.closed_form import multihop
from mpsl.estimate.costs import pipeline_costs
from mpsl.estimate.memory import budgeted_node_memory, node_memory_bytes, part_state_bytes
from mpsl.estimate.summary import estimate
from mpsl.plan import make_plan
from mpsl.plan.types import Plan
from mpsl.profile.format import Profile


def reference(name: str) -> Profile:
    text = (importlib.resources.files("mpsl") / "profiles" / f"{name}.json").read_text()
    return Profile.model_validate_json(text)


VGG = reference("mpsl_vgg19_CIFAR")
CUTS = [3, 12, 20]  # vm1: layers 4..12, vm2: layers 13..20


def two_vms(
    owners: int, budget: float | None = None, memory: float = 16e9, **extra: float
) -> Cluster:
    nodes = []
    for name in ("vm1", "vm2"):
        node: dict[str, object] = {"name": name, "device": "VM", "memory_bytes": memory}
        if budget is not None:
            node["memory_budget_bytes"] = budget
        node.update(extra)
        nodes.append(node)
    return reference_testbed(nodes, owners)


def test_no_budget_is_the_unbudgeted_model() -> None:
    for k in (1, 10, 100):
        mem = budgeted_node_memory(VGG, 4, 12, k, None)
        assert mem.bytes == mem.unbudgeted_bytes == node_memory_bytes(VGG, 4, 12, k)
        assert mem.resident == k and mem.swap_ms(1e9) == 0.0


def test_budget_above_need_changes_nothing() -> None:
    k = 10
    plain, roomy = two_vms(k), two_vms(k, budget=1e15)
    assert pipeline_costs(VGG, plain, CUTS) == pipeline_costs(VGG, roomy, CUTS)
    assert estimate(VGG, plain, CUTS).round_ms == estimate(VGG, roomy, CUTS).round_ms


def test_budgeted_memory_is_flat_in_k_and_round_grows_with_swaps() -> None:
    budget = 2e9
    mems: list[list[int]] = []
    rounds: list[float] = []
    swaps: list[float] = []
    for k in (50, 100, 200, 400):
        c = two_vms(k, budget=budget)
        est = estimate(VGG, c, CUTS)
        mems.append([n.memory_bytes for n in est.nodes])
        costs = pipeline_costs(VGG, c, CUTS)
        swaps.append(costs.nodes[0].swap_ms)
        plain = multihop(pipeline_costs(VGG, two_vms(k), CUTS)).round_ms
        assert est.round_ms > plain  # swapping costs time
        rounds.append(est.round_ms - plain)
        for n in est.nodes:
            assert n.memory_bytes <= budget < node_memory_bytes(VGG, n.first_layer, n.last_layer, k)
    assert all(m == mems[0] for m in mems)  # flat in K
    assert swaps == sorted(swaps) and swaps[0] > 0  # more of the instances swapped
    assert rounds == sorted(rounds)  # the swap time of a round grows with K


def test_swap_time_is_two_instances_over_the_rate() -> None:
    k, rate = 100, 5e8
    c = two_vms(k, budget=2e9, swap_bytes_per_s=rate)
    mem = budgeted_node_memory(VGG, 4, 12, k, 2e9, c.training.batch_size / VGG.batch_size)
    want = 1000 * 2 * part_state_bytes(VGG, 4, 12) / rate * (k - mem.resident) / k
    assert pipeline_costs(VGG, c, CUTS).nodes[0].swap_ms == pytest.approx(want)
    default = two_vms(k, budget=2e9)
    assert pipeline_costs(VGG, default, CUTS).nodes[0].swap_ms == pytest.approx(
        want * rate / DEFAULT_SWAP_BYTES_PER_S
    )


def test_plan_only_with_a_budget_and_slower() -> None:
    k = 100
    tight = two_vms(k, memory=3e9)
    none = make_plan(VGG, tight, 3, 20)
    assert not none.feasible and "memory_budget_bytes" in (none.reason or "")
    budgeted = make_plan(VGG, two_vms(k, budget=2.5e9, memory=3e9), 3, 20)
    assert budgeted.feasible
    assert budgeted.memory_unbudgeted_bytes is not None
    for name, need in budgeted.memory_bytes.items():
        assert need <= 2.5e9 < budgeted.memory_unbudgeted_bytes[name]
    roomy = make_plan(VGG, two_vms(k), 3, 20)
    assert roomy.feasible and roomy.memory_unbudgeted_bytes is None
    assert budgeted.predicted["round_s"] > roomy.predicted["round_s"]  # memory traded for time
    # the planner's prediction is the estimator's, swap included
    est = estimate(VGG, two_vms(k, budget=2.5e9, memory=3e9), budgeted.cuts, budgeted.nodes)
    assert budgeted.predicted["round_s"] == pytest.approx(est.round_ms / 1000)


def test_brute_force_agrees_under_a_budget() -> None:
    c = two_vms(100, budget=2.5e9, memory=3e9)
    dp = make_plan(VGG, c, 3, 20, method="dp")
    brute = make_plan(VGG, c, 3, 20, method="brute")
    assert dp.objective_value == pytest.approx(brute.objective_value)


def test_plan_cli_shows_memory_with_and_without_budget(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cluster_file = tmp_path / "cluster.json"
    two_vms(100, budget=2.5e9, memory=3e9).save(cluster_file)
    profile_file = tmp_path / "vgg.json"
    profile_file.write_text(VGG.model_dump_json())
    out = tmp_path / "plan.json"
    result = CliRunner().invoke(
        app,
        [
            "plan",
            "--profile",
            str(profile_file),
            "--cluster",
            str(cluster_file),
            "--first-cut",
            "3",
            "--last-cut",
            "20",
            "--out",
            str(out),
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "without budget" in result.output
    plan = Plan.load(out)
    assert plan.memory_unbudgeted_bytes is not None
    assert json.loads(cluster_file.read_text())["compute_nodes"][0]["memory_budget_bytes"] == 2.5e9
