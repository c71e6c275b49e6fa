"""The output directory of a run: what it holds, checked before training and written as it goes.

    DIR/run.json                     which run this is: its config (cuts and placement resolved)
    DIR/checkpoints/round-NNNN/      after each round: model.safetensors, state.json (the last few)
    DIR/model.safetensors, model.json   the final global model and how to rebuild it
    DIR/events.jsonl                 the task log, appended round by round
    DIR/summary.json, pipeline.png   the report (report/summary.py)

A directory is checked writable before any training, and one that holds another run is refused
unless the user asks to overwrite it or to resume it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from mpsl.errors import ConfigError, FormatError
from mpsl.fileformat import parse_model
from mpsl.runtime.config import RunConfig
from mpsl.runtime.coordinator import RoundResult
from mpsl.store.atomic import replace_dir, write_text
from mpsl.tasks import TaskRecord

RUN_FILE = "run.json"
CHECKPOINTS = "checkpoints"
WEIGHTS = "model.safetensors"
STATE = "state.json"
EVENTS = "events.jsonl"
FORMAT = "mpsl-run"
VERSION = 1
# What a run writes into its directory: removed by --overwrite, and a sign of another run.
RUN_OUTPUTS = (RUN_FILE, CHECKPOINTS, WEIGHTS, "model.json", EVENTS, "summary.json", "pipeline.png")


@dataclass(frozen=True)
class Checkpoint:
    """The state after ``completed`` rounds: global weights, metrics so far, RNG state."""

    path: Path
    completed: int
    rounds: list[RoundResult]
    torch_rng: torch.Tensor | None

    def weights(self) -> dict[str, torch.Tensor]:
        """The global model's state dict after ``completed`` rounds."""
        return load_file(str(self.path / WEIGHTS))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _round_json(r: RoundResult) -> dict[str, Any]:
    return {k: _finite(v) if isinstance(v, float) else v for k, v in dataclasses.asdict(r).items()}


def _round_from_json(d: dict[str, Any]) -> RoundResult:
    values: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else math.nan if v is None else v for k, v in d.items()
    }
    return RoundResult(**values)


class RunDir:
    """One run's output directory."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(
        cls,
        path: str | Path,
        config: RunConfig,
        *,
        schedule: str | Path | None = None,
        overwrite: bool = False,
    ) -> RunDir:
        """A directory for a new run of ``config`` (following ``schedule``, a schedule file, if
        given): writable, and holding no other run."""
        run = cls(Path(path))
        held = [name for name in RUN_OUTPUTS if (run.path / name).exists()]
        # A run that never completed a round holds nothing trained: its directory is free.
        if held and not overwrite and run.trained():
            raise ConfigError(
                f"{run.path} already holds a run ({', '.join(held)}); continue it with "
                f"--resume {run.path}, replace it with --overwrite, or choose another --out",
                field="out",
            )
        run._check_writable()
        for name in held:
            target = run.path / name
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        payload = {
            "format": FORMAT,
            "version": VERSION,
            "config": config.model_dump(mode="json"),
            "schedule": str(Path(schedule).resolve()) if schedule else None,
        }
        write_text(run.path / RUN_FILE, json.dumps(payload, indent=1) + "\n")
        return run

    def trained(self) -> bool:
        """Whether this directory holds anything trained (a checkpoint, a model, a report)."""
        done = [self.path / WEIGHTS, self.path / "summary.json", *self._checkpoint_dirs()]
        return any(p.exists() for p in done)

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """The existing run in ``path`` (to resume it or read its model)."""
        run = cls(Path(path))
        if not (run.path / RUN_FILE).is_file():
            raise ConfigError(f"{run.path} holds no MP-SL run (no {RUN_FILE})", field="resume")
        return run

    def _run_file(self) -> dict[str, Any]:
        source = self.path / RUN_FILE
        try:
            data = json.loads(source.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise FormatError(f"{source}: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise FormatError(f"{source}: not an MP-SL run file")
        return data

    def config(self) -> RunConfig:
        """The run's config, as it was when the run started."""
        return parse_model(RunConfig, self._run_file().get("config"), str(self.path / RUN_FILE))

    def schedule(self) -> Path | None:
        """The schedule file the run follows, if any."""
        schedule = self._run_file().get("schedule")
        return Path(schedule) if isinstance(schedule, str) else None

    def _check_writable(self) -> None:
        probe = self.path / ".mpsl-write-test"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"cannot write to {self.path}: {exc.strerror}", field="out") from None

    # checkpoints -----------------------------------------------------------------------------

    def save_checkpoint(
        self, completed: int, model: nn.Module, rounds: Sequence[RoundResult], keep: int = 3
    ) -> Path:
        """Write the state after ``completed`` rounds atomically; keep the last ``keep``."""
        root = self.path / CHECKPOINTS
        final = root / f"round-{completed:04d}"
        tmp = root / f".round-{completed:04d}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS))
        rng = base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()
        meta = {"completed_rounds": completed, "rounds": [_round_json(r) for r in rounds]}
        write_text(tmp / STATE, json.dumps({**meta, "torch_rng": rng}, indent=1) + "\n")
        replace_dir(tmp, final)
        for old in self._checkpoint_dirs()[:-keep]:
            shutil.rmtree(old)
        return final

    def _checkpoint_dirs(self) -> list[Path]:
        root = self.path / CHECKPOINTS
        if not root.is_dir():
            return []
        return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("round-"))

    def latest(self) -> Checkpoint | None:
        """The last complete checkpoint, or None before the first round ended."""
        dirs = self._checkpoint_dirs()
        if not dirs:
            return None
        path = dirs[-1]
        try:
            state = json.loads((path / STATE).read_text())
            rng = base64.b64decode(state["torch_rng"])
            rounds = [_round_from_json(r) for r in state["rounds"]]
            completed = int(state["completed_rounds"])
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise FormatError(f"{path / STATE}: not a valid checkpoint ({exc})") from None
        generator_state = torch.frombuffer(bytearray(rng), dtype=torch.uint8)
        return Checkpoint(path, completed, rounds, generator_state)

    # the task log ----------------------------------------------------------------------------

    def append_events(self, records: Iterable[TaskRecord]) -> None:
        """Add records to events.jsonl (in start order), so the log is never held in memory."""
        lines = [json.dumps(r.to_json()) for r in sorted(records, key=lambda r: r.start)]
        if lines:
            with (self.path / EVENTS).open("a") as f:
                f.write("\n".join(lines) + "\n")
