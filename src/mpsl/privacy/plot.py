"""The audit's chart: attack success per hop, per defence, against chance and the baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D


def _best_label_attack(got: dict[str, Any]) -> float | None:
    """The most successful label attack's accuracy under one defence (None: none was run)."""
    if "label_attack" not in got:
        return None
    return max(v for v in got["label_attack_accuracy"].values() if v is not None)


def _key(marker: str, label: str, size: float = 6) -> Line2D:
    """A grey marker for the chart's key: what a shape means, whatever the defence's colour."""
    return Line2D([], [], marker=marker, markersize=size, linestyle="", color="grey", label=label)


def draw_audit(report: dict[str, Any], path: Path) -> None:
    """Three panels: reconstruction MSE per node (baseline dashed), attack accuracy per node, and
    privacy against utility: each defence's attack success against its test accuracy. One colour
    per defence in all three."""
    nodes: list[str] = report["nodes"]
    defences: dict[str, Any] = report["defences"]
    colours = plt.get_cmap("tab10")
    fig, (left, right, trade) = plt.subplots(1, 3, figsize=(16, 5))
    width = 0.8 / max(1, len(defences))
    chance: float | None = None
    for d, (name, got) in enumerate(defences.items()):
        colour = colours(d % 10)
        recon = got["reconstruction"]
        shown = [n for n in nodes if n in recon]
        xs = [nodes.index(n) + d * width for n in shown]
        left.bar(xs, [recon[n]["mse"] for n in shown], width, color=colour, label=name)
        for x, n in zip(xs, shown, strict=True):
            base = recon[n]["baseline_mse"]
            left.hlines(base, x - width / 2, x + width / 2, colors="k", linestyles="dashed")
        right.bar(xs, [recon[n]["classifier_accuracy"] for n in shown], width, color=colour)
        best = _best_label_attack(got)
        if best is not None:
            x = nodes.index(got["label_attack"]["node"]) + d * width
            right.scatter([x], [best], marker="*", s=160, zorder=3, color=colour, edgecolor="k")
            chance = got["label_chance"]
        acc = got["test_accuracy"]
        if best is not None:
            trade.scatter([acc], [best], marker="*", s=160, color=colour, edgecolor="k")
        first = next(iter(recon.values()), None)
        if first is not None:
            trade.scatter([acc], [first["classifier_accuracy"]], marker="o", color=colour)
    if chance is not None:
        for ax in (right, trade):
            ax.axhline(chance, color="grey", linestyle=":")
    # The MSE of a reconstruction from noised activations can be orders above the baseline.
    left.set_yscale("log")
    left.set_xticks([i + 0.4 - width / 2 for i in range(len(nodes))], nodes)
    left.set_ylabel("reconstruction MSE (dashed: mean image)")
    left.set_title("input reconstruction from received activations")

    right.set_xticks([i + 0.4 - width / 2 for i in range(len(nodes))], nodes)
    right.set_ylim(0, 1.45)  # room above the bars for the key
    right.set_ylabel("accuracy")
    right.set_title("what the attacker gets right")
    keys = [
        _key("s", "classifier on reconstructions"),
        _key("*", "labels: best attack", size=12),
        _key("o", "inputs: classifier, first node"),
        Line2D([], [], linestyle=":", color="grey", label="label chance"),
    ]
    right.legend(handles=keys[:2] + keys[3:], fontsize=8, loc="upper left")
    trade.legend(handles=keys[1:], fontsize=8, loc="lower right")
    trade.set_xlabel("test accuracy (utility)")
    trade.set_ylabel("attack success")
    trade.set_title("privacy against utility, per defence")
    trade.set_xlim(0, 1.05)
    trade.set_ylim(0, 1.05)
    # the defences' colours, shared by the three panels, in one key below them
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 8), title="defence")
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
