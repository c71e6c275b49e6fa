"""Writing a run's output directory: summary.json, events.jsonl, pipeline.png."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mpsl.report.gantt import draw_pipeline
from mpsl.runtime.engine import RunResult
from mpsl.tasks import TaskRecord
from mpsl.training.defences import Defences, privacy_entry


def summary(result: RunResult) -> dict[str, Any]:
    """The JSON-ready summary of a run; a NaN or infinite number is None (null in JSON)."""
    last = result.rounds[-1] if result.rounds else None
    report = {
        "config": result.config.model_dump(),
        "cuts": list(result.cuts),
        "parts": len(result.cuts) + 1,
        "rounds": [
            {
                "round": r.round + 1,
                "loss": r.loss,
                "test_loss": r.test_loss,
                "accuracy": r.accuracy,
                "seconds": r.seconds,
                "samples": r.samples,
                "dropped": list(r.dropped),  # data owners that left during the round
                "absent": list(r.absent),  # data owners gone before it began
            }
            for r in result.rounds
        ],
        "final_accuracy": last.accuracy if last else None,
        "total_seconds": sum(r.seconds for r in result.rounds),
        "bytes_per_link": result.bytes_per_link,
        # Tensor bytes held (weights, gradients, optimizer state, activations saved for backward)
        "peak_memory_bytes": result.peak_memory_bytes,
        **result.extra,
    }
    config = result.config
    # Each sample is sent once per epoch when the epochs cover the data owner's whole share.
    releases = config.rounds * config.local_epochs if config.batches_per_epoch is None else None
    if privacy := privacy_entry(Defences.of(config), releases):
        report["privacy"] = privacy
    return finite_or_null(report)


def finite_or_null(value: Any) -> Any:
    """``value`` with every NaN or infinite float, at any depth, replaced by None.

    JSON has no NaN or Infinity (Python would write them bare, which JSON readers refuse). A
    round's ``test_loss`` and ``accuracy`` are NaN when the run does not evaluate.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_null(item) for item in value]
    return value


def write_run(
    result: RunResult,
    out: str | Path,
    *,
    chart: Sequence[TaskRecord] | None = None,
    write_events: bool = True,
) -> Path:
    """Write summary.json, events.jsonl and pipeline.png into ``out``; return the directory.

    ``chart``: the records to draw (default: the result's); ``write_events``: False when the
    caller has streamed the task log into events.jsonl already.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary(result), indent=1, allow_nan=False) + "\n")
    if write_events:
        with (out / "events.jsonl").open("w") as f:
            for rec in sorted(result.events.records, key=lambda e: e.start):
                f.write(json.dumps(rec.to_json()) + "\n")
    records = result.events.records if chart is None else chart
    first = min((r.round for r in records), default=0)  # a resumed run's first round, say
    draw_pipeline(records, out / "pipeline.png", round_=first)
    return out
