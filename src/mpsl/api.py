"""``mpsl.train``: multihop parallel split learning from a notebook or a script.

The same engine as ``mpsl run`` (in one process by default, every role a process with
``engine="processes"``), the same config (``RunConfig``: every option of ``mpsl run`` is a keyword
here) and, with ``out``, the same run directory (checkpoints, report, model file).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset as TorchDataset

from mpsl.data import Dataset
from mpsl.errors import ConfigError
from mpsl.models import LayerChain
from mpsl.plan import Plan
from mpsl.runtime.config import RunConfig
from mpsl.runtime.coordinator import RoundResult
from mpsl.runtime.engine import RunResult

Data = str | Dataset | tuple[torch.Tensor, torch.Tensor] | TorchDataset[Any]


@dataclass(frozen=True)
class Trained:
    """What ``train`` returns: the trained model, the rounds' history and the whole result."""

    model: nn.Module  # the trained global model (a module given to ``train`` is trained in place)
    chain: LayerChain  # the same weights as the chain of layers that was split
    history: list[RoundResult]  # per round: loss, test loss, accuracy, seconds, dropouts
    result: RunResult  # task records, bytes per link, peak memory per role, the config
    out: Path | None  # the run directory, when one was written

    @property
    def accuracy(self) -> float:
        """Test accuracy after the last round."""
        return self.history[-1].accuracy


def train(
    model: str | nn.Module,
    data: Data,
    *,
    data_owners: int = 4,
    cuts: Sequence[int] | None = None,
    hops: int | None = None,
    plan: str | Path | Plan | None = None,
    rounds: int = 6,
    optimizer: str = "sgd",
    lr: float = 0.05,
    engine: str = "cooperative",
    out: str | Path | None = None,
    overwrite: bool = False,
    on_round: Callable[[RoundResult], None] | None = None,
    **options: Any,
) -> Trained:
    """Train ``model`` on ``data`` with multihop parallel split learning; the trained model back.

    ``model``: an ``nn.Module`` (traced into a chain of layers that shares its tensors, so the
    module itself ends trained), a zoo name or a spec ``FILE.py:FUNCTION``. ``data``: a dataset
    name, an ``mpsl.data.Dataset``, a pair of tensors ``(x, y)`` (a seeded fifth is the test
    set) or a torch ``Dataset`` of ``(x, y)`` items. Where the middle runs: ``cuts`` (a cut list),
    ``hops`` (compute nodes, cut evenly) or ``plan`` (a ``Plan`` or a ``mpsl plan`` file).
    ``engine``: ``cooperative`` or ``threads`` (one process), or ``processes`` (every role a
    process; the model and the data then by name or spec, which every process builds). ``out``:
    write the run directory as ``mpsl run --out`` does. Any other keyword is a run option
    (docs/run.md: ``local_epochs``, ``batch_size``, ``partition``, ``seed``, ...).
    """
    from mpsl.runtime.engine import InProcessEngine

    if engine not in ("cooperative", "threads", "processes"):
        raise ConfigError(
            f"engine must be cooperative, threads or processes; got '{engine}'", field="engine"
        )
    if engine == "processes" and not (isinstance(model, str) and isinstance(data, str)):
        raise ConfigError(
            "engine 'processes' builds the model and loads the data in every process: give the "
            "model as a name or FILE.py:FUNCTION and the data as a dataset name",
            field="engine",
        )
    if "dataset" in options:
        raise ConfigError("the data is the second argument of mpsl.train", field="dataset")
    values: dict[str, Any] = {
        **options,
        "data_owners": data_owners,
        "rounds": rounds,
        "optimizer": optimizer,
        "lr": lr,
    }
    if cuts is not None:
        values["cuts"] = list(cuts)
    if hops is not None:
        values["compute_nodes"] = hops
    if plan is not None:
        values |= _placement(plan, values)
    values["dataset"] = data if isinstance(data, str) else "python"
    if engine == "processes":  # every process loads the data and builds the model itself
        values["model"] = model
        return _processes(RunConfig.from_values(values, "mpsl.train"), out, overwrite, on_round)
    dataset = _dataset(data, values)
    chain = None
    if isinstance(model, str):
        values["model"] = model
    else:
        values["model"] = type(model).__name__
        chain = _chain(model, values, dataset)
    config = RunConfig.from_values(values, "mpsl.train")
    local = InProcessEngine(config, dataset=dataset, model=chain, scheduling=engine)
    result, where = _run(local.run, config, local.model, local.events, out, overwrite, on_round)
    trained = local.model if chain is None or isinstance(model, str) else model
    return Trained(trained, local.model, result.rounds, result, where)


def _placement(plan: str | Path | Plan, values: dict[str, Any]) -> dict[str, Any]:
    """The cuts and the node of each middle part from ``plan``."""
    from mpsl.plan import resolve_plan

    if values.get("cuts") is not None or values.get("compute_nodes") is not None:
        raise ConfigError("give one of cuts, hops and plan", field="plan")
    chosen = plan if isinstance(plan, Plan) else resolve_plan(str(plan))
    if not chosen.feasible:
        raise ConfigError(f"the plan is not feasible: {chosen.reason}", field="plan")
    return {"cuts": list(chosen.cuts), "nodes": chosen.nodes}


def _dataset(data: Data, values: dict[str, Any]) -> Dataset:
    """``data`` as a Dataset (a dataset name loaded as ``mpsl run`` loads it)."""
    from mpsl.data import from_tensors, from_torch, load_dataset

    seed = values.get("seed", 0)
    if isinstance(data, str):
        shape = values.get("input_shape")
        return load_dataset(
            data,
            values.get("data_path"),
            tuple(shape) if shape else None,
            values.get("num_classes"),
            seed,
        )
    if isinstance(data, Dataset):
        return data
    if isinstance(data, tuple):
        if len(data) != 2:
            raise ConfigError(
                f"data as a tuple is (x, y); got {len(data)} items (for test data use "
                "mpsl.data.from_tensors(x, y, x_test, y_test))",
                field="data",
            )
        return from_tensors(*data, seed=seed)
    if isinstance(data, TorchDataset):
        return from_torch(data, seed=seed)
    raise ConfigError(
        f"data must be a dataset name, an mpsl.data.Dataset, (x, y) tensors or a torch Dataset; "
        f"got {type(data).__name__}",
        field="data",
    )


def _chain(model: nn.Module, values: dict[str, Any], dataset: Dataset) -> LayerChain:
    """``model`` as a chain of its layers, sharing its tensors."""
    from mpsl.models.trace import trace_chain

    if isinstance(model, LayerChain):
        return model
    shape = values.get("input_shape") or dataset.input_shape
    return trace_chain(model, type(model).__name__, tuple(shape))


def _run(
    run: Callable[..., RunResult],
    config: RunConfig,
    model: nn.Module,
    events: Any,
    out: str | Path | None,
    overwrite: bool,
    on_round: Callable[[RoundResult], None] | None,
) -> tuple[RunResult, Path | None]:
    """``run`` the rounds, recorded into ``out`` as ``mpsl run`` records them when given."""
    from mpsl.record import Recorder
    from mpsl.store.rundir import RunDir

    if out is None:
        return run(None, on_round), None
    recorder = Recorder(
        RunDir.create(out, config, overwrite=overwrite),
        model=model,
        events=events,
        job={"api": "mpsl.train"},
    )

    def each(result: RoundResult) -> None:
        recorder.on_round(result)
        if on_round is not None:
            on_round(result)

    return recorder.finish(run(None, each)), recorder.out


def _processes(
    config: RunConfig,
    out: str | Path | None,
    overwrite: bool,
    on_round: Callable[[RoundResult], None] | None,
) -> Trained:
    """Every role a process of this machine: each builds the model and loads the data itself."""
    from mpsl.deploy.coordinator import DeploymentCoordinator
    from mpsl.deploy.launch import run_processes
    from mpsl.signals import interruptible

    deployment = DeploymentCoordinator(config, wait_s=120.0)

    def rounds(progress: Any, each: Callable[[RoundResult], None] | None) -> RunResult:
        # SIGTERM as an exception: the launcher's clean-up (children, secret keys) runs.
        with interruptible():
            return run_processes(deployment, progress, each)

    chain = deployment.setup.model
    result, where = _run(rounds, config, chain, deployment.events, out, overwrite, on_round)
    return Trained(chain, chain, result.rounds, result, where)
