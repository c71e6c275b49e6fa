"""Study: multihop (P - 2 compute nodes in a pipeline) vs horizontally scaled one hop (P - 2
helpers, each running the whole middle for its share of the data owners), same machines.

    python benchmarks/studies/multihop_vs_horizontal.py [--owners 20,100] [--emulate-max 40]
        [--target-s 3] [--out DIR] [--json]

The MP-SL evaluation's setting: K d1 data owners at 8 Mbit/s, VMs (256 GB, so memory never binds)
at 7.13 Gbit/s, B = 16 batches of 128, r = 2; VGG-19 with the data owner keeping 1..3 and 21..25,
ResNet-101 1..3 and 34..37. For N = P - 2 = 1, 2, 3 machines:

- multihop: the middle cut over N VMs by the planner's fastest plan (``mpsl plan --hops N``);
- multihop, co-located: the same N compute nodes as processes of one 1-core host (``host`` in the
  cluster file): what multihop gains when its nodes share one machine instead;
- horizontal one hop: N helpers each hosting the whole middle, the data owners split evenly
  (ceil(K / N) on the busiest); the helpers are independent pipelines, so the epoch is that of one
  helper with ceil(K / N) data owners. Averaging the helpers' middle parts after the round (a few
  hundred MB at 7.13 Gbit/s, under a second) is left out.

Per setting: epoch predicted (closed form where it applies, simulation), measured in the emulated
runtime (time scaled) for K <= --emulate-max, the largest compute node's memory, and the role that
bounds the round.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import matplotlib.pyplot as plt
from _study import MODELS, parser, report, testbed, vms
from _time import emulated, predicted

from mpsl.cluster import Cluster
from mpsl.estimate.summary import estimate
from mpsl.plan import make_plan
from mpsl.profile.format import Profile
from mpsl.profile.shipped import load_profile

KINDS = ("multihop", "co-located", "horizontal")


def ints(text: str) -> list[int]:
    """'20,100' -> [20, 100]."""
    return [int(v) for v in text.split(",") if v]


def settings(
    profile: Profile, a: int, b: int, n: int, k: int
) -> dict[str, tuple[Cluster, tuple[int, ...], list[str]]]:
    """(cluster, cuts, nodes) of each kind for N = ``n`` machines and K = ``k`` data owners."""
    apart = testbed(vms(n, memory_gb=256), k)
    plan = make_plan(profile, apart, a, b, hops=n)
    shared = [{**node, "host": "one"} for node in vms(n, memory_gb=256)]
    return {
        "multihop": (apart, tuple(plan.cuts), plan.nodes),
        "co-located": (testbed(shared, k), tuple(plan.cuts), plan.nodes),
        "horizontal": (testbed(vms(1, memory_gb=256), math.ceil(k / n)), (a, b), ["vm1"]),
    }


def main() -> None:
    ap = parser(__doc__ or "")
    ap.add_argument("--owners", type=ints, default=[20, 100])
    ap.add_argument("--emulate-max", type=int, default=40, help="emulate settings with K <= this")
    ap.add_argument(
        "--target-s", type=float, default=3.0, help="emulated seconds per 10 data owners"
    )
    args = ap.parse_args()
    rows: list[dict[str, Any]] = []
    for label, name, a, b in MODELS:
        profile = load_profile(name)
        for k in args.owners:
            for n in (1, 2, 3):
                for kind, (cluster, cuts, nodes) in settings(profile, a, b, n, k).items():
                    if n == 1 and kind != "multihop":
                        continue  # one machine: all three are the same one-hop run
                    row = {"model": label, "K": k, "N": n, "kind": kind, "cuts": list(cuts)}
                    row.update(predicted(profile, cluster, cuts, nodes))
                    est = estimate(profile, cluster, cuts, nodes, method="sim")
                    row["max_node_gb"] = max(x.memory_bytes for x in est.nodes) / 1e9
                    if k <= args.emulate_max:
                        row.update(
                            emulated(profile, cluster, cuts, nodes, row["sim_round_s"],
                                     args.target_s)
                        )  # fmt: skip
                        row["sim_error_pct"] = 100 * (
                            row["sim_epoch_s"] / row["measured_epoch_s"] - 1
                        )
                    print(f"{label} K={k} N={n} {kind}", file=sys.stderr)
                    rows.append(row)
    fig, axes = plt.subplots(len(args.owners), len(MODELS), figsize=(11, 3.6 * len(args.owners)),
                             squeeze=False)  # fmt: skip
    for i, k in enumerate(args.owners):
        for ax, (label, *_) in zip(axes[i], MODELS, strict=True):
            for j, kind in enumerate(KINDS):
                mine = [r for r in rows if r["model"] == label and r["K"] == k]
                mine = [r for r in mine if r["kind"] == kind or r["N"] == 1]
                xs = [r["N"] + (j - 1) * 0.25 for r in mine]
                ax.bar(xs, [r["sim_epoch_s"] for r in mine], width=0.25, label=kind)
                meas = [(x, r["measured_epoch_s"]) for x, r in zip(xs, mine, strict=True)
                        if "measured_epoch_s" in r]  # fmt: skip
                if meas:
                    ax.plot(*zip(*meas, strict=True), "k_", markersize=12)
            ax.set_xticks([1, 2, 3], ["N=1 (P=3)", "N=2 (P=4)", "N=3 (P=5)"])
            ax.set_ylabel("epoch (s), simulated; black: emulated")
            ax.set_title(f"{label}, K = {k}")
            ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    report(
        "multihop_vs_horizontal",
        args,
        rows,
        fig,
        [
            ("model", "model", ""),
            ("K", "K", ""),
            ("N", "N", ""),
            ("kind", "kind", ""),
            ("cuts", "cuts", ""),
            ("closed_epoch_s", "closed epoch s", ".0f"),
            ("sim_epoch_s", "sim epoch s", ".0f"),
            ("measured_epoch_s", "emulated epoch s", ".0f"),
            ("sim_error_pct", "sim vs emu %", "+.2f"),
            ("max_node_gb", "max node GB", ".1f"),
            ("bound", "bound by", ""),
            ("bound_share", "busy share", ".2f"),
        ],
    )


if __name__ == "__main__":
    main()
