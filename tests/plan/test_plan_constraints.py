"""Constraints and choices of the planner on the reference profiles: memory, hop count, limits,
the frontier, the manual baseline, and infeasibility reports."""

from __future__ import annotations

import importlib.resources
import itertools
import re

import pytest

from mpsl.cluster import Cluster, reference_testbed
from mpsl.errors import ConfigError, CutError, FormatError
from mpsl.estimate.memory import node_memory_bytes, paper_node_memory_bytes
from mpsl.plan import build_problem, make_plan, solve
from mpsl.profile.format import Profile
from mpsl.split import check_cuts


def reference(name: str) -> Profile:
    text = (importlib.resources.files("mpsl") / "profiles" / f"{name}.json").read_text()
    return Profile.model_validate_json(text)


VGG = reference("mpsl_vgg19_CIFAR")
RESNET = reference("mpsl_resnet101_CIFAR")


def cluster(
    owners: int = 100,
    memory_gb: tuple[float, ...] = (16, 16, 8, 12, 6),
    prices: tuple[float, ...] = (0.4, 0.3, 0.1, 0.2, 0.05),
) -> Cluster:
    kinds = [
        ("vm1", "VM", 1.0),
        ("vm2", "VM", 1.5),
        ("laptop", "laptop", 1.0),
        ("vm3", "VM", 2.0),
        ("jetson", "jetson-gpu", 1.0),
    ]
    nodes = [
        {"name": n, "device": d, "slowdown": s, "memory_bytes": m * 1e9, "price_per_hour": p}
        for (n, d, s), m, p in zip(kinds, memory_gb, prices, strict=False)
    ]
    return reference_testbed(nodes, owners)


@pytest.mark.parametrize("objective", ["epoch", "paper", "cost", "memory"])
def test_every_part_fits_in_its_node(objective: str) -> None:
    c = cluster()
    plan = make_plan(VGG, c, 3, 20, objective)
    assert plan.feasible
    check_cuts(plan.cuts, VGG.num_layers)
    need = paper_node_memory_bytes if objective == "paper" else node_memory_bytes
    for part in plan.parts:
        want = need(VGG, part.first_layer, part.last_layer, 100)
        assert plan.memory_bytes[part.node] == want
        assert want <= c.node(part.node).memory_bytes
    assert plan.cuts[0] == 3 and plan.cuts[-1] == 20


def test_memory_binds_more_owners_need_more_nodes() -> None:
    few = make_plan(VGG, cluster(owners=20), 3, 20)
    many = make_plan(VGG, cluster(owners=100), 3, 20)
    assert len(many.parts) >= 2  # no single node holds 100 instances of layers 4..20
    assert len(few.parts) <= len(many.parts)


@pytest.mark.parametrize("hops", [1, 2, 3, 4])
def test_hops_uses_exactly_n_nodes(hops: int) -> None:
    plan = make_plan(RESNET, cluster(owners=10), 3, 33, hops=hops)
    assert plan.feasible and len(plan.parts) == hops and len(plan.cuts) == hops + 1


@pytest.mark.parametrize("objective", ["epoch", "paper", "cost", "memory"])
def test_auto_is_the_best_over_n(objective: str) -> None:
    c = cluster(owners=40)
    auto = make_plan(RESNET, c, 3, 33, objective)
    per_n = [make_plan(RESNET, c, 3, 33, objective, hops=n) for n in range(1, 6)]
    values = [p.objective_value for p in per_n if p.feasible]
    assert auto.objective_value == pytest.approx(min(values), rel=1e-12)


def test_infeasible_names_the_node_and_the_shortfall() -> None:
    c = cluster(owners=100, memory_gb=(4, 4, 4, 4, 4))
    plan = make_plan(VGG, c, 3, 20, hops=2)
    assert not plan.feasible and plan.parts == []
    reason = plan.reason or ""
    assert re.search(r"node '\w+'", reason) and "short by" in reason and "GB" in reason
    assert "100 data owners" in reason


def test_infeasible_shortfall_is_the_least_possible() -> None:
    # two nodes of 4 GB: the closest plan's worst node is short by the least amount possible
    c = cluster(owners=100, memory_gb=(4, 4), prices=(0, 0))
    plan = make_plan(VGG, c, 3, 20, hops=2)
    short = float(re.search(r"short by ([0-9.]+) GB", plan.reason or "").group(1))  # type: ignore[union-attr]
    best = min(
        max(node_memory_bytes(VGG, 4, k, 100), node_memory_bytes(VGG, k + 1, 20, 100)) - 4e9
        for k in range(4, 20)
    )
    assert short == pytest.approx(best / 1e9, abs=0.006)


def test_unmeasured_layer_is_never_placed_on_that_device() -> None:
    # the laptop has no timing for VGG layer 21 (pool5): it may not hold it
    c = cluster(owners=5)
    plan = make_plan(VGG, c, 3, 22)
    for part in plan.parts:
        if c.node(part.node).device == "laptop":
            assert not part.first_layer <= 21 <= part.last_layer


def test_cost_respects_max_round_and_beats_every_node_set() -> None:
    c = cluster(owners=30)
    free = make_plan(RESNET, c, 3, 33, "cost")
    fastest = make_plan(RESNET, c, 3, 33, "epoch")
    limit = (free.predicted["round_s"] + fastest.predicted["round_s"]) / 2
    bounded = make_plan(RESNET, c, 3, 33, "cost", max_round_s=limit)
    assert bounded.predicted["round_s"] <= limit
    assert bounded.objective_value >= free.objective_value
    too_fast = make_plan(RESNET, c, 3, 33, "cost", max_round_s=fastest.predicted["round_s"] * 0.9)
    assert not too_fast.feasible and "--max-round-s" in (too_fast.reason or "")


def test_pareto_frontier_is_non_dominated_and_holds_the_optimum() -> None:
    c = cluster(owners=30)
    plan = make_plan(RESNET, c, 3, 33, "cost", pareto=True)
    front = plan.frontier or []
    assert len(front) >= 2
    for a, b in itertools.pairwise(front):
        assert a.round_s <= b.round_s and a.cost > b.cost  # faster costs more
    assert front[-1].cost == pytest.approx(plan.objective_value)
    fastest = make_plan(RESNET, c, 3, 33, "epoch")
    assert front[0].round_s == pytest.approx(fastest.predicted["round_s"])


def test_frontier_equals_brute_force_on_a_small_case() -> None:
    c = cluster(owners=5, memory_gb=(16, 16, 8, 12))
    problem = build_problem(VGG, c, 12, 18, "cost")
    _, dp = solve(problem, "dp", with_frontier=True)
    _, brute = solve(problem, "brute", with_frontier=True)
    assert [(x.nodes, x.cuts) for x in dp] == [(x.nodes, x.cuts) for x in brute]


def test_manual_baseline_is_valid_and_never_better() -> None:
    for hops in (2, 3, 4):
        plan = make_plan(VGG, cluster(owners=100, memory_gb=(64, 64, 64, 64)), 3, 20, hops=hops)
        manual = plan.manual
        assert manual is not None and len(manual.nodes) == hops
        check_cuts(manual.cuts, VGG.num_layers)
        assert manual.cuts[0] == 3 and manual.cuts[-1] == 20
        assert manual.nodes == ["vm1", "vm2", "laptop", "vm3"][:hops]  # cluster order
        assert manual.runnable and manual.objective_value is not None
        assert plan.objective_value <= manual.objective_value
        assert manual.gain_pct is not None and manual.gain_pct >= 0


def test_manual_baseline_reports_memory_it_ignores() -> None:
    plan = make_plan(VGG, cluster(owners=100), 3, 20, hops=2)
    manual = plan.manual
    assert manual is not None and not manual.runnable and "needs" in (manual.reason or "")


def test_plans_are_deterministic() -> None:
    c = cluster(owners=60)
    a = make_plan(RESNET, c, 3, 33)
    b = make_plan(RESNET, c, 3, 33)
    assert (a.cuts, a.nodes) == (b.cuts, b.nodes)


@pytest.mark.parametrize(
    ("first", "last", "error", "words"),
    [
        (20, 3, CutError, "must be below"),
        (5, 5, CutError, "must be below"),
        (0, 10, CutError, "outside"),
        (3, 25, CutError, "outside"),
    ],
)
def test_bad_cuts_are_clear_errors(first: int, last: int, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        make_plan(VGG, cluster(), first, last)


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="--hops 9"):
        make_plan(VGG, cluster(), 3, 20, hops=9)
    with pytest.raises(ConfigError, match="--hops"):
        make_plan(VGG, cluster(), 3, 20, hops="many")
    with pytest.raises(ConfigError, match="--objective"):
        make_plan(VGG, cluster(), 3, 20, objective="speed")
    with pytest.raises(ConfigError, match="--max-round-s"):
        make_plan(VGG, cluster(), 3, 20, objective="paper", max_round_s=10)
    odd = cluster().model_copy(
        update={"compute_nodes": [cluster().compute_nodes[0].model_copy(update={"device": "tpu"})]}
    )
    with pytest.raises(FormatError, match="tpu"):
        make_plan(VGG, odd, 3, 20)
    # the data owner's own layers need timings on its device: d2 lacks most of VGG
    d2 = cluster().model_copy(
        update={"data_owners": [cluster().data_owners[0].model_copy(update={"device": "d2"})]}
    )
    with pytest.raises(FormatError, match="d2"):
        make_plan(VGG, d2, 3, 20)
