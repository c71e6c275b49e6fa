"""Training an audited run while recording what its compute nodes receive.

In one process (``cooperative`` or ``threads``) the recorder is the engine's observer, on the
transport's send path. With ``processes`` every member is a process (the deployment's launcher)
and each watched compute node records on its own receive path and writes a file at the end of
the run (``mpsl compute-node --observe``); the audit reads those files back into one recorder.
Either way the attacks get the same ``Recorder``: the same messages, to float rounding (the
processes run torch with one thread each; tests/privacy checks the two agree).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mpsl.data import Dataset
from mpsl.errors import ConfigError
from mpsl.runtime.config import RunConfig
from mpsl.runtime.coordinator import RoundResult
from mpsl.runtime.engine import InProcessEngine, RunResult
from mpsl.runtime.layout import Layout
from mpsl.runtime.observe import Recorder, observation_file
from mpsl.runtime.setup import RunSetup

ENGINES = ("cooperative", "threads", "processes")

Say = Callable[[str], None]
"""Where the audit reports progress: one line per step."""


@dataclass
class Trained:
    """A run trained under one defence: its result, what was recorded, the observed round's
    starting global weights, and what the run was built from."""

    result: RunResult
    recorder: Recorder
    start_weights: dict[str, torch.Tensor]
    setup: RunSetup


@dataclass(frozen=True)
class Watch:
    """What to record: the compute nodes whose received activations are kept (None: all), the
    round (from 0), and a check of the settings against the run's nodes once they are known."""

    nodes: tuple[str, ...] | None
    round: int
    check: Callable[[Sequence[str]], None]

    def recorder(self, config: RunConfig, layout: Layout) -> Recorder:
        """An empty recorder for ``layout``'s nodes; raises through ``check`` first."""
        self.check(layout.nodes)
        return Recorder(
            nodes=self.nodes or layout.nodes,
            last_node=layout.nodes[-1],
            owners=config.data_owners,
            rounds={self.round},
        )


def check_engine(engine: str) -> None:
    """ConfigError naming ``engine`` unless the audit can train on it."""
    if engine not in ENGINES:
        raise ConfigError(f"must be one of {', '.join(ENGINES)}, got '{engine}'", field="engine")


def train_observed(
    config: RunConfig, dataset: Dataset, watch: Watch, engine: str, say: Say
) -> Trained:
    """Train ``config`` (its defences set already) on ``engine``, recording per ``watch``."""
    check_engine(engine)
    if engine == "processes":
        return _processes(config, watch, say)
    return _in_process(config, dataset, watch, engine, say)


class _Snapshot:
    """The global weights the observed round starts from, taken as the rounds end."""

    def __init__(self, model: nn.Module, watch: Watch, rounds: int, say: Say) -> None:
        self.model, self.watch, self.rounds, self.say = model, watch, rounds, say
        self.weights = self._copy()  # round 0 starts from the initial weights

    def _copy(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in self.model.state_dict().items()}

    def on_round(self, res: RoundResult) -> None:
        """After each round: progress, and the weights if the next round is the observed one."""
        self.say(f"round {res.round + 1}/{self.rounds}: accuracy {res.accuracy:.2%}")
        if res.round == self.watch.round - 1:
            self.weights = self._copy()


def _in_process(
    config: RunConfig, dataset: Dataset, watch: Watch, scheduling: str, say: Say
) -> Trained:
    # The recorder needs the layout, known once the engine is built, and the engine takes its
    # observer when built: so the observer forwards to the recorder made just after.
    holder: dict[str, Any] = {}

    def observer(dest: str, msg: Any) -> None:
        holder["recorder"](dest, msg)

    engine = InProcessEngine(config, dataset=dataset, observer=observer, scheduling=scheduling)
    recorder = holder["recorder"] = watch.recorder(config, engine.setup.layout)
    snapshot = _Snapshot(engine.model, watch, config.rounds, say)
    result = engine.run(on_round=snapshot.on_round)
    return Trained(result, recorder, snapshot.weights, engine.setup)


def _processes(config: RunConfig, watch: Watch, say: Say) -> Trained:
    # The privacy layer sits above the deployment (pyproject.toml's layers): it may drive it.
    from mpsl.deploy.coordinator import DeploymentCoordinator
    from mpsl.deploy.launch import run_processes
    from mpsl.signals import interruptible

    deployment = DeploymentCoordinator(config, wait_s=120.0)
    layout = deployment.layout
    recorder = watch.recorder(config, layout)
    # the last node records too: its gradients are the label attack's
    recording = [n for n in layout.nodes if n in recorder.nodes or n == recorder.last_node]
    snapshot = _Snapshot(deployment.setup.model, watch, config.rounds, say)
    with tempfile.TemporaryDirectory(prefix="mpsl-observed-") as tmp:
        args = ["--observe", tmp, "--observe-round", str(watch.round + 1)]
        # SIGTERM as an exception: the launcher's clean-up (children, secret keys) runs.
        with interruptible():
            result = run_processes(
                deployment, on_round=snapshot.on_round, member_args=dict.fromkeys(recording, args)
            )
        for node in recording:
            recorder.add_file(observation_file(Path(tmp), node))
    return Trained(result, recorder, snapshot.weights, deployment.setup)
