"""Study: mixes of faster and slower data owners: Raspberry Pi 4 (d1) and Pi 3 (d2).

    python benchmarks/studies/owner_mix.py [--owners 20] [--level 4] [--no-emulate]
        [--target-s 3] [--out DIR] [--json]

K data owners of which a share (0, 25, 50, 75, 100%) are d2, the rest d1, all at 8 Mbit/s; P - 2
VMs (256 GB, so memory never binds) at 7.13 Gbit/s; B = 16 batches of 128, r = 2; VGG-19 cuts
(3, ..., 20) and ResNet-101 (3, ..., 33), the middle split by the planner's fastest plan for the
all-d1 cluster and kept for every mix, so that only the data owners change. The reference d2
profile lacks most layers (it ran out of memory): the layers a d2 data owner runs that d2 did not
measure are imputed (``--impute ratio``: d1's time x the d2/d1 ratio over the layers both
measured) and counted in the table. Per mix: epoch predicted by the closed form and the simulation,
measured in the emulated runtime (time scaled), the role that bounds the round and how busy it is.
"""

from __future__ import annotations

import sys
from typing import Any

import matplotlib.pyplot as plt
from _study import MODELS, parser, report, vms
from _time import emulated, predicted

from mpsl.cluster import reference_testbed
from mpsl.plan import make_plan
from mpsl.profile.impute import Imputation
from mpsl.profile.shipped import load_profile

SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)


def groups(owners: int, share: float) -> list[dict[str, Any]]:
    """The data-owner groups of a mix: ``share`` of ``owners`` are d2, the rest d1."""
    slow = round(owners * share)
    spec = [("pi4", owners - slow, "d1", 4e9), ("pi3", slow, "d2", 1e9)]
    return [
        {"name": name, "count": n, "device": dev, "memory_bytes": mem, "link_bps": 8e6}
        for name, n, dev, mem in spec
        if n
    ]


def main() -> None:
    ap = parser(__doc__ or "")
    ap.add_argument("--owners", type=int, default=20, help="K data owners (default 20)")
    ap.add_argument("--level", type=int, default=4, help="multihop level P (default 4)")
    ap.add_argument("--no-emulate", action="store_true", help="predictions only")
    ap.add_argument(
        "--target-s", type=float, default=3.0, help="emulated seconds per 10 data owners"
    )
    args = ap.parse_args()
    nodes = vms(args.level - 2, memory_gb=256)
    rows = []
    for label, name, a, b in MODELS:
        profile = load_profile(name)
        base = make_plan(profile, reference_testbed(nodes, args.owners), a, b, hops=len(nodes))
        for share in SHARES:
            cluster = reference_testbed(nodes, data_owners=groups(args.owners, share))
            row = {"model": label, "d2_pct": 100 * share, "cuts": base.cuts}
            row.update(predicted(profile, cluster, base.cuts, base.nodes, Imputation("ratio")))
            if not args.no_emulate:
                row.update(
                    emulated(profile, cluster, base.cuts, base.nodes, row["sim_round_s"],
                             args.target_s, Imputation("ratio"))
                )  # fmt: skip
                row["sim_error_pct"] = 100 * (row["sim_epoch_s"] / row["measured_epoch_s"] - 1)
            print(f"{label} d2 {100 * share:.0f}%", file=sys.stderr)
            rows.append(row)
    fig, axes = plt.subplots(1, len(MODELS), figsize=(11, 4))
    for ax, (label, *_) in zip(axes, MODELS, strict=True):
        mine = [r for r in rows if r["model"] == label]
        xs = [r["d2_pct"] for r in mine]
        ax.plot(xs, [r["sim_epoch_s"] for r in mine], "o-", label="simulated")
        ax.plot(xs, [r["closed_epoch_s"] for r in mine], "s:", label="closed form")
        meas = [(r["d2_pct"], r["measured_epoch_s"]) for r in mine if "measured_epoch_s" in r]
        if meas:
            ax.plot(*zip(*meas, strict=True), "kx", markersize=9, label="emulated runtime")
        ax.set_xlabel("share of d2 (Raspberry Pi 3) data owners, %")
        ax.set_ylabel("epoch time (s)")
        ax.set_title(f"{label}, K = {args.owners}, P = {args.level}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    report(
        "owner_mix",
        args,
        rows,
        fig,
        [
            ("model", "model", ""),
            ("d2_pct", "d2 %", ".0f"),
            ("cuts", "cuts", ""),
            ("imputed", "imputed", ""),
            ("closed_epoch_s", "closed epoch s", ".0f"),
            ("sim_epoch_s", "sim epoch s", ".0f"),
            ("measured_epoch_s", "emulated epoch s", ".0f"),
            ("sim_error_pct", "sim vs emu %", "+.2f"),
            ("bound", "bound by", ""),
            ("bound_share", "busy share", ".2f"),
        ],
    )


if __name__ == "__main__":
    main()
