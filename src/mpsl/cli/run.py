"""``mpsl run``: train with MP-SL in one process (the embedded default: digits, 4 data owners)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mpsl.cli.common import parse_ints
from mpsl.errors import ConfigError
from mpsl.runtime.config import RunConfig

if TYPE_CHECKING:
    from mpsl.runtime.engine import RunResult

ENGINES = ("cooperative", "threads", "processes")


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
    plan: Annotated[
        str | None, typer.Option(help="'auto' to plan the cuts first, or a plan file.")
    ] = None,
    profile: Annotated[str | None, typer.Option(help="Profile for --plan auto.")] = None,
    cluster: Annotated[Path | None, typer.Option(help="Cluster for --plan auto.")] = None,
    first_cut: Annotated[int | None, typer.Option(help="--plan auto: owner keeps 1..A.")] = None,
    last_cut: Annotated[int | None, typer.Option(help="--plan auto: owner keeps B+1..S.")] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="cooperative (roles take turns in one thread), threads (every role a thread) or "
            "processes (every role a process, encrypted)."
        ),
    ] = "cooperative",
    quiet: Annotated[bool, typer.Option(help="No progress bar or tables.")] = False,
) -> None:
    """Train a model with multihop parallel split learning and write the run's report."""
    from mpsl.runtime.engine import InProcessEngine
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
        "plan": plan,
        "profile": profile,
        "cluster": str(cluster) if cluster else None,
        "first_cut": first_cut,
        "last_cut": last_cut,
        "queue_policy": queue_policy,
        "out": str(out) if out else None,
        "cuts": list(parse_ints(cuts, "--cuts")) if cuts else None,
    }
    given = {k: v for k, v in flags.items() if v is not None}
    if engine not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, got '{engine}'")
    cfg = RunConfig.load(config, given) if config else RunConfig.from_values(given, "flags")
    console = Console(stderr=True, quiet=quiet)
    if cfg.plan:
        cfg = apply_plan(cfg, console)
    if engine == "processes":
        from mpsl.deploy.launch import run_processes

        def on_member(name: str, address: str, done: int, total: int) -> None:
            console.print(f"registered {name} at {address} ({done}/{total})")

        console.print(f"[bold]MP-SL[/] (every role a process): {describe(cfg)}")
        train(cfg, console, lambda p, r: run_processes(cfg, p, r, on_member))
        return
    assignment, orders = load_schedule(cfg.schedule) if cfg.schedule else (None, None)
    scheduling = "threads" if engine == "threads" else "cooperative"
    local = InProcessEngine(cfg, assignment=assignment, orders=orders, scheduling=scheduling)
    console.print(f"[bold]MP-SL[/]: {describe(cfg, local.cuts)}")
    train(cfg, console, local.run)


def describe(cfg: RunConfig, cuts: Sequence[int] | None = None) -> str:
    """One line about the run: model, data, data owners, cuts, rounds."""
    where = (
        f"cuts {list(cuts)} (P = {len(cuts) + 1}, {len(cuts) - 1} compute nodes)"
        if cuts
        else (f"cuts {cfg.cuts}" if cfg.cuts else f"{cfg.compute_nodes or 2} compute nodes")
    )
    return (
        f"{cfg.model} on {cfg.dataset}, {cfg.data_owners} data owners, {where}, {cfg.rounds} rounds"
    )


def train(
    cfg: RunConfig,
    console: Console,
    runner: Callable[[Callable[[int, int], None], Callable[[Any], None]], RunResult],
) -> RunResult:
    """Run ``runner`` under a progress bar and a per-round table; write and announce the report."""
    from mpsl.report.summary import write_run

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

        result = runner(progress, on_round)
    console.print(table)
    out_dir = write_run(result, cfg.out or "runs/latest")
    sent = sum(result.bytes_per_link.values())
    console.print(
        f"final accuracy [bold]{result.rounds[-1].accuracy:.2%}[/] after {cfg.rounds} rounds in "
        f"{sum(r.seconds for r in result.rounds):.1f} s; {sent / 1e6:.1f} MB moved between "
        f"roles; report in {out_dir}/ (summary.json, events.jsonl, pipeline.png)"
    )
    return result


def apply_plan(cfg: RunConfig, console: Console) -> RunConfig:
    """``cfg`` with the cuts and the compute node of each part from its plan request."""
    from mpsl.models import build_model
    from mpsl.plan import check_plan_model, resolve_plan

    assert cfg.plan is not None
    plan = resolve_plan(
        cfg.plan,
        profile=cfg.profile,
        cluster=cfg.cluster,
        first_cut=cfg.first_cut,
        last_cut=cfg.last_cut,
        objective=cfg.objective,
    )
    shape = tuple(cfg.input_shape) if cfg.input_shape else None
    check_plan_model(plan, cfg.model, build_model(cfg.model, cfg.num_classes, shape).num_layers)
    nodes = ", ".join(f"{p.node} {p.first_layer}-{p.last_layer}" for p in plan.parts)
    console.print(f"plan ({plan.objective}): cuts {plan.cuts}; parts {nodes}")
    return cfg.model_copy(
        update={"cuts": list(plan.cuts), "nodes": plan.nodes, "compute_nodes": None}
    )


def register(app: typer.Typer) -> None:
    """Add ``run`` to the app."""
    app.command()(run)
