"""Study: memory of the largest compute node vs multihop level P (VGG-19, ResNet-101, K = 100).

    python benchmarks/studies/memory_vs_parts.py [--owners 100] [--nodes 10] [--out DIR] [--json]

For each P = 3 .. nodes + 2, the plan that minimises the largest compute node's memory
(``mpsl plan --objective memory --sweep-parts 3..``) on identical VMs with ample memory (1 TB: the
study reports what a node needs, not what fits), K d1 data owners, cuts (3, 20) and (3, 33) (the
workflow study's) and (1, 24) and (1, 35) (the data owner keeps the fewest layers). Two
memory models: the estimator's (weights, optimizer state and saved activations of K instances,
docs/estimate.md) through the planner, and the papers' (K x the sum of the part's output and
parameter bytes), whose least largest part is a min-max partition of the middle layers
(plan.manual.balanced_cuts, exact), computed for every P the middle allows.

Measured, scaled (``--no-measure`` skips it): ResNet-18 profiled here (``mpsl profile``'s
measure_model, batch 32), K = 4 data owners, cuts (1, 11); for each P the memory-optimal plan of
that profile, then one real round in the in-process runtime (emulate.calibrate.synthetic_run), whose
compute nodes count the tensor bytes they hold (instances' state, one instance's gradients, saved
activations): the largest node's peak against the planner's prediction.
"""

from __future__ import annotations

import itertools
import sys

import matplotlib.pyplot as plt
import numpy as np
from _study import MODELS, parser, report, testbed, vms

from mpsl.emulate.calibrate import local_cluster, synthetic_run
from mpsl.estimate.memory import paper_node_memory_bytes
from mpsl.plan import sweep_parts
from mpsl.plan.manual import balanced_cuts
from mpsl.profile.measure import MeasureSettings, measure_model
from mpsl.profile.shipped import load_profile

GB = 1e9


def paper_model(name: str, a: int, b: int, owners: int) -> list[dict[str, float]]:
    """Least largest-node memory under the papers' model for every P the middle allows."""
    profile = load_profile(name)
    loads = np.array(
        [paper_node_memory_bytes(profile, i, i, owners) for i in range(a + 1, b + 1)], dtype=float
    )
    rows = []
    for n in range(1, b - a + 1):
        inner = balanced_cuts(loads, n)
        cuts = [a, *(a + int(p) for p in inner)]
        largest = max(
            paper_node_memory_bytes(profile, lo + 1, hi, owners)
            for lo, hi in itertools.pairwise(cuts)
        )
        rows.append({"parts": n + 2, "paper_model_gb": largest / GB, "paper_cuts": cuts})
    return rows


# the workflow study's cuts, and the thinnest data-owner parts (first and last layer only, as far
# as the VM profile goes: ResNet-101's layers 36-37 are not measured on VM)
CONFIGS = (
    *MODELS,
    ("VGG-19", "mpsl_vgg19_CIFAR", 1, 24),
    ("ResNet-101", "mpsl_resnet101_CIFAR", 1, 35),
)
SCALED = ("resnet18", (3, 32, 32), 32, 4, 1, 11)  # model, input, batch, K, first and last cut


def measured_scaled(nodes: int = 6) -> list[dict[str, float]]:
    """Largest compute node's memory per P: planner's prediction and the runtime's count."""
    model, shape, batch, owners, a, b = SCALED
    settings = MeasureSettings(repeats=3, warmup=1)
    profile = measure_model(
        model, batch, input_shape=shape, num_classes=10, device_name="here", settings=settings
    )
    cluster = local_cluster(owners, nodes, batch, 1)
    rows = []
    for point in sweep_parts(profile, cluster, a, b, "3..", "memory").points:
        cuts = point.plan.cuts
        run = synthetic_run(model, shape, batch, owners, cuts, 1, rounds=1)
        counted = max(run.peak_memory_bytes.values())
        predicted = point.largest_node_bytes or 0
        error = 100 * (predicted - counted) / counted
        rows.append(
            {
                "parts": point.parts,
                "cuts": cuts,
                "predicted_mb": predicted / 1e6,
                "counted_mb": counted / 1e6,
                "error_pct": error,
            }
        )
        print(f"  measured P={point.parts}: {counted / 1e6:.1f} MB", file=sys.stderr)
    return rows


def main() -> None:
    ap = parser(__doc__ or "")
    ap.add_argument("--owners", type=int, default=100, help="K data owners (default 100)")
    ap.add_argument("--nodes", type=int, default=10, help="VMs to plan over (default 10)")
    ap.add_argument("--no-measure", action="store_true", help="skip the measured, scaled part")
    args = ap.parse_args()
    results = []
    fig, grid = plt.subplots(2, 2, figsize=(11, 8))
    axes = grid.ravel()
    for ax, (label, name, a, b) in zip(axes, CONFIGS, strict=True):
        profile = load_profile(name)
        cluster = testbed(vms(args.nodes, memory_gb=1000), args.owners)
        sweep = sweep_parts(profile, cluster, a, b, "3..", "memory", manual="equal")
        rows = []
        for point in sweep.points:
            plan, manual = point.plan, point.plan.manual
            rows.append(
                {
                    "model": f"{label} ({a},{b})",
                    "parts": point.parts,
                    "planner_gb": (point.largest_node_bytes or 0) / GB,
                    "cuts": plan.cuts,
                    "round_s": plan.predicted["round_s"],
                    "equal_split_gb": None
                    if manual is None or manual.objective_value is None
                    else manual.objective_value / GB,
                }
            )
        paper = paper_model(name, a, b, args.owners)
        for row in rows:
            row.update(next(p for p in paper if p["parts"] == row["parts"]))
        first = rows[0]
        for row in rows:
            row["planner_cut_pct"] = 100 * (1 - row["planner_gb"] / first["planner_gb"])
        results.append(
            {
                "model": f"{label} ({a}, {b})",
                "profile": name,
                "cuts": [a, b],
                "owners": args.owners,
                "rows": rows,
                "paper_model_all_parts": paper,
            }
        )
        ax.plot(
            [r["parts"] for r in rows],
            [r["planner_gb"] for r in rows],
            "o-",
            label="estimator's memory model (planner)",
        )
        ax.plot(
            [r["parts"] for r in rows],
            [r["equal_split_gb"] for r in rows],
            "s--",
            label="equal-layer split, same model",
        )
        ax.plot(
            [p["parts"] for p in paper],
            [p["paper_model_gb"] for p in paper],
            ".:",
            label="papers' memory model (K x (output + weights))",
        )
        ax.set_title(f"{label}, cuts ({a}, {b}), K = {args.owners}")
        ax.set_xlabel("multihop level P (parts)")
        ax.set_ylabel("largest compute node (GB)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    measured = [] if args.no_measure else measured_scaled()
    keys = ("model", "input", "batch", "owners", "first_cut", "last_cut")
    scaled = {"setting": dict(zip(keys, SCALED, strict=True)), "rows": measured}
    config = {"owners": args.owners, "nodes": args.nodes}
    data = {"config": config, "models": results, "measured_scaled": scaled}
    columns = [
        ("model", "model", ""),
        ("parts", "P", ""),
        ("cuts", "least-memory cuts", ""),
        ("planner_gb", "largest GB", ".2f"),
        ("planner_cut_pct", "vs P=3 %", ".1f"),
        ("equal_split_gb", "equal split GB", ".2f"),
        ("round_s", "round s", ".0f"),
        ("paper_model_gb", "papers' model GB", ".2f"),
    ]
    more = [("", r["rows"], columns) for r in results[1:]]
    if measured:
        title = "measured, scaled (ResNet-18, K = 4, batch 32, cuts (1, 11), this machine):"
        scaled_columns = [
            ("parts", "P", ""),
            ("cuts", "least-memory cuts", ""),
            ("predicted_mb", "predicted MB", ".1f"),
            ("counted_mb", "counted by the runtime MB", ".1f"),
            ("error_pct", "error %", "+.1f"),
        ]
        more.append((title, measured, scaled_columns))
    report("memory_vs_parts", args, results[0]["rows"], fig, columns, data=data, more=more)


if __name__ == "__main__":
    main()
