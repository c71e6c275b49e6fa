"""A run recorded into its directory as it trains: checkpoints, the streamed log, the model."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from mpsl.report.summary import write_run
from mpsl.runtime.coordinator import RoundResult
from mpsl.runtime.engine import RunResult
from mpsl.runtime.events import EventLog
from mpsl.signals import deferred
from mpsl.store.model_file import save_trained
from mpsl.store.rundir import RunDir
from mpsl.tasks import TaskRecord


class Recorder:
    """After each round: a checkpoint of the global model and the round's task records on disk.

    ``model``: the global model the coordinator updates each round (checkpointed after every
    round). ``events``: the log the roles' task records arrive in (the in-process engine's, or a
    deployment's as its members report them), drained every round so that it never grows with
    the number of rounds. ``previous``: the rounds of an earlier, resumed part.
    """

    def __init__(
        self,
        run_dir: RunDir,
        *,
        model: nn.Module,
        events: EventLog,
        previous: Sequence[RoundResult] = (),
        job: dict[str, object] | None = None,
    ) -> None:
        self.run_dir, self.model, self.events = run_dir, model, events
        self.job = job or {}  # what the command did around the run (plan, schedule): provenance
        self.rounds: list[RoundResult] = list(previous)
        self.previous = len(self.rounds)
        self.chart: list[TaskRecord] = []  # the first round trained here, for the Gantt chart
        self._chart_round: int | None = None

    @property
    def out(self) -> Path:
        """The run directory."""
        return self.run_dir.path

    def on_round(self, result: RoundResult) -> None:
        """Checkpoint first, then the log: a crash between them loses records, never a round."""
        self.rounds.append(result)
        self.run_dir.save_checkpoint(result.round + 1, self.model, self.rounds)
        if self._chart_round is None:
            self._chart_round = result.round
        self._write_events()

    def _write_events(self) -> None:
        records = self.events.drain()
        self.chart += [r for r in records if r.round == self._chart_round]
        with deferred():  # a Ctrl-C must not cut a line of the log in half
            self.run_dir.append_events(records)

    def kept(self, command: str = "mpsl run") -> str:
        """What an interruption leaves: the completed rounds and how to go on from them."""
        kept, where = len(self.rounds), self.out
        if kept:
            return (
                f"{kept} completed round(s) are checkpointed in {where}: "
                f"continue with {command} --resume {where}"
            )
        return f"{kept} completed round(s), nothing to resume in {where}"

    def finish(self, result: RunResult) -> RunResult:
        """Write what is left of the log, the report and the trained model."""
        self._write_events()  # what came after the last round (a deployment's last reports)
        result = dataclasses.replace(
            result,
            rounds=self.rounds[: self.previous] + result.rounds,
            extra={**result.extra, "job": self.job} if self.job else result.extra,
        )
        write_run(result, self.out, chart=self.chart, write_events=False)
        save_trained(
            self.out,
            result.model,
            cuts=result.cuts,
            nodes=result.config.nodes,
            rounds=len(result.rounds),
            dataset=result.config.dataset,
        )
        return result
