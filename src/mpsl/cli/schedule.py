"""``mpsl schedule``: assign data owners to helpers and order each helper's tasks.

The scenario comes from exactly one source: ``--scenario FILE``, ``--generate`` (reference
profiles, random links) or ``--profile FILE --cluster FILE --cuts A,B`` (a deployment).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mpsl.cli.common import ImputeOption, imputed_lines, parse_ints, print_json
from mpsl.cluster import Cluster
from mpsl.errors import ConfigError
from mpsl.profile.impute import Imputation, Imputed, imputed_json
from mpsl.profile.shipped import load_profile
from mpsl.schedule import Scenario, Schedule, from_cluster, generate, solve
from mpsl.schedule.solve import DEFAULT_TIME_LIMIT_S, Method, parse_method
from mpsl.tasks import TaskKind

ONE_SOURCE = (
    "expected exactly one scenario source: --scenario FILE, --generate, or --profile FILE "
    "--cluster FILE --cuts A,B; found "
)


def _scenario(
    scenario: Path | None,
    gen: bool,
    profile: str | None,
    cluster: Path | None,
    cuts: str | None,
    model: str,
    owners: int,
    helpers: int,
    heterogeneity: str,
    seed: int,
    impute: str | None = None,
) -> tuple[Scenario, tuple[Imputed, ...]]:
    """The scenario of whichever single source the flags name, and the timings imputed for it."""
    if not gen:
        return load_scenario(scenario, profile, cluster, cuts, impute)
    if scenario is not None or profile is not None or cluster is not None:
        found = "--scenario" if scenario is not None else "--profile/--cluster"
        raise ConfigError(ONE_SOURCE + f"--generate, {found}")
    if impute is not None:
        raise ConfigError(
            "--impute applies to a deployment scenario (--profile/--cluster); --generate imputes "
            "as its setting says (docs/schedule.md)",
            field="--impute",
        )
    cut = parse_ints(cuts, "--cuts") if cuts is not None else None
    return generate(model, owners, helpers, heterogeneity, cut, seed), ()


def load_scenario(
    scenario: Path | None,
    profile: str | Path | None,
    cluster: Path | None,
    cuts: str | None,
    impute: str | None = None,
) -> tuple[Scenario, tuple[Imputed, ...]]:
    """The scenario of a file (``--scenario``) or of a deployment (``--profile``, ``--cluster``,
    ``--cuts``), and the timings imputed for it."""
    if scenario is not None and (profile is not None or cluster is not None):
        raise ConfigError(ONE_SOURCE + "--scenario, --profile/--cluster")
    if scenario is None and profile is None and cluster is None:
        raise ConfigError(ONE_SOURCE + "none")
    imputation = Imputation.parse(impute)
    if scenario is not None:
        if imputation is not None:
            raise ConfigError(
                "--impute applies to a deployment scenario (--profile/--cluster); a scenario file "
                "holds times already (docs/schedule.md)",
                field="--impute",
            )
        return Scenario.load(scenario), ()
    cut = parse_ints(cuts, "--cuts") if cuts is not None else None
    missing = [n for n, v in (("--profile", profile), ("--cluster", cluster), ("--cuts", cut))
               if v is None]  # fmt: skip
    if profile is None or cluster is None or cut is None:
        raise ConfigError(
            "a deployment scenario needs --profile FILE, --cluster FILE and --cuts A,B; "
            f"missing: {', '.join(missing)}"
        )
    return from_cluster(load_profile(profile), Cluster.load(cluster), cut, str(cluster), imputation)


def _order_text(result: Schedule, h: int) -> str:
    return " ".join(f"{t.kind.letter}{t.owner}" for t in result.tasks if t.helper == h)


def _show(sc: Scenario, result: Schedule, requested: Method, console: Console) -> None:
    table = Table("helper", "data owners", "task order (F/B + owner)", "done at (s)",
                  title=f"schedule by {result.method}")  # fmt: skip
    for h in range(sc.num_helpers):
        owners = result.owners_of(h)
        ends = [
            t.end_ms + sc.tail_ms[t.owner][h]
            for t in result.tasks
            if t.helper == h and t.kind is TaskKind.BWD
        ]
        table.add_row(
            sc.helper_label(h),
            str(len(owners)),
            _order_text(result, h) or "-",
            f"{max(ends) / 1000:,.2f}" if ends else "-",
        )
    console.print(table)
    bound = "unknown" if result.lower_bound_ms is None else f"{result.lower_bound_ms / 1000:,.3f} s"
    console.print(f"makespan: {result.makespan_ms / 1000:,.3f} s   lower bound: {bound}   "
                  f"optimal: {'yes' if result.optimal else 'not proven'}")  # fmt: skip
    console.print(f"method: {result.method} (asked: {requested.value})   "
                  f"solve time: {result.solve_ms:,.0f} ms")  # fmt: skip
    for note in result.notes:
        console.print(f"note: {note}")


def schedule(
    scenario: Annotated[Path | None, typer.Option(help="Scenario file (JSON) to schedule.")] = None,
    gen: Annotated[
        bool, typer.Option("--generate", help="Generate a scenario from the reference profiles.")
    ] = False,
    model: Annotated[str, typer.Option(help="--generate: resnet101 or vgg19.")] = "resnet101",
    owners: Annotated[int, typer.Option(help="--generate: data owners K.")] = 20,
    helpers: Annotated[int, typer.Option(help="--generate: helpers H.")] = 5,
    heterogeneity: Annotated[str, typer.Option(help="--generate: low or high.")] = "low",
    cuts: Annotated[
        str | None,
        typer.Option(help="Cuts c0,c1 (default for --generate: resnet101 3,33, vgg19 3,20)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the generator and of the methods.")] = 0,
    profile: Annotated[
        str | None, typer.Option(help="Profile file, or a shipped profile's name (with --cluster).")
    ] = None,
    cluster: Annotated[Path | None, typer.Option(help="Cluster file (with --profile).")] = None,
    method: Annotated[
        str, typer.Option(help="auto, exact, fast, balanced-greedy or random.")
    ] = "auto",
    time_limit: Annotated[
        float, typer.Option(help="Seconds the exact method may search.")
    ] = DEFAULT_TIME_LIMIT_S,
    save_scenario: Annotated[
        Path | None, typer.Option(help="Also write the scenario (JSON) to this file.")
    ] = None,
    impute: ImputeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Assign data owners to helpers and order each helper's tasks to minimise the makespan."""
    requested = parse_method(method)
    sc, imputed = _scenario(scenario, gen, profile, cluster, cuts, model, owners, helpers,
                            heterogeneity, seed, impute)  # fmt: skip
    if save_scenario is not None:
        sc.save(save_scenario)
    result = solve(sc, requested, time_limit_s=time_limit, seed=seed)
    if as_json:
        print_json({**result.to_json(), "requested_method": requested.value,
                    "notes": list(result.notes), "imputed": imputed_json(imputed)})  # fmt: skip
        return
    console = Console()
    _show(sc, result, requested, console)
    for line in imputed_lines(imputed):
        console.print(line)


def register(app: typer.Typer) -> None:
    """Add ``schedule`` to the app."""
    app.command()(schedule)
