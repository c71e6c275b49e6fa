"""``mpsl profile``: measure a model layer by layer; ``mpsl profile import``: reference CSVs.

``profile`` is a group whose callback measures when no subcommand follows, so both
``mpsl profile --model digits_cnn --batch-size 32 --out p.json`` and
``mpsl profile import --from DIR`` work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mpsl.cli.common import parse_ints
from mpsl.emulate.calibrate import measure_task_overhead, with_task_overhead
from mpsl.errors import ConfigError, FormatError
from mpsl.profile.format import Profile
from mpsl.profile.measure import MeasureSettings, default_device_name, measure_model
from mpsl.profile.reference import import_all

profile_app = typer.Typer(
    help="Measure a model layer by layer (default), or import reference CSVs (import).",
    invoke_without_command=True,
    add_completion=False,
)


def _kib(num: int | None) -> str:
    return "-" if num is None else f"{num / 1024:,.1f}"


def _show(profile: Profile, device: str, console: Console) -> None:
    table = Table(
        "#",
        "layer",
        "fwd ms",
        "bwd ms",
        "opt ms",
        "output KiB",
        "params KiB",
        "peak KiB",
        title=f"{profile.model}, batch {profile.batch_size}, on {device}",
    )
    for i, lp in enumerate(profile.layers, 1):
        t = lp.ms[device]
        table.add_row(
            str(i),
            lp.name,
            f"{t.fwd:.3f}",
            f"{t.bwd:.3f}",
            f"{t.opt:.3f}",
            _kib(lp.output_bytes),
            _kib(lp.param_bytes),
            _kib(lp.peak_bytes),
        )
    console.print(table)


@profile_app.callback()
def measure(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option(help="Zoo model to measure (mpsl models).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size to measure at.")] = None,
    out: Annotated[Path | None, typer.Option(help="Profile file to write (JSON).")] = None,
    input_shape: Annotated[
        str | None, typer.Option(help="Input shape C,H,W (T for gpt_small).")
    ] = None,
    num_classes: Annotated[int | None, typer.Option(help="Classes (vocabulary for gpt).")] = None,
    device_name: Annotated[
        str | None, typer.Option(help="Device name in the profile (default: hostname).")
    ] = None,
    repeats: Annotated[int, typer.Option(help="Timed iterations per layer.")] = 10,
    warmup: Annotated[int, typer.Option(help="Untimed iterations per layer first.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of weights, inputs and gradients.")] = 0,
    threads: Annotated[
        int | None, typer.Option(help="Torch CPU threads while measuring (default: torch's).")
    ] = None,
    merge: Annotated[
        bool, typer.Option("--merge", help="Add this device's timings to an existing --out.")
    ] = False,
    task_overhead: Annotated[
        bool,
        typer.Option(
            "--task-overhead",
            help="Also measure the runtime's per-task overhead here (runs a short calibration).",
        ),
    ] = False,
) -> None:
    """Measure MODEL at BATCH_SIZE on this machine's CPU and write a profile to OUT."""
    if ctx.invoked_subcommand is not None:
        return
    for flag, value in (("--model", model), ("--batch-size", batch_size), ("--out", out)):
        if value is None:
            raise ConfigError(
                "needed to measure a profile (or use 'mpsl profile import')", field=flag
            )
    assert model is not None and batch_size is not None and out is not None
    device = device_name or default_device_name()
    existing = Profile.load(out) if merge and out.exists() else None
    settings = MeasureSettings(repeats=repeats, warmup=warmup, seed=seed, threads=threads)
    shape = parse_ints(input_shape, "--input-shape") if input_shape is not None else None
    err = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(f"profiling {model}", total=None)

        def step(i: int, total: int, name: str) -> None:
            bar.update(task, completed=i, total=total, description=f"profiling {model}: {name}")

        profile = measure_model(
            model,
            batch_size,
            input_shape=shape,
            num_classes=num_classes,
            device_name=device,
            settings=settings,
            progress=step,
        )
    if task_overhead:
        with err.status("measuring the runtime's per-task overhead (calibration workload)"):
            overhead = measure_task_overhead(threads=threads, settings=settings)
        profile = with_task_overhead(profile, device, overhead.ms)
        err.print(
            f"runtime overhead per task on {device}: {overhead.ms:.3f} ms "
            f"(median of {len(overhead.per_pair_ms)} profile-and-round pairs, "
            f"{overhead.tasks_per_round} tasks a round)"
        )
    if existing is not None:
        if existing.batch_size != profile.batch_size:
            raise FormatError(
                f"{out}: measured at batch {existing.batch_size}, this run at "
                f"{profile.batch_size}; merge needs the same batch size"
            )
        profile = existing.merged(profile)
    profile.save(out)
    console = Console()
    _show(profile, device, console)
    console.print(f"wrote {out}" + (" (merged)" if existing is not None else ""), soft_wrap=True)


@profile_app.command("import")
def import_reference(
    from_dir: Annotated[
        Path, typer.Option("--from", help="Directory of reference CSVs, or one holding such dirs.")
    ],
    out: Annotated[Path, typer.Option(help="Directory to write profile JSON files to.")] = Path(),
) -> None:
    """Convert reference CSV tables into profile files named <dir>_<model>_<dataset>.json."""
    if not from_dir.is_dir():
        raise FormatError(f"{from_dir}: not a directory")
    sources = (
        [from_dir]
        if any(from_dir.glob("*_memory.csv"))
        else sorted(d for d in from_dir.iterdir() if d.is_dir() and any(d.glob("*_memory.csv")))
    )
    if not sources:
        raise FormatError(
            f"{from_dir}: no <model>_<dataset>_memory.csv tables here or one level down"
        )
    out.mkdir(parents=True, exist_ok=True)
    console = Console()
    for directory in sources:
        for key, profile in import_all(directory).items():
            path = out / f"{directory.resolve().name}_{key}.json"
            profile.save(path)
            console.print(
                f"wrote {path}: {profile.model}, {profile.num_layers} layers, "
                f"devices {', '.join(profile.devices())}",
                soft_wrap=True,
            )


def register(app: typer.Typer) -> None:
    """Add ``profile`` (and ``profile import``) to the app."""
    app.add_typer(profile_app, name="profile")
