"""The memory objective on the reference profiles, the equal-layer manual split, and the sweep over
multihop levels (exactness against brute force is in test_plan_exact.py)."""

from __future__ import annotations

import itertools

import pytest

from mpsl.cluster import Cluster, reference_testbed
from mpsl.errors import ConfigError, CutError
from mpsl.plan import make_plan
from mpsl.profile.shipped import load_profile
from mpsl.split import equal_cuts, even_cuts

VGG = load_profile("mpsl_vgg19_CIFAR")


def vms(count: int, owners: int = 100, memory_gb: float = 64) -> Cluster:
    nodes = [
        {"name": f"vm{i + 1}", "device": "VM", "memory_bytes": memory_gb * 1e9}
        for i in range(count)
    ]
    return reference_testbed(nodes, owners)


def test_least_memory_plan_needs_less_than_the_fastest_and_is_no_faster() -> None:
    fast = make_plan(VGG, vms(3), 3, 20, "epoch", hops=3)
    small = make_plan(VGG, vms(3), 3, 20, "memory", hops=3)
    assert small.objective_unit == "bytes on the largest compute node"
    assert small.objective_value == max(small.memory_bytes.values())
    assert small.objective_value < max(fast.memory_bytes.values())
    assert small.predicted["round_s"] >= fast.objective_value


def test_more_hops_never_need_more_memory_on_the_largest_node() -> None:
    values = [make_plan(VGG, vms(5), 3, 20, "memory", hops=n).objective_value for n in (1, 2, 3, 5)]
    assert all(b <= a for a, b in itertools.pairwise(values)), values
    assert values[-1] < values[0] / 2  # VGG-19's middle splits into parts of similar memory


def test_memory_objective_takes_no_round_limit() -> None:
    with pytest.raises(ConfigError, match="--max-round-s"):
        make_plan(VGG, vms(2), 3, 20, "memory", max_round_s=10.0)


def test_equal_cuts_count_layers_and_even_cuts_use_them() -> None:
    assert equal_cuts(3, 20, 3) == (3, 9, 14, 20)  # 6, 5, 6 layers: 17 / 3 rounded per cut
    assert equal_cuts(3, 33, 5) == (3, 9, 15, 21, 27, 33)
    assert even_cuts(25, 2) == equal_cuts(1, 24, 2) == (1, 13, 24)
    with pytest.raises(CutError, match=r"choose 1\.\.2 compute nodes"):
        equal_cuts(3, 5, 3)


def test_manual_kind_equal_is_the_layer_count_split() -> None:
    plan = make_plan(VGG, vms(4), 3, 20, hops=4, manual="equal")
    assert plan.manual is not None
    assert plan.manual.kind == "equal"
    assert tuple(plan.manual.cuts) == equal_cuts(3, 20, 4)
    balanced = make_plan(VGG, vms(4), 3, 20, hops=4)
    assert balanced.manual is not None and balanced.manual.kind == "balanced"
    assert plan.manual.round_s is not None and balanced.manual.round_s is not None
    # the balanced split is what a profile buys: never slower than counting layers here
    assert balanced.manual.round_s <= plan.manual.round_s


def test_unknown_manual_kind_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"--manual.*balanced, equal"):
        make_plan(VGG, vms(2), 3, 20, manual="even")
