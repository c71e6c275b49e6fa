"""How well the estimators predict the runtime: emulated round times against the discrete-event
simulation and the closed form, over a grid of reference setups.

    python benchmarks/estimator_accuracy.py [--json] [--out FILE] [--target-s 2.5] [--quick]

Each cell runs the real runtime in emulation-only mode (tasks take the profiled time, links their
rate) on the reference profiles (MP-SL authors' measurements), with all times scaled down by one
factor so a run takes about ``--target-s`` seconds; errors are relative, so the scale cancels.
Grid: K in {5, 10, 20}, P in {3, 4, 5}, VGG-19 and ResNet-101, homogeneous d1 and mixed d1/d2 data
owners. The reference tables lack d2 timings for most layers (the Pi 3 ran out of memory), so a d2
data owner is emulated as d1 slowed by the median d2/d1 time ratio over the layers both measured.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from _common import machine, write
from mpsl.cluster import Cluster, reference_testbed
from mpsl.emulate.emulation import Emulation
from mpsl.estimate.closed_form import multihop
from mpsl.estimate.simulate import simulate_deployment
from mpsl.profile.format import Profile
from mpsl.profile.shipped import load_profile

OWNER_CUTS = {"vgg19": (3, 20), "resnet101": (3, 33)}  # data owner keeps 1..a and b+1..S


def d2_slowdown(profile: Profile) -> float:
    """Median d2/d1 time ratio over the layers both devices measured."""
    ratios = [
        (lp.ms["d2"].fwd + lp.ms["d2"].bwd) / (lp.ms["d1"].fwd + lp.ms["d1"].bwd)
        for lp in profile.layers
        if "d1" in lp.ms and "d2" in lp.ms and lp.ms["d1"].fwd + lp.ms["d1"].bwd > 0
    ]
    return statistics.median(ratios)


def middle_cuts(first: int, last: int, nodes: int) -> list[int]:
    """Layers first+1..last shared as evenly as counts allow among ``nodes`` compute nodes."""
    span = last - first
    return [first + round(i * span / nodes) for i in range(nodes + 1)]


def cluster(owners: int, mixed: bool, slowdown_d2: float, nodes: int) -> Cluster:
    """Reference testbed: d1 (and d2) data owners at 8 Mbit/s, VMs at 7.13 Gbit/s, B=16, r=2."""
    groups = [{"name": "d1", "count": owners, "device": "d1", "memory_bytes": 4e9, "link_bps": 8e6}]
    if mixed:
        half = owners // 2
        groups = [
            {
                "name": "d1",
                "count": owners - half,
                "device": "d1",
                "memory_bytes": 4e9,
                "link_bps": 8e6,
            },
            {
                "name": "d2",
                "count": half,
                "device": "d1",
                "memory_bytes": 1e9,
                "link_bps": 8e6,
                "slowdown": slowdown_d2,
            },
        ]
    vms = [{"name": f"vm{i + 1}", "device": "VM", "memory_bytes": 16e9} for i in range(nodes)]
    return reference_testbed(vms, data_owners=groups)


def cell(model: str, owners: int, parts: int, mixed: bool, target_s: float) -> dict:
    """Run one emulated round and both estimators for one setup."""
    profile = load_profile(f"mpsl_{model}_CIFAR")
    first, last = OWNER_CUTS[model]
    cuts = middle_cuts(first, last, parts - 2)
    c = cluster(owners, mixed, d2_slowdown(profile), parts - 2)
    closed_ms = multihop(Emulation(profile, c, cuts).costs).round_ms
    sim_ms = simulate_deployment(profile, c, cuts).round_ms
    scale = target_s * 1000.0 / sim_ms
    measured_ms = Emulation(profile, c, cuts, time_scale=scale).run().rounds[0].seconds * 1000
    measured_ms /= scale  # back to the reference's time units
    return {
        "model": model,
        "data_owners": owners,
        "parts": parts,
        "cuts": cuts,
        "owners": "mixed d1/d2" if mixed else "d1",
        "time_scale": scale,
        "measured_s": measured_ms / 1000,
        "sim_s": sim_ms / 1000,
        "closed_s": closed_ms / 1000,
        "sim_error": (sim_ms - measured_ms) / measured_ms,
        "closed_error": (closed_ms - measured_ms) / measured_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--out", help="JSON file (default benchmarks/results/...)")
    parser.add_argument("--target-s", type=float, default=2.5, help="emulated seconds per run")
    parser.add_argument("--quick", action="store_true", help="K=5 and 20, P=3 and 5 only")
    args = parser.parse_args()
    ks, ps = ([5, 20], [3, 5]) if args.quick else ([5, 10, 20], [3, 4, 5])
    rows = []
    for model in ("vgg19", "resnet101"):
        for mixed in (False, True):
            for k in ks:
                for p in ps:
                    rows.append(cell(model, k, p, mixed, args.target_s))
                    r = rows[-1]
                    if not args.json:
                        print(
                            f"{model:9s} {r['owners']:11s} K={k:2d} P={p}  measured "
                            f"{r['measured_s']:8.1f} s  sim {r['sim_s']:8.1f} s "
                            f"({r['sim_error']:+.2%})  closed {r['closed_s']:8.1f} s "
                            f"({r['closed_error']:+.2%})",
                            file=sys.stderr,
                        )
    efficiency = [r for r in rows if r["data_owners"] == 20 and r["parts"] == 5]
    data = {
        "benchmark": "estimator_accuracy",
        "goals": {"sim_mae": "<= 2%", "pipeline_efficiency_K20_P5": "measured within 3% of sim"},
        "machine": machine(),
        "sim_mae": statistics.mean(abs(r["sim_error"]) for r in rows),
        "sim_max_abs_error": max(abs(r["sim_error"]) for r in rows),
        "closed_mae": statistics.mean(abs(r["closed_error"]) for r in rows),
        "pipeline_efficiency_K20_P5": [
            {
                "model": r["model"],
                "owners": r["owners"],
                "measured_over_ideal": r["measured_s"] / r["sim_s"],
            }
            for r in efficiency
        ],
        "cells": rows,
    }
    path = write("estimator_accuracy", data, args.out)
    if args.json:
        print(json.dumps(data, indent=1))
    else:
        print(
            f"simulation MAE {data['sim_mae']:.2%} (worst cell {data['sim_max_abs_error']:.2%}), "
            f"closed form MAE {data['closed_mae']:.2%}; wrote {path}"
        )


if __name__ == "__main__":
    main()
