"""Scenario generation from the reference profiles, and from a profile + cluster."""

from __future__ import annotations

import pytest

from mpsl.cluster import Cluster
from mpsl.errors import ConfigError, CutError
from mpsl.schedule import from_cluster, generate
from mpsl.schedule.generate import HELPER_MEMORY_BYTES, reference_profile
from mpsl.schedule.parts import helper_demand_bytes


def test_generation_is_deterministic_for_a_seed() -> None:
    a = generate("resnet101", 12, 3, "high", seed=7)
    assert a == generate("resnet101", 12, 3, "high", seed=7)
    assert a != generate("resnet101", 12, 3, "high", seed=8)


@pytest.mark.parametrize("model", ["resnet101", "vgg19"])
@pytest.mark.parametrize("heterogeneity", ["low", "high"])
def test_shapes_and_physical_facts(model: str, heterogeneity: str) -> None:
    K, H = 9, 4
    sc = generate(model, K, H, heterogeneity, seed=1)
    assert (sc.num_owners, sc.num_helpers) == (K, H)
    for name in ("release_ms", "fwd_ms", "lag_ms", "bwd_ms", "tail_ms"):
        rows = getattr(sc, name)
        assert len(rows) == K and all(len(r) == H and min(r) > 0 for r in rows)
    # a helper runs the same part 2 for everyone: its columns do not depend on the owner
    for h in range(H):
        assert len({sc.fwd_ms[k][h] for k in range(K)}) == 1
        assert len({sc.bwd_ms[k][h] for k in range(K)}) == 1
    profile = reference_profile(model)
    cuts = {"resnet101": (3, 33), "vgg19": (3, 20)}[model]
    assert sc.demand_bytes == [helper_demand_bytes(profile, cuts)] * K
    lo, hi = HELPER_MEMORY_BYTES["laptop"], HELPER_MEMORY_BYTES["VM"]
    if heterogeneity == "low":
        assert set(sc.capacity_bytes) <= {lo, hi}
    else:
        assert all(lo <= c <= hi for c in sc.capacity_bytes)


def test_links_between_1_and_20_mbit() -> None:
    # release = part-1 forward + activation upload: the upload alone is bounded by the link range
    sc = generate("vgg19", 10, 3, "low", seed=2)
    profile = reference_profile("vgg19")
    upload_bits = profile.layers[2].output_bytes * 8
    d1_part1 = sum(profile.timing("d1", i).fwd for i in (1, 2, 3))
    fastest = upload_bits / 20e6 * 1000
    slowest = upload_bits / 1e6 * 1000
    for row in sc.release_ms:
        for r in row:
            assert fastest <= r  # any device's part 1 takes some time on top
            assert r <= slowest + 10 * d1_part1


def test_demand_counts_train_state_and_activations() -> None:
    profile = reference_profile("resnet101")
    part2 = profile.layers[3:33]
    expected = sum(lp.train_state_bytes + lp.output_bytes for lp in part2)
    assert helper_demand_bytes(profile, (3, 33)) == expected


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"model": "alexnet"}, ConfigError),
        ({"heterogeneity": "medium"}, ConfigError),
        ({"owners": 0}, ConfigError),
        ({"helpers": 0}, ConfigError),
        ({"cuts": (20, 3)}, CutError),
        ({"cuts": (3, 37)}, CutError),
        ({"cuts": (3,)}, CutError),
    ],
)
def test_bad_generator_inputs(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        generate(**kwargs)


def _cluster(batch: int = 128) -> Cluster:
    return Cluster.model_validate(
        {
            "data_owners": [
                {"count": 2, "device": "d1", "memory_bytes": 4e9, "link_bps": 8e6},
                {"name": "slow", "count": 1, "device": "d1", "memory_bytes": 4e9,
                 "link_bps": 8e6, "slowdown": 2.0},
            ],
            "compute_nodes": [
                {"name": "vm", "device": "VM", "memory_bytes": 16e9},
                {"name": "lap", "device": "laptop", "memory_bytes": 8e9, "slowdown": 1.5},
            ],
            "links": {"compute_to_compute_bps": 7e9,
                      "overrides": [{"a": "slow", "b": "lap", "bps": 2e6}]},
            "training": {"batch_size": batch},
        }
    )  # fmt: skip


def test_cluster_scenario_follows_groups_nodes_links_and_slowdowns() -> None:
    profile = reference_profile("resnet101")
    sc, imputed = from_cluster(profile, _cluster(), (3, 33))
    assert imputed == ()
    assert (sc.num_owners, sc.num_helpers) == (3, 2)
    assert sc.capacity_bytes == [16_000_000_000, 8_000_000_000]
    # owners 0 and 1 are alike; the slow one takes longer on both helpers
    assert sc.release_ms[0] == sc.release_ms[1]
    assert all(sc.tail_ms[2][h] > sc.tail_ms[0][h] for h in range(2))
    # node slowdown: the laptop's part 2 is 1.5x its profiled time
    laptop_fwd = sum(profile.timing("laptop", i).fwd for i in range(4, 34))
    assert sc.fwd_ms[0][1] == pytest.approx(1.5 * laptop_fwd)
    # the override makes the slow group's link to the laptop 4x slower than to the VM
    upload = profile.layers[2].output_bytes * 8
    part1 = sc.release_ms[2][0] - upload / 8e6 * 1000
    assert sc.release_ms[2][1] == pytest.approx(part1 + upload / 2e6 * 1000)


def test_cluster_batch_size_must_match_the_profile() -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        from_cluster(reference_profile("vgg19"), _cluster(batch=64), (3, 20))
