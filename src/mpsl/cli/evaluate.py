"""``mpsl evaluate``: score a run's trained model on a test set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from mpsl.cli.common import print_json


def evaluate(
    run: Annotated[Path, typer.Argument(help="A run directory (the --out of `mpsl run`).")],
    dataset: Annotated[
        str | None, typer.Option(help="Dataset to score on (default: the run's).")
    ] = None,
    data_path: Annotated[
        str | None,
        typer.Option(
            help="Where the dataset is read: the mnist/cifar10 directory, the .npz file, the "
            "image folder (default: the run's)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Load the trained model of a run and report its loss and accuracy on the test split."""
    from mpsl.errors import ConfigError
    from mpsl.runtime.setup import load_run_data
    from mpsl.store.model_file import load_meta, load_trained
    from mpsl.store.rundir import RunDir
    from mpsl.training.steps import evaluate as score

    model = load_trained(run)
    meta = load_meta(run)
    config = RunDir.open(run).config()
    changes = {k: v for k, v in (("dataset", dataset), ("data_path", data_path)) if v is not None}
    config = config.model_copy(update=changes)
    data = load_run_data(config)
    if tuple(data.input_shape) != tuple(meta.input_shape):
        raise ConfigError(
            f"{config.dataset} has inputs of shape {list(data.input_shape)}; the model of {run} "
            f"takes {meta.input_shape}",
            field="--dataset",
        )
    loss, accuracy = score(model, data.test)
    report = {
        "run": str(run),
        "model": meta.model,
        "dataset": config.dataset,
        "samples": len(data.test),
        "loss": loss,
        "accuracy": accuracy,
    }
    if as_json:
        print_json(report)
        return
    Console().print(
        f"{meta.model} from {run} on {config.dataset} ({len(data.test)} test samples): "
        f"loss {loss:.4f}, accuracy {accuracy:.2%}"
    )


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` to the app."""
    app.command()(evaluate)
