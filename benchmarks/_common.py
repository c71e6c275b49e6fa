"""Shared bits of the benchmarks: result files and the machine they ran on."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

from mpsl.cluster import Cluster

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def write(name: str, data: dict[str, Any], out: str | None) -> Path:
    """Write ``data`` as JSON to ``out`` (default benchmarks/results/<name>.json)."""
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def local_cluster(owners: int, nodes: int, batch: int, batches: int) -> Cluster:
    """This machine as a cluster: every role on device 'here'; in-process messages cost nothing,
    so links are instant. ``batches``: per local epoch."""
    return Cluster.model_validate(
        {
            "data_owners": [
                {"count": owners, "device": "here", "memory_bytes": 1e10, "link_bps": 1e15}
            ],
            "compute_nodes": [
                {"name": f"node{i + 1}", "device": "here", "memory_bytes": 1e10}
                for i in range(nodes)
            ],
            "links": {"compute_to_compute_bps": 1e15},
            "training": {"batch_size": batch, "batches_per_epoch": batches, "local_epochs": 1},
        }
    )
