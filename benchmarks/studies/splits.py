"""Study: optimised split vs the two manual splits (load-balanced, equal layer counts): epoch time.

    python benchmarks/studies/splits.py [--owners 100] [--no-emulate] [--target-s 6] [--out DIR]

Reference setting: K d1 data owners at 8 Mbit/s, N = 3..5 VMs (16 GB) at 7.13 Gbit/s, B = 16,
r = 2, VGG-19 cut (3, 20) and ResNet-101 (3, 33); VMs all of slowdown 1 ("identical") or of
slowdowns 1.0, 1.5, 1.25, 2.0, 1.75 ("heterogeneous"). For each, the planner's fastest plan
(``mpsl plan --hops N``) and the manual splits over vm1..vmN (``--manual balanced`` / ``equal``),
all evaluated by the estimator. Epoch = the round less aggregation (start + pipe + end); round =
epoch + aggregation. With emulation (default), the heterogeneous N = 3 and 5 plans also run one
round in the real runtime in emulation-only mode, time scaled so a run lasts about --target-s
seconds (benchmarks/planner_emulated.measure), converted back: predicted and measured side by side.
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
from _study import MODELS, parser, report, testbed, vms

from mpsl.plan import Plan, make_plan
from mpsl.profile.shipped import load_profile
from planner_emulated import measure

HETEROGENEOUS = (1.0, 1.5, 1.25, 2.0, 1.75)
KINDS = ("optimal", "balanced", "equal")


def epoch_s(plan: Plan, round_s: float | None) -> float | None:
    """The round less the aggregation term the estimator predicted for it."""
    if round_s is None:
        return None
    return round_s - plan.predicted.get("aggregation_ms", 0.0) / 1000.0


def compare(profile_name: str, a: int, b: int, n: int, owners: int, hetero: bool) -> dict:
    """The optimal plan and both manual splits of one setting."""
    profile = load_profile(profile_name)
    cluster = testbed(vms(n, slowdowns=HETEROGENEOUS[:n] if hetero else ()), owners)
    plan = make_plan(profile, cluster, a, b, hops=n)
    equal = make_plan(profile, cluster, a, b, hops=n, manual="equal")
    row = {"nodes": n, "setting": "heterogeneous" if hetero else "identical"}
    row["optimal_cuts"], row["optimal_nodes"] = plan.cuts, plan.nodes
    row["optimal_round_s"] = plan.objective_value if plan.feasible else None
    row["optimal_epoch_s"] = epoch_s(plan, row["optimal_round_s"])
    row["aggregation_s"] = plan.predicted.get("aggregation_ms", 0.0) / 1000.0
    for kind, source in (("balanced", plan), ("equal", equal)):
        manual = source.manual
        assert manual is not None
        row[f"{kind}_cuts"], row[f"{kind}_fits"] = manual.cuts, manual.runnable
        row[f"{kind}_round_s"] = manual.round_s
        row[f"{kind}_epoch_s"] = epoch_s(plan, manual.round_s)
        if manual.round_s and row["optimal_round_s"]:  # on epochs: aggregation is common
            row[f"{kind}_gain_pct"] = 100 * (1 - row["optimal_epoch_s"] / row[f"{kind}_epoch_s"])
    row["_plans"] = (profile, cluster, plan, equal)
    return row


def emulate(row: dict, target_s: float) -> None:
    """Measured rounds of the three splits in the emulated runtime (adds *_measured_s)."""
    profile, cluster, plan, equal = row["_plans"]
    splits = {
        "optimal": (plan.cuts, plan.nodes),
        "balanced": (plan.manual.cuts, plan.manual.nodes),
        "equal": (equal.manual.cuts, equal.manual.nodes),
    }
    for kind, (cuts, nodes) in splits.items():
        measured, sim = measure(profile, cluster, cuts, nodes, target_s)
        row[f"{kind}_measured_s"], row[f"{kind}_sim_s"] = measured, sim
        print(f"  emulated {kind}: {measured:.0f} s (simulated {sim:.0f} s)", file=sys.stderr)


def main() -> None:
    ap = parser(__doc__ or "")
    ap.add_argument("--owners", type=int, default=100, help="K data owners (default 100)")
    ap.add_argument("--no-emulate", action="store_true", help="predictions only")
    ap.add_argument("--target-s", type=float, default=6.0, help="seconds per emulated round")
    args = ap.parse_args()
    rows = []
    for label, name, a, b in MODELS:
        for hetero in (False, True):
            for n in (3, 4, 5):
                row = {"model": label, **compare(name, a, b, n, args.owners, hetero)}
                print(f"{label} {row['setting']} N={n}", file=sys.stderr)
                if hetero and n in (3, 5) and not args.no_emulate:
                    emulate(row, args.target_s)
                row.pop("_plans")
                rows.append(row)
    fig, axes = plt.subplots(1, len(MODELS), figsize=(11, 4))
    for ax, (label, *_) in zip(axes, MODELS, strict=True):
        mine = [r for r in rows if r["model"] == label]
        ticks = [f"{r['setting'][:5]} N={r['nodes']}" for r in mine]
        for j, kind in enumerate(KINDS):
            xs = [i + (j - 1) * 0.27 for i in range(len(mine))]
            ax.bar(xs, [r[f"{kind}_epoch_s"] or 0 for r in mine], width=0.27, label=kind)
            key = f"{kind}_measured_s"
            meas = [
                (x, r[key] - r["aggregation_s"]) for x, r in zip(xs, mine, strict=True) if key in r
            ]
            if meas:
                ax.plot(*zip(*meas, strict=True), "k_", markersize=12)
        ax.set_xticks(range(len(mine)), ticks, rotation=30, fontsize=8)
        ax.set_ylabel("epoch time (s), predicted; black: emulated")
        ax.set_title(f"{label}, K = {args.owners}")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    data = {"config": {"owners": args.owners, "target_s": args.target_s}, "rows": rows}
    columns = [
        ("model", "model", ""),
        ("setting", "VMs", ""),
        ("nodes", "N", ""),
        ("optimal_cuts", "optimal cuts", ""),
        ("optimal_epoch_s", "opt epoch s", ".0f"),
        ("balanced_cuts", "balanced cuts", ""),
        ("balanced_epoch_s", "bal epoch s", ".0f"),
        ("equal_cuts", "equal cuts", ""),
        ("equal_epoch_s", "eq epoch s", ".0f"),
        ("balanced_gain_pct", "opt vs bal %", ".1f"),
        ("equal_gain_pct", "opt vs eq %", ".1f"),
        ("equal_fits", "eq fits", ""),
    ]
    more = []
    if emulated := [r for r in rows if "optimal_measured_s" in r]:
        cols = [("model", "model", ""), ("nodes", "N", "")]
        for kind in KINDS:
            cols += [
                (f"{kind}_round_s", f"{kind} pred", ".0f"),
                (f"{kind}_sim_s", "sim", ".0f"),
                (f"{kind}_measured_s", "meas", ".0f"),
            ]
        title = "rounds (s): predicted closed form / simulated / measured in emulation"
        more.append((title, emulated, cols))
    report("splits", args, rows, fig, columns, data=data, more=more)


if __name__ == "__main__":
    main()
