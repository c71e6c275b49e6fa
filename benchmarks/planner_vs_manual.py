"""Optimal plan against the manual split, and the hop count the planner picks (docs/planner.md).

Reference setting (MP-SL evaluation): data owners are d1 (Raspberry Pi 4) at 8 Mbit/s, compute
nodes are VMs (16 GB) linked at 7.13 Gbit/s, B = 16 batches of 128, r = 2 local epochs; VGG-19 cut
at (3, 20) and ResNet-101 at (3, 33). All figures are the estimator's predictions
(closed_form.multihop), not measurements.

    .venv/bin/python benchmarks/planner_vs_manual.py [--json] [--out FILE] [--write-plans DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mpsl.cluster import Cluster, reference_testbed
from mpsl.plan import Plan, PlanPart, make_plan
from mpsl.profile.shipped import load_profile

MODELS = (("VGG-19", "mpsl_vgg19_CIFAR", 3, 20), ("ResNet-101", "mpsl_resnet101_CIFAR", 3, 33))
HETEROGENEOUS = (1.0, 1.5, 1.25, 2.0, 1.75)  # slowdowns of vm1..vm5 in the second table


def vms(
    count: int, owners: int, memory_gb: float = 16, slowdowns: tuple[float, ...] = ()
) -> Cluster:
    """``count`` VMs (slowdown 1 unless given, price 1 per hour each) and ``owners`` d1 owners."""
    nodes = [
        {
            "name": f"vm{i + 1}",
            "device": "VM",
            "memory_bytes": memory_gb * 1e9,
            "slowdown": slowdowns[i] if slowdowns else 1.0,
            "price_per_hour": 1.0,
        }
        for i in range(count)
    ]
    return reference_testbed(nodes, owners)


def versus_manual(slowdowns: tuple[float, ...], plans: Path | None) -> list[dict[str, Any]]:
    """Optimal plan vs manual split with N = 3..5 VMs, K = 100 and 150."""
    rows = []
    for model, name, a, b in MODELS:
        profile = load_profile(name)
        for owners in (100, 150):
            for count in (3, 4, 5):
                cluster = vms(count, owners, slowdowns=slowdowns[:count] if slowdowns else ())
                plan = make_plan(profile, cluster, a, b, hops=count)
                manual = plan.manual
                assert manual is not None
                rows.append(
                    {
                        "model": model,
                        "cuts": [a, b],
                        "owners": owners,
                        "nodes": count,
                        "plan_feasible": plan.feasible,
                        "plan_cuts": plan.cuts,
                        "plan_nodes": plan.nodes,
                        "plan_round_s": plan.objective_value,
                        "manual_cuts": manual.cuts,
                        "manual_round_s": manual.round_s,
                        "manual_fits": manual.runnable,
                        "manual_reason": manual.reason,
                        "gain_pct": manual.gain_pct,
                        "reason": plan.reason,
                    }
                )
                if plans is not None:
                    _write(plans, plan, f"{name}_K{owners}_N{count}{_tag(slowdowns)}")
    return rows


def _tag(slowdowns: tuple[float, ...]) -> str:
    return "_hetero" if slowdowns else ""


def _write(folder: Path, plan: Plan, stem: str) -> None:
    """The optimal plan and the manual split as plan files, for the emulated measurements."""
    folder.mkdir(parents=True, exist_ok=True)
    if plan.feasible:
        plan.save(folder / f"{stem}_optimal.json")
    manual = plan.manual
    if manual is None:
        return
    parts = [
        PlanPart(node=n, first_layer=lo + 1, last_layer=hi)
        for n, lo, hi in zip(manual.nodes, manual.cuts, manual.cuts[1:], strict=False)
    ]
    Plan(
        model=plan.model,
        num_layers=plan.num_layers,
        feasible=True,
        cuts=manual.cuts,
        parts=parts,
        objective=plan.objective,
        objective_value=manual.objective_value,
        method="manual",
        num_data_owners=plan.num_data_owners,
        hops=plan.hops,
    ).save(folder / f"{stem}_manual.json")


def hop_choice() -> list[dict[str, Any]]:
    """Hop count: the fewest VMs that fit, the fastest plan and the cheapest plan, up to 6 VMs."""
    rows = []
    for model, name, a, b in MODELS:
        profile = load_profile(name)
        for memory in (8, 16, 32, 64):
            for owners in (50, 100, 150, 200):
                cluster = vms(6, owners, memory)
                fits = [
                    n for n in range(1, 7) if make_plan(profile, cluster, a, b, hops=n).feasible
                ]
                fast = make_plan(profile, cluster, a, b)
                cheap = make_plan(profile, cluster, a, b, "cost")
                rows.append(
                    {
                        "model": model,
                        "memory_gb": memory,
                        "owners": owners,
                        "fewest_nodes": min(fits, default=None),
                        "epoch_nodes": len(fast.parts) if fast.feasible else None,
                        "epoch_round_s": fast.objective_value,
                        "cost_nodes": len(cheap.parts) if cheap.feasible else None,
                        "cost_round_s": cheap.predicted.get("round_s"),
                    }
                )
    return rows


def _fmt(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def markdown(figures: dict[str, Any]) -> str:
    """The tables of docs/planner.md."""
    out = []
    for key, title in (
        ("homogeneous", "VMs, all slowdown 1"),
        ("heterogeneous", f"VMs vm1..vmN with slowdowns {list(HETEROGENEOUS)}"),
    ):
        out += [
            f"\n{title}:\n",
            "| model | K | N | optimal cuts | optimal nodes | optimal round (s) | manual cuts | "
            "manual round (s) | manual fits in 16 GB | optimal faster by |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in figures[key]:
            gain = "-" if r["gain_pct"] is None else f"{r['gain_pct']:.1f}%"
            plan = str(r["plan_cuts"]) if r["plan_feasible"] else "none fits"
            out.append(
                f"| {r['model']} | {r['owners']} | {r['nodes']} | {plan} | "
                f"{', '.join(r['plan_nodes']) or '-'} | "
                f"{_fmt(r['plan_round_s'])} | {r['manual_cuts']} | {_fmt(r['manual_round_s'])} | "
                f"{'yes' if r['manual_fits'] else 'no'} | {gain} |"
            )
    out += [
        "\nHop count chosen (up to 6 identical VMs, price 1 each):\n",
        "| model | VM memory (GB) | K | fewest VMs that fit | epoch: VMs | epoch: round (s) | "
        "cost: VMs | cost: round (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in figures["hops"]:
        out.append(
            f"| {r['model']} | {r['memory_gb']} | {r['owners']} | {_fmt(r['fewest_nodes'])} | "
            f"{_fmt(r['epoch_nodes'])} | {_fmt(r['epoch_round_s'])} | {_fmt(r['cost_nodes'])} | "
            f"{_fmt(r['cost_round_s'])} |"
        )
    return "\n".join(out)


def main() -> None:
    """Parse flags, compute the tables, print markdown or JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--write-plans", type=Path, help="write optimal and manual plan files here")
    args = parser.parse_args()
    figures = {
        "homogeneous": versus_manual((), args.write_plans),
        "heterogeneous": versus_manual(HETEROGENEOUS, args.write_plans),
        "hops": hop_choice(),
    }
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1) + "\n")
    print(json.dumps(figures, indent=1) if args.json else markdown(figures))


if __name__ == "__main__":
    main()
