"""Writing a run's output directory: summary.json, events.jsonl, pipeline.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mpsl.report.gantt import draw_pipeline
from mpsl.runtime.engine import RunResult


def summary(result: RunResult) -> dict[str, Any]:
    """The JSON-ready summary of a run."""
    last = result.rounds[-1] if result.rounds else None
    return {
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


def write_run(result: RunResult, out: str | Path) -> Path:
    """Write summary.json, events.jsonl and pipeline.png into ``out``; return the directory."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary(result), indent=1) + "\n")
    with (out / "events.jsonl").open("w") as f:
        for rec in sorted(result.events.records, key=lambda e: e.start):
            f.write(json.dumps(rec.to_json()) + "\n")
    draw_pipeline(result.events.records, out / "pipeline.png")
    return out
