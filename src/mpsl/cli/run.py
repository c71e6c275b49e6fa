"""``mpsl run``: train with MP-SL in one process (the embedded default: digits, 4 data owners)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mpsl.cli.exits import exit_on_signals
from mpsl.cli.job import FIELDS, JobConfig, load_job, refuse_schedule
from mpsl.cli.options import ConfigFile, field_command, flags
from mpsl.errors import ConfigError
from mpsl.runtime.config import RunConfig

if TYPE_CHECKING:
    from torch import nn

    from mpsl.record import Recorder
    from mpsl.runtime.coordinator import RoundResult
    from mpsl.runtime.engine import RunResult
    from mpsl.runtime.events import EventLog
    from mpsl.store.rundir import RunDir

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
    resume: Annotated[
        Path | None,
        typer.Option(help="Continue the run in this directory from its last completed round."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace a run already in --out instead of refusing.")
    ] = False,
    heartbeat_timeout: Annotated[
        float,
        typer.Option(
            help="--engine processes: seconds of silence after which a member counts as gone."
        ),
    ] = 30.0,
    quiet: Annotated[bool, typer.Option(help="No progress bar or tables.")] = False,
    **options: Any,
) -> None:
    """Train a model with multihop parallel split learning and write the run's report."""
    from mpsl.runtime.engine import InProcessEngine
    from mpsl.schedule.orders import load_schedule

    if engine not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, got '{engine}'")
    console = Console(stderr=True, quiet=quiet)
    job, run_dir = open_run(
        config, options, resume, overwrite, console, one_hop=engine != "processes"
    )
    cfg = job.run
    if engine == "processes":
        from mpsl.deploy.coordinator import DeploymentCoordinator
        from mpsl.deploy.launch import run_processes

        deployment = DeploymentCoordinator(cfg, timeout_s=heartbeat_timeout, wait_s=120.0)
        start, recorder = resume_point(
            run_dir, deployment.setup.model, console, job, events=deployment.events
        )

        on_member = registered(console)

        def processes(p: Callable[[int, int], None], r: Callable[[RoundResult], None]) -> RunResult:
            return run_processes(deployment, p, r, on_member, start_round=start)

        console.print(f"[bold]MP-SL[/] (every role a process): {describe(cfg)}")
        stopped = "every member process was stopped"
        with exit_on_signals("the run", lambda: f"{stopped}; {recorder.kept()}"):
            train(cfg, console, processes, recorder)
        return
    assignment, orders = load_schedule(job.schedule) if job.schedule else (None, None)
    scheduling = "threads" if engine == "threads" else "cooperative"
    local = InProcessEngine(cfg, assignment=assignment, orders=orders, scheduling=scheduling)
    start, recorder = resume_point(run_dir, local.model, console, job, events=local.events)
    console.print(f"[bold]MP-SL[/]: {describe(cfg, local.cuts)}")
    with exit_on_signals("the run", recorder.kept):
        train(cfg, console, lambda p, r: local.run(p, r, start_round=start), recorder)


def open_run(
    config: Path | None,
    options: dict[str, Any],
    resume: Path | None,
    overwrite: bool,
    console: Console,
    *,
    one_hop: bool,
) -> tuple[JobConfig, RunDir]:
    """The job and its run directory: the run in ``resume`` with its own config, or a new one
    (its plan applied; a schedule refused unless the engine runs one-hop schedules)."""
    from mpsl.store.rundir import RunDir

    if resume is not None:
        if config is not None or options or overwrite:
            raise ConfigError(
                "--resume continues a run with its own config; give no other run option",
                field="resume",
            )
        run_dir = RunDir.open(resume)
        job = JobConfig(run=run_dir.config(), out=resume, schedule=run_dir.schedule())
        if not one_hop:
            refuse_schedule(job)
        return job, run_dir
    job = load_job(config, options)
    if not one_hop:
        refuse_schedule(job)
    job = job.model_copy(update={"run": apply_plan(job, console)})
    run_dir = RunDir.create(job.out, job.run, schedule=job.schedule, overwrite=overwrite)
    return job, run_dir


def resume_point(
    run_dir: RunDir,
    model: nn.Module,
    console: Console,
    job: JobConfig,
    events: EventLog,
) -> tuple[int, Recorder]:
    """The first round to train and the run's recorder; ``model`` (and torch's RNG) as the run
    directory's last checkpoint left them, when it has one."""
    import torch

    from mpsl.record import Recorder

    start, previous = 0, []
    if (checkpoint := run_dir.latest()) is not None:
        model.load_state_dict(checkpoint.weights())
        if checkpoint.torch_rng is not None:
            torch.set_rng_state(checkpoint.torch_rng)
        start, previous = checkpoint.completed, checkpoint.rounds
        console.print(f"resuming {run_dir.path} after round {start} of {job.run.rounds}")
    recorder = Recorder(run_dir, model=model, events=events, previous=previous, job=provenance(job))
    return start, recorder


def registered(console: Console) -> Callable[[str, str, int, int], None]:
    """What to print as each member of a deployment registers."""

    def on_member(name: str, address: str, done: int, total: int) -> None:
        console.print(f"registered {name} at {address} ({done}/{total})")

    return on_member


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
    runner: Callable[[Callable[[int, int], None], Callable[[RoundResult], None]], RunResult],
    recorder: Recorder,
) -> RunResult:
    """Run ``runner`` under a progress bar and a per-round table, recording it as it goes."""

    table = Table("round", "train loss", "test loss", "accuracy", "seconds")
    done = len(recorder.rounds)  # rounds of a resumed run done before
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(
            "training", total=cfg.rounds * cfg.data_owners, completed=done * cfg.data_owners
        )

        def progress(r: int, owners_done: int) -> None:
            bar.update(
                task,
                completed=r * cfg.data_owners + owners_done,
                description=f"round {r + 1}/{cfg.rounds}",
            )

        def on_round(res: RoundResult) -> None:
            recorder.on_round(res)
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

        result = recorder.finish(runner(progress, on_round))
    console.print(table)
    sent = sum(result.bytes_per_link.values())
    console.print(
        f"final accuracy [bold]{result.rounds[-1].accuracy:.2%}[/] after {cfg.rounds} rounds in "
        f"{sum(r.seconds for r in result.rounds):.1f} s; {sent / 1e6:.1f} MB moved between "
        f"roles; report in {recorder.out}/ (summary.json, events.jsonl, pipeline.png, "
        f"model.safetensors)"
    )
    return result


def apply_plan(job: JobConfig, console: Console) -> RunConfig:
    """The job's RunConfig, with the cuts and the compute node of each part from its plan if any."""
    from mpsl.models import build_model
    from mpsl.plan import check_plan_model, resolve_plan

    cfg = job.run
    if job.plan is None:
        return cfg
    if job.plan == "auto":
        needed: dict[str, object] = {"profile": job.profile, "cluster": job.cluster}
        needed |= {"first_cut": job.first_cut, "last_cut": job.last_cut}
        missing = [flags(name)[0] for name, value in needed.items() if value is None]
        if missing:
            raise ConfigError(f"--plan auto also needs {', '.join(missing)}", field="plan")
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
    update: dict[str, object] = {"cuts": list(plan.cuts), "compute_nodes": None}
    if job.schedule is None:  # a schedule's helpers host the middle part, not the plan's node
        update["nodes"] = plan.nodes
    return RunConfig.from_values({**cfg.model_dump(), **update}, f"plan {job.plan}")


def provenance(job: JobConfig) -> dict[str, object]:
    """The job's settings that shaped the run (plan request, schedule), for summary.json."""
    return job.model_dump(mode="json", exclude={"run", "out"}, exclude_none=True)


def register(app: typer.Typer) -> None:
    """Add ``run``, with an option per field of the run config, to the app."""
    app.command("run")(field_command(run, FIELDS))
