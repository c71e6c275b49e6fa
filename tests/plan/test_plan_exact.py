"""The combinatorial planner is exact: it equals brute force (the estimator itself) and the MILP
on random small instances, for every objective, node count and link layout."""

from __future__ import annotations

import random

import pytest

from mpsl.cluster import Cluster
from mpsl.plan import build_problem, solve
from mpsl.profile.format import Profile

DEVICES = ("fast", "mid", "slow")


def random_profile(rng: random.Random, layers: int) -> Profile:
    """Random times and sizes; now and then a layer not measured on a device."""
    out = []
    for i in range(layers):
        ms = {}
        for dev in DEVICES:
            if rng.random() < 0.08 and 1 < i < layers - 2:
                continue
            scale = {"fast": 1.0, "mid": 2.0, "slow": 4.0}[dev]
            ms[dev] = {
                "fwd": round(rng.uniform(1, 20) * scale, 3),
                "bwd": round(rng.uniform(1, 40) * scale, 3),
                "opt": round(rng.choice([0.0, rng.uniform(0, 3)]), 3),
            }
        out.append(
            {
                "name": f"l{i + 1}",
                "output_bytes": rng.randint(10_000, 3_000_000),
                "param_bytes": rng.randint(0, 2_000_000),
                "ms": ms,
            }
        )
    return Profile.model_validate(
        {"model": "rand", "batch_size": 32, "input_bytes": 50_000, "layers": out}
    )


def random_cluster(rng: random.Random, profile: Profile, nodes: int) -> Cluster:
    """Heterogeneous nodes, tight memory now and then, one or two owner groups, link overrides."""
    mem = sum(lp.param_bytes * 2 + lp.output_bytes for lp in profile.layers)
    groups = [
        {
            "name": f"g{g}",
            "count": rng.randint(1, 3),
            "device": "slow",
            "memory_bytes": 1e9,
            "link_bps": rng.choice([8e6, 20e6, 1e8]),
        }
        for g in range(rng.randint(1, 2))
    ]
    owners = sum(g["count"] for g in groups)
    compute = [
        {
            "name": f"n{u}",
            "device": rng.choice(DEVICES),
            "memory_bytes": owners * mem * rng.uniform(0.25, 1.2),
            "slowdown": rng.choice([1.0, 1.0, 1.5, 2.0]),
            "price_per_hour": rng.choice([0.0, 0.1, 0.5, 1.0, 2.0]),
        }
        for u in range(nodes)
    ]
    overrides = []
    names = [c["name"] for c in compute] + [g["name"] for g in groups]
    for _ in range(rng.choice([0, 0, 2, 4])):
        a, b = rng.sample(names, 2)
        overrides.append(
            {
                "a": a,
                "b": b,
                "bps": rng.choice([1e8, 1e9, 5e9]),
                "latency_s": rng.choice([0.0, 0.001]),
            }
        )
    return Cluster.model_validate(
        {
            "data_owners": groups,
            "compute_nodes": compute,
            "links": {"compute_to_compute_bps": rng.choice([1e9, 7.13e9]), "overrides": overrides},
            "training": {
                "batch_size": rng.choice([32, 64]),
                "batches_per_epoch": rng.randint(1, 4),
                "local_epochs": rng.randint(1, 2),
            },
        }
    )


def instances(count: int, seed: int):
    """(profile, cluster, first_cut, last_cut, hops) tuples, reproducible from ``seed``."""
    rng = random.Random(seed)
    for _ in range(count):
        middle = rng.randint(2, 6)
        first = rng.randint(1, 2)
        layers = first + middle + rng.randint(1, 2)
        profile = random_profile(rng, layers)
        cluster = random_cluster(rng, profile, rng.randint(2, 4))
        hops = rng.choice(["auto", "auto", 1, 2, 3])
        if hops != "auto" and hops > min(middle, len(cluster.compute_nodes)):
            hops = "auto"
        yield profile, cluster, first, first + middle, hops


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


@pytest.mark.parametrize("objective", ["epoch", "paper", "cost", "memory"])
def test_dp_equals_brute_force(objective: str) -> None:
    for i, (profile, cluster, a, b, hops) in enumerate(instances(60, seed=7)):
        limit = None
        if objective == "cost" and i % 3 == 0:
            limit = random.Random(i).uniform(0.05, 5.0)
        problem = build_problem(profile, cluster, a, b, objective, hops, limit)
        dp, _ = solve(problem, "dp")
        brute, _ = solve(problem, "brute")
        got = dp.value if dp else None
        want = brute.value if brute else None
        assert close(got, want), (i, objective, hops, got, want, dp, brute)
        if objective == "memory" and dp is not None and brute is not None:
            # lexicographic: among the least-memory plans, the shortest round
            assert close(dp.round_ms, brute.round_ms), (i, hops, dp, brute)
            assert dp.value == problem.largest_bytes(dp.nodes, dp.cuts)
        if dp is not None:
            assert problem.obstacle(dp.nodes, dp.cuts) is None
            assert len(dp.nodes) in problem.sizes


@pytest.mark.parametrize("objective", ["epoch", "paper", "cost", "memory"])
def test_milp_equals_brute_force(objective: str) -> None:
    for i, (profile, cluster, a, b, hops) in enumerate(instances(15, seed=11)):
        problem = build_problem(profile, cluster, a, b, objective, hops)
        milp, _ = solve(problem, "milp")
        brute, _ = solve(problem, "brute")
        got = milp.value if milp else None
        want = brute.value if brute else None
        assert (got is None and want is None) or abs(got - want) <= 1e-6 * max(1.0, abs(want)), (
            i,
            objective,
            got,
            want,
        )
        if objective == "memory" and milp is not None and brute is not None:
            assert close(milp.round_ms, brute.round_ms), (i, milp, brute)
