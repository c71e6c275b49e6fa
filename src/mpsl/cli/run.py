"""``mpsl run``: train with MP-SL in one process (the embedded default: digits, 4 data owners)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mpsl.cli.common import parse_ints
from mpsl.runtime.config import RunConfig


def run(
    config: Annotated[Path | None, typer.Option(help="TOML config; flags override it.")] = None,
    model: Annotated[str | None, typer.Option(help="Model from `mpsl models`.")] = None,
    dataset: Annotated[str | None, typer.Option(help="digits, mnist, cifar10, synthetic.")] = None,
    data_path: Annotated[str | None, typer.Option(help="Directory of mnist/cifar10 files.")] = None,
    data_owners: Annotated[int | None, typer.Option(help="Number of data owners K.")] = None,
    partition: Annotated[str | None, typer.Option(help="iid or dirichlet.")] = None,
    alpha: Annotated[float | None, typer.Option(help="Dirichlet alpha (label skew).")] = None,
    cuts: Annotated[str | None, typer.Option(help="Cut list c0,c1,...,cN.")] = None,
    hops: Annotated[int | None, typer.Option(help="Compute nodes N (even split).")] = None,
    rounds: Annotated[int | None, typer.Option(help="Rounds.")] = None,
    local_epochs: Annotated[int | None, typer.Option(help="Local epochs r per round.")] = None,
    batches_per_epoch: Annotated[int | None, typer.Option(help="Batches B per epoch.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Samples per batch.")] = None,
    optimizer: Annotated[str | None, typer.Option(help="sgd or adam.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate.")] = None,
    momentum: Annotated[float | None, typer.Option(help="SGD momentum.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of weights, data split, order.")] = None,
    queue_policy: Annotated[str | None, typer.Option(help="fifo or backward-first.")] = None,
    schedule: Annotated[
        Path | None, typer.Option(help="Follow a `mpsl schedule --json` result (one hop).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output directory.")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar or tables.")] = False,
) -> None:
    """Train a model with multihop parallel split learning and write the run's report."""
    from mpsl.report.summary import write_run
    from mpsl.runtime.engine import LocalEngine
    from mpsl.runtime.follow import load_schedule

    flags: dict[str, Any] = {
        "model": model,
        "dataset": dataset,
        "data_path": data_path,
        "data_owners": data_owners,
        "partition": partition,
        "alpha": alpha,
        "compute_nodes": hops,
        "rounds": rounds,
        "local_epochs": local_epochs,
        "batches_per_epoch": batches_per_epoch,
        "batch_size": batch_size,
        "optimizer": optimizer,
        "lr": lr,
        "momentum": momentum,
        "seed": seed,
        "schedule": str(schedule) if schedule else None,
        "queue_policy": queue_policy,
        "out": str(out) if out else None,
        "cuts": list(parse_ints(cuts, "--cuts")) if cuts else None,
    }
    given = {k: v for k, v in flags.items() if v is not None}
    cfg = RunConfig.load(config, given) if config else RunConfig.from_values(given, "flags")
    console = Console(stderr=True, quiet=quiet)
    assignment, orders = load_schedule(cfg.schedule) if cfg.schedule else (None, None)
    engine = LocalEngine(cfg, assignment=assignment, orders=orders)
    console.print(
        f"[bold]MP-SL[/]: {cfg.model} on {cfg.dataset}, {cfg.data_owners} data owners, "
        f"cuts {list(engine.cuts)} (P = {len(engine.cuts) + 1}, "
        f"{len(engine.cuts) - 1} compute nodes), {cfg.rounds} rounds"
    )
    table = Table("round", "train loss", "test loss", "accuracy", "seconds")
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("training", total=cfg.rounds * cfg.data_owners)

        def progress(r: int, done: int) -> None:
            bar.update(
                task,
                completed=r * cfg.data_owners + done,
                description=f"round {r + 1}/{cfg.rounds}",
            )

        def on_round(res: Any) -> None:
            table.add_row(
                str(res.round + 1),
                f"{res.loss:.4f}",
                f"{res.test_loss:.4f}",
                f"{res.accuracy:.2%}",
                f"{res.seconds:.2f}",
            )
            bar.console.print(
                f"round {res.round + 1}: loss {res.loss:.4f}, "
                f"accuracy {res.accuracy:.2%}, {res.seconds:.2f} s"
            )

        result = engine.run(progress, on_round)
    console.print(table)
    out_dir = write_run(result, cfg.out or "runs/latest")
    sent = sum(result.bytes_per_link.values())
    console.print(
        f"final accuracy [bold]{result.rounds[-1].accuracy:.2%}[/] after {cfg.rounds} rounds in "
        f"{sum(r.seconds for r in result.rounds):.1f} s; {sent / 1e6:.1f} MB moved between "
        f"roles; report in {out_dir}/ (summary.json, events.jsonl, pipeline.png)"
    )


def register(app: typer.Typer) -> None:
    """Add ``run`` to the app."""
    app.command()(run)
