"""The audit's chart: attack success per hop, per defence, against chance and the baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def draw_audit(report: dict[str, Any], path: Path) -> None:
    """Three panels: reconstruction MSE per node (baseline dashed), attack accuracy per node, and
    privacy against utility: each defence's attack success against its test accuracy."""
    nodes: list[str] = report["nodes"]
    defences: dict[str, Any] = report["defences"]
    fig, (left, right, trade) = plt.subplots(1, 3, figsize=(16, 4))
    width = 0.8 / max(1, len(defences))
    for d, (name, got) in enumerate(defences.items()):
        recon = got["reconstruction"]
        xs = [i + d * width for i, n in enumerate(nodes) if n in recon]
        left.bar(xs, [recon[n]["mse"] for n in nodes if n in recon], width, label=name)
        for x, n in zip(xs, (n for n in nodes if n in recon), strict=True):
            base = recon[n]["baseline_mse"]
            left.hlines(base, x - width / 2, x + width / 2, colors="k", linestyles="dashed")
        right.bar(
            xs,
            [recon[n]["classifier_accuracy"] for n in nodes if n in recon],
            width,
            label=f"{name}: classifier on reconstructions",
        )
        if "label_attack" in got:
            label = got["label_attack"]
            x = nodes.index(label["node"]) + d * width + width / 3
            best = max(v for v in got["label_attack_accuracy"].values() if v is not None)
            right.scatter(
                [x],
                [best],
                marker="*",
                s=160,
                zorder=3,
                label=f"{name}: label inference (best attack)",
            )
            right.axhline(label["chance"], color="grey", linestyle=":", label="label chance")
    left.set_xticks(range(len(nodes)), nodes)
    left.set_ylabel("reconstruction MSE (dashed: mean-image baseline)")
    left.set_title("input reconstruction from received activations")
    left.legend(title="defence")
    right.set_xticks(range(len(nodes)), nodes)
    right.set_ylim(0, 1.05)
    right.set_ylabel("accuracy")
    right.set_title("what the attacker gets right")
    right.legend(fontsize=8, loc="lower left")
    for name, got in defences.items():
        acc = got["test_accuracy"]
        if "label_attack" in got:
            best = max(v for v in got["label_attack_accuracy"].values() if v is not None)
            trade.scatter([acc], [best], marker="*", s=160)
            trade.annotate(f"{name}: labels", (acc, best), fontsize=8)
        first = next(iter(got["reconstruction"].values()), None)
        if first is not None:
            trade.scatter([acc], [first["classifier_accuracy"]], marker="o")
            trade.annotate(f"{name}: inputs", (acc, first["classifier_accuracy"]), fontsize=8)
    trade.set_xlabel("test accuracy (utility)")
    trade.set_ylabel("attack success (labels: best attack; inputs: classifier, first node)")
    trade.set_title("privacy against utility, per defence")
    trade.set_xlim(0, 1.05)
    trade.set_ylim(0, 1.05)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
