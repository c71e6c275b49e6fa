"""Study: the cost of a round with cheaper compute nodes (VGG-19, ResNet-101, K = 100).

    python benchmarks/studies/cost.py [--owners 100] [--no-emulate] [--target-s 20] [--out DIR]

Prices are assumptions of this study, not measurements (the papers give none): a VM (the
reference's 8-core, 16 GB compute node, profile `VM`) at 0.40 $/h; a cheaper node at 0.10 $/h,
either a `laptop` (a measured device of the reference profiles, 16 GB) or a "half VM" (profile
`VM` with slowdown 2.0 at 0.20 $/h: an assumed VM with half the cores). Every node of a plan is
rented for the whole round: cost = sum of its nodes' $/h x round time (docs/planner.md, cost).
Pools: 5 VMs; 5 VMs + 5 laptops; 5 VMs + 5 half VMs. For each pool, the fastest plan
(``--objective epoch``), the cheapest (``--objective cost``), the cheapest within 10% of the
fastest round of the VM pool (``--max-round-s``), and the time/cost frontier (``--pareto``).
With emulation (default), each of these plans also runs one round in the emulated runtime
(benchmarks/planner_emulated.measure, time scaled to about --target-s seconds): its simulated
and measured round and the cost at the measured round.
"""

from __future__ import annotations

import sys
from typing import Any

import matplotlib.pyplot as plt
from _study import MODELS, parser, report, testbed, vms

from mpsl.cluster import Cluster
from mpsl.plan import Plan, make_plan
from mpsl.profile.shipped import load_profile
from planner_emulated import measure

VM_PRICE, LAPTOP_PRICE, HALF_PRICE = 0.40, 0.10, 0.20
POOLS = {
    "5 VMs": vms(5, price=VM_PRICE),
    "5 VMs + 5 laptops": vms(5, price=VM_PRICE)
    + vms(5, device="laptop", price=LAPTOP_PRICE, prefix="laptop"),
    "5 VMs + 5 half VMs": vms(5, price=VM_PRICE)
    + vms(5, slowdowns=(2.0,) * 5, price=HALF_PRICE, prefix="half"),
}


def row_of(model: str, pool: str, goal: str, plan: Plan, cluster: Cluster) -> dict[str, Any]:
    """One plan as a table row (round, cost, nodes)."""
    out = {"model": model, "pool": pool, "plan": goal, "feasible": plan.feasible}
    if not plan.feasible:
        return out | {"reason": plan.reason}
    hourly = sum(cluster.node(n).price_per_hour for n in plan.nodes)
    round_s = plan.predicted["round_s"]
    return out | {
        "nodes": plan.nodes,
        "cuts": plan.cuts,
        "round_s": round_s,
        "cost_per_round": hourly * round_s / 3600.0,
        "price_per_hour": hourly,
    }


def main() -> None:
    ap = parser(__doc__ or "")
    ap.add_argument("--owners", type=int, default=100, help="K data owners (default 100)")
    ap.add_argument("--no-emulate", action="store_true", help="predictions only")
    ap.add_argument("--target-s", type=float, default=20.0, help="seconds per emulated round")
    args = ap.parse_args()
    rows, fronts = [], {}
    runs: dict[tuple[str, str, str], tuple[float, float]] = {}  # -> (measured, simulated) s
    fig, axes = plt.subplots(1, len(MODELS), figsize=(11, 4))
    for ax, (label, name, a, b) in zip(axes, MODELS, strict=True):
        profile = load_profile(name)
        fastest_vm = None
        for pool, nodes in POOLS.items():
            cluster = testbed(nodes, args.owners)
            fast = make_plan(profile, cluster, a, b, "epoch")
            cheap = make_plan(profile, cluster, a, b, "cost", pareto=True)
            if fastest_vm is None:
                fastest_vm = fast.predicted["round_s"]
            limit = make_plan(profile, cluster, a, b, "cost", max_round_s=1.1 * fastest_vm)
            for goal, plan in (("fastest", fast), ("cheapest", cheap), ("cheapest <= 1.1x", limit)):
                row = row_of(label, pool, goal, plan, cluster)
                if plan.feasible and not args.no_emulate:
                    key = (label, pool, f"{plan.cuts} {plan.nodes}")
                    if key not in runs:  # the same plan under two goals runs once
                        runs[key] = measure(profile, cluster, plan.cuts, plan.nodes, args.target_s)
                    row["measured_round_s"], row["simulated_round_s"] = runs[key]
                    row["measured_cost_per_round"] = row["price_per_hour"] * runs[key][0] / 3600.0
                    ax.plot(runs[key][0], row["measured_cost_per_round"], "kx")
                rows.append(row)
            front = [p.model_dump() for p in cheap.frontier or []]
            fronts[f"{label} / {pool}"] = front
            ax.plot([p["round_s"] for p in front], [p["cost"] for p in front], "o-", label=pool)
            print(f"{label} {pool}", file=sys.stderr)
        ax.set_xlabel("round time (s), predicted; x: emulated")
        ax.set_ylabel("cost per round ($, assumed prices)")
        ax.set_title(f"{label}: time/cost frontier, K = {args.owners}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    prices = {"VM": VM_PRICE, "laptop": LAPTOP_PRICE, "half VM (VM, slowdown 2)": HALF_PRICE}
    data = {
        "config": {"owners": args.owners, "prices_per_hour": prices, "target_s": args.target_s},
        "rows": rows,
        "frontiers": fronts,
    }
    columns = [
        ("model", "model", ""),
        ("pool", "pool", ""),
        ("plan", "plan", ""),
        ("nodes", "nodes", ""),
        ("cuts", "cuts", ""),
        ("round_s", "round s", ".0f"),
        ("price_per_hour", "$/h", ".2f"),
        ("cost_per_round", "$/round", ".3f"),
        ("simulated_round_s", "simulated round s", ".0f"),
        ("measured_round_s", "emulated round s", ".0f"),
        ("measured_cost_per_round", "emulated $/round", ".3f"),
    ]
    report("cost", args, rows, fig, columns, data=data)


if __name__ == "__main__":
    main()
