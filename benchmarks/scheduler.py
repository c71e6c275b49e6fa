"""Scheduler benchmark: makespan and solve time of every method on the reference scenario grid.

Grid (workflow-optimization study): K in {20, 30, 50, 70} data owners, H in {5, 10} helpers,
ResNet-101 cut (3, 33) and VGG-19 cut (3, 20), low and high heterogeneity, several seeds. Per cell:
mean makespan of random, balanced-greedy, fast and exact; wall-clock solve times measured here, in
the same run, around each call (exact's includes computing its fast hint); how many instances exact
proved optimal; fast's gap to exact's proven lower bound and to exact's makespan where proven; and
the improvement of each method over random (mean over seeds of 1 - makespan / random's makespan).

    .venv/bin/python benchmarks/scheduler.py                  # full grid, table
    .venv/bin/python benchmarks/scheduler.py --quick          # 1 seed, exact limited to 1 s
    .venv/bin/python benchmarks/scheduler.py --json --out results.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from mpsl.schedule import Scenario, Schedule, generate
from mpsl.schedule.baselines import solve_balanced_greedy, solve_random
from mpsl.schedule.cpsat import MAX_WORKERS, solve_exact
from mpsl.schedule.fast import solve_fast

METHODS = ("random", "balanced-greedy", "fast", "exact")


def _timed(run: Callable[[], Schedule]) -> tuple[Schedule, float]:
    t0 = time.perf_counter()
    result = run()
    return result, (time.perf_counter() - t0) * 1000


def solve_instance(
    model: str, het: str, K: int, H: int, seed: int, limit_s: float
) -> tuple[Scenario, dict[str, tuple[Schedule, float]]]:
    """One generated scenario and every method's schedule of it, with its solve time (ms)."""
    sc = generate(model, K, H, het, seed=seed)
    runs = {
        "random": lambda: solve_random(sc, seed=seed),
        "balanced-greedy": lambda: solve_balanced_greedy(sc),
        "fast": lambda: solve_fast(sc, seed=seed),
        "exact": lambda: solve_exact(sc, time_limit_s=limit_s, seed=seed),
    }
    return sc, {name: _timed(call) for name, call in runs.items()}


def instance_row(
    model: str, het: str, K: int, H: int, seed: int, solved: dict[str, tuple[Schedule, float]]
) -> dict[str, Any]:
    """One instance's row: every method's makespan and solve ms, exact's bound."""
    row: dict[str, Any] = {"model": model, "heterogeneity": het, "K": K, "H": H, "seed": seed}
    for name, (result, ms) in solved.items():
        row[name] = {"makespan_ms": result.makespan_ms, "solve_ms": ms}
        if name == "exact":
            row[name] |= {"lower_bound_ms": result.lower_bound_ms, "optimal": result.optimal}
    return row


def run_instance(model: str, het: str, K: int, H: int, seed: int, limit_s: float) -> dict[str, Any]:
    """Every method on one generated scenario: makespans, wall-clock ms, exact's bound."""
    _, solved = solve_instance(model, het, K, H, seed, limit_s)
    return instance_row(model, het, K, H, seed, solved)


def summarize_cell(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over seeds of one (model, heterogeneity, K, H) cell."""
    first = rows[0]
    cell: dict[str, Any] = {k: first[k] for k in ("model", "heterogeneity", "K", "H")}
    cell["seeds"] = len(rows)
    for m in METHODS:
        cell[f"{m}_makespan_ms"] = statistics.fmean(r[m]["makespan_ms"] for r in rows)
        cell[f"{m}_solve_ms"] = statistics.fmean(r[m]["solve_ms"] for r in rows)
        if m != "random":
            gains = [1 - r[m]["makespan_ms"] / r["random"]["makespan_ms"] for r in rows]
            cell[f"{m}_vs_random_pct"] = 100 * statistics.fmean(gains)
            cell[f"{m}_vs_random_max_pct"] = 100 * max(gains)
    cell["fast_max_solve_ms"] = max(r["fast"]["solve_ms"] for r in rows)
    proven = [r for r in rows if r["exact"]["optimal"]]
    cell["exact_proven"] = len(proven)
    cell["fast_gap_to_bound_pct"] = 100 * statistics.fmean(
        r["fast"]["makespan_ms"] / r["exact"]["lower_bound_ms"] - 1 for r in rows
    )
    cell["fast_gap_to_proven_optimum_max_pct"] = (
        100 * max(r["fast"]["makespan_ms"] / r["exact"]["makespan_ms"] - 1 for r in proven)
        if proven
        else None
    )
    return cell


def summarize(cells: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures the goals ask for, over the whole grid."""
    proven = [r for r in rows if r["exact"]["optimal"]]
    big = [r["fast"]["solve_ms"] for r in rows if r["K"] == 70 and r["H"] == 10]
    return {
        "instances": len(rows),
        "exact_proven": len(proven),
        "fast_gap_to_proven_optimum_max_pct": (
            100 * max(r["fast"]["makespan_ms"] / r["exact"]["makespan_ms"] - 1 for r in proven)
            if proven
            else None
        ),
        "fast_gap_to_bound_max_pct": 100
        * max(r["fast"]["makespan_ms"] / r["exact"]["lower_bound_ms"] - 1 for r in rows),
        "fast_max_solve_ms_K70_H10": max(big) if big else None,
        "fast_max_solve_ms": max(r["fast"]["solve_ms"] for r in rows),
        "cells_exact_not_always_proven": [
            f"{c['model']} {c['heterogeneity']} K={c['K']} H={c['H']}: "
            f"{c['exact_proven']}/{c['seeds']}"
            for c in cells
            if c["exact_proven"] < c["seeds"]
        ],
        "best_cell_fast_vs_random_pct": max(c["fast_vs_random_pct"] for c in cells),
        "best_instance_fast_vs_random_pct": max(c["fast_vs_random_max_pct"] for c in cells),
        "best_cell_balanced_greedy_vs_random_pct": max(
            c["balanced-greedy_vs_random_pct"] for c in cells
        ),
    }


def print_table(
    cells: list[dict[str, Any]], summary: dict[str, Any], config: dict[str, Any]
) -> None:
    """A plain-text table (one row per cell) and the summary."""
    head = (
        f"{'model':9} {'het':4} {'K':>3} {'H':>3} | {'random s':>9} {'greedy s':>9} {'fast s':>9} "
        f"{'exact s':>9} | {'fast ms':>12} {'exact s':>7} {'proven':>6} | {'gap bnd%':>8} "
        f"{'gap opt%':>8} | {'fast>rnd%':>9} {'grdy>rnd%':>9}"
    )
    print(head)
    print("-" * len(head))
    for c in cells:
        opt = c["fast_gap_to_proven_optimum_max_pct"]
        print(
            f"{c['model']:9} {c['heterogeneity']:4} {c['K']:>3} {c['H']:>3} | "
            + " ".join(f"{c[f'{m}_makespan_ms'] / 1000:>9.2f}" for m in METHODS)
            + " | "
            f"{c['fast_solve_ms']:>5.0f} (<={c['fast_max_solve_ms']:>4.0f}) "
            f"{c['exact_solve_ms'] / 1000:>7.2f} {c['exact_proven']:>3}/{c['seeds']:<2} | "
            f"{c['fast_gap_to_bound_pct']:>8.2f} {'-' if opt is None else f'{opt:.2f}':>8} | "
            f"{c['fast_vs_random_pct']:>9.1f} {c['balanced-greedy_vs_random_pct']:>9.1f}"
        )
    print()
    print("columns: mean makespan per method (s); fast mean (max) wall ms; exact mean wall s and")
    print("instances proven optimal; fast's mean gap to exact's lower bound; fast's largest gap to")
    print("exact's makespan where exact proved optimality; mean improvement over random (%).")
    unproven = summary["cells_exact_not_always_proven"]
    if unproven:
        print(f"exact did not prove optimality within {config['exact_time_limit_s']:g} s in some")
        print(f"instances of {len(unproven)} cells (proven/seeds): {'; '.join(unproven)}")
    print(f"config: {json.dumps(config)}")
    print(f"summary: {json.dumps(summary, indent=1)}")


def main(argv: list[str] | None = None) -> None:
    """Run the grid and report."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 seed, exact limited to 1 s")
    ap.add_argument("--seeds", type=int, default=5, help="seeds per cell (default 5)")
    ap.add_argument("--exact-time-limit", type=float, default=5.0, help="seconds (default 5)")
    ap.add_argument("--owners", default="20,30,50,70", help="K values (default 20,30,50,70)")
    ap.add_argument("--helpers", default="5,10", help="H values (default 5,10)")
    ap.add_argument("--models", default="resnet101,vgg19")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--out", help="also write the JSON to this file")
    args = ap.parse_args(argv)
    seeds = 1 if args.quick else args.seeds
    limit = 1.0 if args.quick else args.exact_time_limit
    grid = list(
        itertools.product(
            args.models.split(","),
            ("low", "high"),
            [int(k) for k in args.owners.split(",")],
            [int(h) for h in args.helpers.split(",")],
        )
    )
    config = {"seeds": seeds, "exact_time_limit_s": limit, "cp_sat_workers": MAX_WORKERS,
              "python": platform.python_version(), "machine": platform.machine()}  # fmt: skip
    rows: list[dict[str, Any]] = []
    cells: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for model, het, K, H in grid:
        cell_rows = [run_instance(model, het, K, H, s, limit) for s in range(seeds)]
        rows += cell_rows
        cells.append(summarize_cell(cell_rows))
        print(f"done {model} {het} K={K} H={H} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    summary = summarize(cells, rows)
    summary["total_wall_s"] = time.perf_counter() - t0
    report = {"config": config, "summary": summary, "cells": cells, "instances": rows}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_table(cells, summary, config)


if __name__ == "__main__":
    main()
