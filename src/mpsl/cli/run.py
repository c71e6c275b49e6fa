"""``mpsl run``: train with MP-SL in one process (the embedded default: digits, 4 data owners)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mpsl.cli.job import FIELDS, JobConfig, load_job, refuse_schedule
from mpsl.cli.options import ConfigFile, field_command
from mpsl.errors import ConfigError
from mpsl.runtime.config import RunConfig

if TYPE_CHECKING:
    from mpsl.runtime.engine import RunResult

ENGINES = ("cooperative", "threads", "processes")


def run(
    config: ConfigFile = None,
    engine: Annotated[
        str,
        typer.Option(
            help="cooperative (roles take turns in one thread), threads (every role a thread) or "
            "processes (every role a process, encrypted)."
        ),
    ] = "cooperative",
    quiet: Annotated[bool, typer.Option(help="No progress bar or tables.")] = False,
    **options: Any,
) -> None:
    """Train a model with multihop parallel split learning and write the run's report."""
    from mpsl.runtime.engine import InProcessEngine
    from mpsl.schedule.orders import load_schedule

    if engine not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, got '{engine}'")
    job = load_job(config, options)
    console = Console(stderr=True, quiet=quiet)
    cfg = apply_plan(job, console)
    if engine == "processes":
        from mpsl.cli.deploy import exit_on_signals
        from mpsl.deploy.launch import run_processes

        refuse_schedule(job)

        def on_member(name: str, address: str, done: int, total: int) -> None:
            console.print(f"registered {name} at {address} ({done}/{total})")

        console.print(f"[bold]MP-SL[/] (every role a process): {describe(cfg)}")
        with exit_on_signals("the run", "every member process was stopped"):
            train(cfg, job.out, console, lambda p, r: run_processes(cfg, p, r, on_member))
        return
    assignment, orders = load_schedule(job.schedule) if job.schedule else (None, None)
    scheduling = "threads" if engine == "threads" else "cooperative"
    local = InProcessEngine(cfg, assignment=assignment, orders=orders, scheduling=scheduling)
    console.print(f"[bold]MP-SL[/]: {describe(cfg, local.cuts)}")
    train(cfg, job.out, console, local.run)


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
    out: str | Path,
    console: Console,
    runner: Callable[[Callable[[int, int], None], Callable[[Any], None]], RunResult],
) -> RunResult:
    """Run ``runner`` under a progress bar and a per-round table; write the report into ``out``."""
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
    out_dir = write_run(result, out)
    sent = sum(result.bytes_per_link.values())
    console.print(
        f"final accuracy [bold]{result.rounds[-1].accuracy:.2%}[/] after {cfg.rounds} rounds in "
        f"{sum(r.seconds for r in result.rounds):.1f} s; {sent / 1e6:.1f} MB moved between "
        f"roles; report in {out_dir}/ (summary.json, events.jsonl, pipeline.png)"
    )
    return result


def apply_plan(job: JobConfig, console: Console) -> RunConfig:
    """The job's RunConfig, with the cuts and the compute node of each part from its plan if any."""
    from mpsl.models import build_model
    from mpsl.plan import check_plan_model, resolve_plan

    cfg = job.run
    if job.plan is None:
        return cfg
    plan = resolve_plan(
        job.plan,
        profile=job.profile,
        cluster=str(job.cluster) if job.cluster else None,
        first_cut=job.first_cut,
        last_cut=job.last_cut,
        objective=job.objective,
    )
    shape = tuple(cfg.input_shape) if cfg.input_shape else None
    check_plan_model(plan, cfg.model, build_model(cfg.model, cfg.num_classes, shape).num_layers)
    nodes = ", ".join(f"{p.node} {p.first_layer}-{p.last_layer}" for p in plan.parts)
    console.print(f"plan ({plan.objective}): cuts {plan.cuts}; parts {nodes}")
    return cfg.model_copy(
        update={"cuts": list(plan.cuts), "nodes": plan.nodes, "compute_nodes": None}
    )


def register(app: typer.Typer) -> None:
    """Add ``run``, with an option per field of the run config, to the app."""
    app.command("run")(field_command(run, FIELDS))
