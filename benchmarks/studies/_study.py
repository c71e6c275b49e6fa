"""What every study script shares: the reference setting, result files, tables and plots.

Each study prints its table, writes ``benchmarks/results/studies/<name>.json`` and ``<name>.png``
(or ``--out DIR``). Run from the repository root: ``python benchmarks/studies/<name>.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: studies run headless
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/_common.py
from _common import machine
from mpsl.cluster import Cluster, reference_testbed

RESULTS = Path(__file__).resolve().parents[1] / "results" / "studies"
# (label, shipped profile, first cut, last cut): the cuts of the workflow-optimization study
MODELS = (("VGG-19", "mpsl_vgg19_CIFAR", 3, 20), ("ResNet-101", "mpsl_resnet101_CIFAR", 3, 33))


def parser(doc: str) -> argparse.ArgumentParser:
    """The options every study takes."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"directory (default {RESULTS})")
    ap.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    return ap


def vms(
    count: int,
    memory_gb: float = 16.0,
    slowdowns: tuple[float, ...] = (),
    device: str = "VM",
    price: float = 1.0,
    prefix: str = "vm",
) -> list[dict[str, Any]]:
    """``count`` compute nodes of one device kind (the cluster file's compute_nodes entries)."""
    return [
        {
            "name": f"{prefix}{i + 1}",
            "device": device,
            "memory_bytes": memory_gb * 1e9,
            "slowdown": slowdowns[i] if slowdowns else 1.0,
            "price_per_hour": price,
        }
        for i in range(count)
    ]


def testbed(nodes: list[dict[str, Any]], owners: int) -> Cluster:
    """The MP-SL evaluation's testbed: d1 data owners at 8 Mbit/s, 7.13 Gbit/s between compute
    nodes, B = 16 batches of 128, r = 2 local epochs (cluster.reference_testbed)."""
    return reference_testbed(nodes, owners)


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    """A plain-text table: columns are (key, heading, format spec)."""
    cells = [[heading for _, heading, _ in columns]]
    for row in rows:
        cells.append([_fmt(row.get(key), spec) for key, _, spec in columns])
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _fmt(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return format(value, spec) if spec else str(value)


def save(name: str, data: dict[str, Any], fig: Figure, out: Path) -> tuple[Path, Path]:
    """Write ``<name>.json`` (with the machine) and ``<name>.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps({"study": name, "machine": machine(), **data}, indent=1) + "\n")
    png = out / f"{name}.png"
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return path, png


Table = tuple[str, list[dict[str, Any]], list[tuple[str, str, str]]]  # title, rows, columns


def report(
    name: str,
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    fig: Figure,
    columns: list[tuple[str, str, str]],
    data: dict[str, Any] | None = None,
    more: Sequence[Table] = (),
) -> None:
    """Save the study and print it: the JSON with ``--json``, else the table of ``columns``, then
    any ``more`` tables. ``data`` is what the JSON holds (default: the config and ``rows``)."""
    if data is None:
        data = {"config": vars(args) | {"out": str(args.out)}, "rows": rows}
    path, png = save(name, data, fig, args.out)
    if args.json:
        print(json.dumps(data, indent=1))
        return
    print(table(rows, columns))
    for title, extra, extra_columns in more:
        print(f"\n{title}" if title else "")
        print(table(extra, extra_columns))
    print(f"wrote {path} and {png}", file=sys.stderr)
