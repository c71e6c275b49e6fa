"""Study: the scheduler's makespan grid (one-hop parallel SL with H helpers).

    python benchmarks/studies/scheduler_grid.py [--seeds 3] [--exact-time-limit 2] [--out DIR]

Grid of the workflow-optimization study: K in 20, 30, 40, 50, 60, 70 data owners, H in 5, 10
helpers, low and high heterogeneity, ResNet-101 cut (3, 33) and VGG-19 cut (3, 20), scenarios from
``mpsl.schedule.generate`` (workflow reference profiles, 1-20 Mbit/s client-helper links). Per
cell, the mean makespan over seeds of random assignment with FCFS, balanced-greedy, fast and exact
(CP-SAT, time-limited: a makespan and a proven lower bound); each instance is run by
benchmarks/scheduler.run_instance, the scheduler benchmark's own function.
"""

from __future__ import annotations

import itertools
import json
import sys

import matplotlib.pyplot as plt
from _study import parser, save, table

from scheduler import METHODS, run_instance, summarize_cell

OWNERS = (20, 30, 40, 50, 60, 70)
HELPERS = (5, 10)
MODELS = ("resnet101", "vgg19")


def main() -> None:
    ap = parser(__doc__ or "")
    ap.add_argument("--seeds", type=int, default=3, help="scenarios per cell (default 3)")
    ap.add_argument("--exact-time-limit", type=float, default=2.0, help="CP-SAT seconds")
    args = ap.parse_args()
    cells = []
    for model, het, h, k in itertools.product(MODELS, ("low", "high"), HELPERS, OWNERS):
        rows = [run_instance(model, het, k, h, s, args.exact_time_limit) for s in range(args.seeds)]
        cell = summarize_cell(rows)
        cell["exact_gap_to_bound_pct"] = 100 * max(
            r["exact"]["makespan_ms"] / r["exact"]["lower_bound_ms"] - 1 for r in rows
        )
        cells.append(cell)
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
        ax.set_title(f"{model}, {het}, H = {h}", fontsize=9)
        ax.grid(alpha=0.3)
        if i == len(MODELS) - 1:
            ax.set_xlabel("K data owners")
        if j == 0:
            ax.set_ylabel("makespan (s)")
    axes[0][0].legend(fontsize=7)
    config = {"seeds": args.seeds, "exact_time_limit_s": args.exact_time_limit}
    data = {"config": config, "cells": cells}
    path, png = save("scheduler_grid", data, fig, args.out)
    if args.json:
        print(json.dumps(data, indent=1))
        return
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
    ]
    print(table(cells, columns))
    print(f"wrote {path} and {png}", file=sys.stderr)


if __name__ == "__main__":
    main()
