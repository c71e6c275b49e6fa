"""Study: the scheduler's makespan grid (one-hop parallel SL with H helpers).

    python benchmarks/studies/scheduler_grid.py [--seeds 3] [--exact-time-limit 2]
        [--emulate-seeds N] [--target-s 1] [--out DIR]

Grid of the workflow-optimization study: K in 20, 30, 40, 50, 60, 70 data owners, H in 5, 10
helpers, low and high heterogeneity, ResNet-101 cut (3, 33) and VGG-19 cut (3, 20), scenarios from
``mpsl.schedule.generate`` (workflow reference profiles, 1-20 Mbit/s client-helper links). Per
cell, the mean makespan over seeds of random assignment with FCFS, balanced-greedy, fast and exact
(CP-SAT, time-limited: a makespan and a proven lower bound); each instance is solved by
benchmarks/scheduler.solve_instance, the scheduler benchmark's own function. Every method's
schedule of the first --emulate-seeds seeds of a cell (default: every seed) also runs in the
emulated runtime (``mpsl emulate --schedule``: each helper follows its order, every task lasts its
scenario time, scaled so that a batch lasts about --target-s seconds); its measured makespan is
kept beside the predicted one.
"""

from __future__ import annotations

import itertools
import statistics
import sys
from typing import Any

import matplotlib.pyplot as plt
from _study import parser, report

from mpsl.emulate.onehop import emulate_schedule
from scheduler import METHODS, instance_row, solve_instance, summarize_cell

OWNERS = (20, 30, 40, 50, 60, 70)
HELPERS = (5, 10)
MODELS = ("resnet101", "vgg19")


def main() -> None:
    ap = parser(__doc__ or "")
    ap.add_argument("--seeds", type=int, default=3, help="scenarios per cell (default 3)")
    ap.add_argument("--exact-time-limit", type=float, default=2.0, help="CP-SAT seconds")
    ap.add_argument(
        "--emulate-seeds", type=int, default=None, help="seeds emulated per cell (default: all)"
    )
    ap.add_argument("--target-s", type=float, default=1.0, help="seconds an emulated batch lasts")
    args = ap.parse_args()
    if args.emulate_seeds is None:
        args.emulate_seeds = args.seeds
    cells = []
    for model, het, h, k in itertools.product(MODELS, ("low", "high"), HELPERS, OWNERS):
        rows = []
        for s in range(args.seeds):
            sc, solved = solve_instance(model, het, k, h, s, args.exact_time_limit)
            row = instance_row(model, het, k, h, s, solved)
            if s < args.emulate_seeds:
                for m, (schedule, _) in solved.items():
                    scale = args.target_s * 1000 / schedule.makespan_ms
                    run = emulate_schedule(sc, schedule.assignment, schedule.orders(), scale, m)
                    row[m]["measured_makespan_ms"] = run.makespan_ms
                    row[m]["emulation_error"] = run.error
            rows.append(row)
        cells.append(summarize_cell(rows) | measured_cell(rows[: args.emulate_seeds]))
        cells[-1]["exact_gap_to_bound_pct"] = 100 * max(
            r["exact"]["makespan_ms"] / r["exact"]["lower_bound_ms"] - 1 for r in rows
        )
        print(f"{model} {het} H={h} K={k}", file=sys.stderr)
    fig, axes = plt.subplots(len(MODELS), 4, figsize=(14, 6), sharex=True)
    for (i, model), (j, (het, h)) in itertools.product(
        enumerate(MODELS), enumerate(itertools.product(("low", "high"), HELPERS))
    ):
        ax = axes[i][j]
        mine = [c for c in cells if (c["model"], c["heterogeneity"], c["H"]) == (model, het, h)]
        for m in METHODS:
            ax.plot(
                [c["K"] for c in mine],
                [c[f"{m}_makespan_ms"] / 1000 for c in mine],
                "o-",
                label=m,
                markersize=3,
            )
            if mine[0].get(f"{m}_measured_makespan_ms") is not None:
                ax.plot(
                    [c["K"] for c in mine],
                    [c[f"{m}_measured_makespan_ms"] / 1000 for c in mine],
                    "kx",
                    markersize=4,
                    label="emulated" if m == METHODS[0] else None,
                )
        ax.set_title(f"{model}, {het}, H = {h}", fontsize=9)
        ax.grid(alpha=0.3)
        if i == len(MODELS) - 1:
            ax.set_xlabel("K data owners")
        if j == 0:
            ax.set_ylabel("makespan (s)")
    axes[0][0].legend(fontsize=7)
    config = {"seeds": args.seeds, "exact_time_limit_s": args.exact_time_limit,
              "emulate_seeds": args.emulate_seeds, "target_s": args.target_s}  # fmt: skip
    data = {"config": config, "cells": cells}
    columns = [
        ("model", "model", ""),
        ("heterogeneity", "het", ""),
        ("H", "H", ""),
        ("K", "K", ""),
        *((f"{m}_makespan_ms", f"{m} ms", ".0f") for m in METHODS),
        ("fast_vs_random_pct", "fast vs random %", ".1f"),
        ("balanced-greedy_vs_random_pct", "greedy vs random %", ".1f"),
        ("exact_proven", "exact proven", ""),
        ("exact_gap_to_bound_pct", "exact gap to bound % (max)", ".2f"),
        ("fast_vs_random_measured_pct", "fast vs random % (emulated)", ".1f"),
        ("emulation_max_error_pct", "emulated vs predicted % (max)", ".3f"),
    ]
    report("scheduler_grid", args, cells, fig, columns, data=data)


def measured_cell(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over a cell's emulated seeds: measured makespans, fast's gain over random measured,
    and the largest emulation error of any method."""
    if not rows:
        return {}
    cell: dict[str, Any] = {
        f"{m}_measured_makespan_ms": statistics.fmean(r[m]["measured_makespan_ms"] for r in rows)
        for m in METHODS
    }
    cell["fast_vs_random_measured_pct"] = 100 * statistics.fmean(
        1 - r["fast"]["measured_makespan_ms"] / r["random"]["measured_makespan_ms"] for r in rows
    )
    cell["emulation_max_error_pct"] = 100 * max(
        abs(r[m]["emulation_error"]) for r in rows for m in METHODS
    )
    return cell


if __name__ == "__main__":
    main()
