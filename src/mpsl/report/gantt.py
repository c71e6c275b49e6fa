"""The pipeline Gantt chart: a row per node, one bar per task, coloured by data owner."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import Patch

from mpsl.tasks import TaskKind, TaskRecord, owner_endpoint

MAX_OWNER_ROWS = 8


def _row_order(names: set[str], tasks: Sequence[TaskRecord]) -> list[str]:
    """Data owners by index, then compute nodes in chain order, then the rest by name.

    A compute node's place in the chain is when it first ran a forward task: the first batch
    reaches node i + 1 after node i, whatever the nodes are called.
    """
    first_fwd: dict[str, float] = {}
    for r in tasks:
        if r.kind is TaskKind.FWD and r.start < first_fwd.get(r.node, float("inf")):
            first_fwd[r.node] = r.start

    def key(name: str) -> tuple[int, float, str]:
        if name.startswith("owner") and name.removeprefix("owner").isdigit():
            return 0, float(name.removeprefix("owner")), ""
        if name in first_fwd:
            return 1, first_fwd[name], name
        return 2, 0.0, name

    return sorted(names, key=key)


def draw_pipeline(
    records: Sequence[TaskRecord],
    path: str | Path,
    round_: int | None = 0,
    title: str | None = None,
) -> None:
    """Draw the tasks of one round (all rounds when ``round_`` is None) into a PNG."""
    tasks = [r for r in records if round_ is None or r.round == round_]
    owners = sorted({r.owner for r in tasks if r.owner >= 0})
    shown_owner_rows = {owner_endpoint(k) for k in owners[:MAX_OWNER_ROWS]}
    rows = _row_order(
        {r.node for r in tasks if not r.node.startswith("owner") or r.node in shown_owner_rows},
        tasks,
    )
    cmap = plt.get_cmap("tab20" if len(owners) > 10 else "tab10")
    fig, ax = plt.subplots(figsize=(12, 0.45 * len(rows) + 1.6))
    for y, row in enumerate(rows):
        bars = [r for r in tasks if r.node == row]
        colors = ["0.6" if r.owner < 0 else cmap(r.owner % cmap.N) for r in bars]
        ax.broken_barh(
            [(r.start, max(r.end - r.start, 1e-6)) for r in bars],
            (y - 0.4, 0.8),
            facecolors=colors,
            edgecolor=["black" if r.kind == TaskKind.BWD else "none" for r in bars],
            linewidth=0.4,
        )
    ax.set_yticks(range(len(rows)), rows)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since start of run (black edge: backward task)")
    ax.set_title(title or (f"pipeline, round {round_ + 1}" if round_ is not None else "pipeline"))
    handles = [Patch(color=cmap(k % cmap.N), label=f"data owner {k + 1}") for k in owners[:20]]
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
