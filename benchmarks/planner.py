"""Planner speed: the exact combinatorial planner (dp) against the MILP (HiGHS), same run.

VGG-19 (cuts 3, 20) and ResNet-101 (cuts 3, 33) reference profiles, 8 heterogeneous compute nodes
whose memory binds, K = 100 data owners (d1, 8 Mbit/s), compute nodes linked at 7.13 Gbit/s,
B = 16 batches, r = 2 local epochs. For each objective: wall-clock time from the input files'
objects to the optimal plan (problem arrays + solve), median of --repeats runs, for dp and milp,
and whether both reach the same objective value.

    .venv/bin/python benchmarks/planner.py [--repeats 7] [--milp-repeats 1]
                                           [--objectives epoch,memory] [--json] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from mpsl.cluster import Cluster, reference_testbed
from mpsl.plan import build_problem, solve
from mpsl.profile.format import Profile
from mpsl.profile.shipped import load_profile

CASES = (("vgg19", "mpsl_vgg19_CIFAR", 3, 20), ("resnet101", "mpsl_resnet101_CIFAR", 3, 33))
OBJECTIVES = ("epoch", "paper", "cost", "memory")

# name, device, slowdown, memory (GB), price per hour
NODES = (
    ("vm1", "VM", 1.0, 32, 0.80),
    ("vm2", "VM", 1.0, 16, 0.40),
    ("vm3", "VM", 1.5, 16, 0.30),
    ("vm4", "VM", 2.0, 8, 0.20),
    ("laptop1", "laptop", 1.0, 8, 0.10),
    ("laptop2", "laptop", 1.2, 12, 0.10),
    ("jetson1", "jetson-gpu", 1.0, 6, 0.05),
    ("jetson2", "jetson-gpu", 1.3, 6, 0.05),
)


def cluster(owners: int = 100) -> Cluster:
    """The 8-node heterogeneous benchmark cluster."""
    nodes = [
        {"name": n, "device": d, "slowdown": s, "memory_bytes": gb * 1e9, "price_per_hour": p}
        for n, d, s, gb, p in NODES
    ]
    return reference_testbed(nodes, owners)


def timed(
    profile: Profile, nodes: Cluster, a: int, b: int, objective: str, method: str, repeats: int
) -> tuple[list[float], Any]:
    """Wall-clock ms of problem building + solving, ``repeats`` times, and the solution."""
    times, found = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        problem = build_problem(profile, nodes, a, b, objective)
        found, _ = solve(problem, method)
        times.append((time.perf_counter() - start) * 1000.0)
    return times, found


def run(
    repeats: int, milp_repeats: int, objectives: tuple[str, ...] = OBJECTIVES
) -> dict[str, Any]:
    """All cases and ``objectives``; the figures as a JSON-ready dict."""
    nodes = cluster()
    rows = []
    for model, profile_name, a, b in CASES:
        profile = load_profile(profile_name)
        for objective in objectives:
            dp_ms, dp = timed(profile, nodes, a, b, objective, "dp", repeats)
            row: dict[str, Any] = {
                "model": model,
                "cuts": [a, b],
                "objective": objective,
                "dp_ms_median": statistics.median(dp_ms),
                "dp_ms": dp_ms,
                "plan_nodes": list(dp.nodes) if dp else None,
                "plan_cuts": [int(c) for c in dp.cuts] if dp else None,
                "value": dp.value if dp else None,
            }
            if milp_repeats > 0:
                milp_ms, milp = timed(profile, nodes, a, b, objective, "milp", milp_repeats)
                agree = (dp is None) == (milp is None) and (
                    dp is None or abs(dp.value - milp.value) <= 1e-6 * max(1.0, abs(dp.value))
                )
                row.update(
                    milp_ms_median=statistics.median(milp_ms),
                    milp_ms=milp_ms,
                    milp_value=milp.value if milp else None,
                    agree=agree,
                    speedup=statistics.median(milp_ms) / statistics.median(dp_ms),
                )
            rows.append(row)
            logging.info("%s %s done", model, objective)
    return {
        "setup": {
            "nodes": [
                dict(
                    zip(
                        ("name", "device", "slowdown", "memory_gb", "price_per_hour"),
                        n,
                        strict=True,
                    )
                )
                for n in NODES
            ],
            "data_owners": 100,
            "owner_device": "d1",
            "owner_link_bps": 8e6,
            "compute_to_compute_bps": 7.13e9,
            "batches_per_epoch": 16,
            "local_epochs": 2,
            "repeats": repeats,
            "milp_repeats": milp_repeats,
            "machine": f"{platform.machine()}, {os.cpu_count()} cpus, {platform.python_version()}",
        },
        "results": rows,
    }


def main() -> None:
    """Parse flags, run, print the table or JSON, write --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--milp-repeats", type=int, default=1, help="0 skips the MILP")
    parser.add_argument("--objectives", default=",".join(OBJECTIVES), help="comma-separated")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    figures = run(args.repeats, args.milp_repeats, tuple(args.objectives.split(",")))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1) + "\n")
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    print(
        f"{'model':10} {'objective':9} {'dp ms':>8} {'milp ms':>9} {'milp/dp':>8} {'same':>5}  plan"
    )
    for r in figures["results"]:
        milp = (
            f"{r['milp_ms_median']:9.0f} {r['speedup']:8.0f} {r['agree']!s:>5}"
            if ("milp_ms_median" in r)
            else f"{'-':>9} {'-':>8} {'-':>5}"
        )
        plan = f"{r['plan_cuts']} on {', '.join(r['plan_nodes'] or [])}"
        print(f"{r['model']:10} {r['objective']:9} {r['dp_ms_median']:8.1f} {milp}  {plan}")


if __name__ == "__main__":
    main()
