"""Study: epoch time vs number of data owners K, multihop level P = 3, 4, 5.

    python benchmarks/studies/epoch_vs_owners.py [--owners 10,20,40,60,80,100]
        [--emulate-owners 10,40] [--target-s 3] [--out DIR] [--json]

The MP-SL evaluation's setting: K Raspberry Pi 4 (d1) data owners at 8 Mbit/s, P - 2 VMs linked
at 7.13 Gbit/s, CIFAR-10 batches of 128, B = 16 batches per local epoch, r = 2 local epochs; VGG-19
with the data owner keeping layers 1..3 and 21..25, ResNet-101 1..3 and 34..37. The middle is cut
by the planner's fastest plan for P - 2 nodes (``mpsl plan --hops P-2``; on identical VMs, the
load-balanced split). Memory is set large (256 GB a VM) so that every K runs: this study is about
time (the memory study is benchmarks/studies/memory_vs_parts.py). Epoch = the training phase of a
round (r local epochs of every data owner); aggregation is reported apart. Predicted by the closed
form and the simulation for every K, measured in the emulated runtime (time scaled) for
--emulate-owners.
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
from _study import MODELS, parser, report, testbed, vms
from _time import emulated, predicted

from mpsl.plan import make_plan
from mpsl.profile.shipped import load_profile

LEVELS = (3, 4, 5)


def ints(text: str) -> list[int]:
    """'10,20' -> [10, 20]."""
    return [int(v) for v in text.split(",") if v]


def main() -> None:
    ap = parser(__doc__ or "")
    ap.add_argument("--owners", type=ints, default=[10, 20, 40, 60, 80, 100])
    ap.add_argument("--emulate-owners", type=ints, default=[10, 40])
    ap.add_argument(
        "--target-s", type=float, default=3.0, help="emulated seconds per 10 data owners"
    )
    args = ap.parse_args()
    rows = []
    for label, name, a, b in MODELS:
        profile = load_profile(name)
        for level in LEVELS:
            for k in args.owners:
                cluster = testbed(vms(level - 2, memory_gb=256), k)
                plan = make_plan(profile, cluster, a, b, hops=level - 2)
                row = {"model": label, "P": level, "K": k, "cuts": plan.cuts}
                row.update(predicted(profile, cluster, plan.cuts, plan.nodes))
                if k in args.emulate_owners:
                    row.update(
                        emulated(profile, cluster, plan.cuts, plan.nodes, row["sim_round_s"],
                                 args.target_s)
                    )  # fmt: skip
                    row["sim_error_pct"] = 100 * (row["sim_epoch_s"] / row["measured_epoch_s"] - 1)
                print(f"{label} P={level} K={k}", file=sys.stderr)
                rows.append(row)
    fig, axes = plt.subplots(1, len(MODELS), figsize=(11, 4))
    for ax, (label, *_) in zip(axes, MODELS, strict=True):
        for level in LEVELS:
            mine = [r for r in rows if r["model"] == label and r["P"] == level]
            (line,) = ax.plot([r["K"] for r in mine], [r["sim_epoch_s"] / 3600 for r in mine],
                              "o-", label=f"P={level} simulated")  # fmt: skip
            ax.plot([r["K"] for r in mine], [r["closed_epoch_s"] / 3600 for r in mine], ":",
                    color=line.get_color(), label=f"P={level} closed form")  # fmt: skip
            meas = [(r["K"], r["measured_epoch_s"] / 3600) for r in mine if "measured_epoch_s" in r]
            if meas:
                ax.plot(*zip(*meas, strict=True), "kx", markersize=9)
        ax.set_xlabel("data owners K")
        ax.set_ylabel("epoch time (h); x: emulated runtime")
        ax.set_title(f"{label}, d1 owners at 8 Mbit/s")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    report(
        "epoch_vs_owners",
        args,
        rows,
        fig,
        [
            ("model", "model", ""),
            ("P", "P", ""),
            ("K", "K", ""),
            ("cuts", "cuts", ""),
            ("closed_epoch_s", "closed epoch s", ".0f"),
            ("sim_epoch_s", "sim epoch s", ".0f"),
            ("measured_epoch_s", "emulated epoch s", ".0f"),
            ("sim_error_pct", "sim vs emu %", "+.2f"),
            ("aggregation_s", "aggregation s", ".1f"),
            ("bound", "bound by", ""),
            ("bound_share", "busy share", ".2f"),
        ],
    )


if __name__ == "__main__":
    main()
