"""``mpsl emulate``: run the real runtime as an emulation of a profiled deployment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mpsl.cli.common import (
    ImputeOption,
    imputed_lines,
    parse_ints,
    parse_stragglers,
    print_json,
    split_items,
)
from mpsl.cluster import Cluster
from mpsl.errors import ConfigError
from mpsl.tasks import QueuePolicy


def emulate(
    profile: Annotated[
        str | None, typer.Option(help="Profile file, or a shipped profile's name.")
    ] = None,
    cluster: Annotated[Path | None, typer.Option(help="Cluster file (JSON).")] = None,
    cuts: Annotated[str | None, typer.Option(help="Cut list c0,c1,...,cN.")] = None,
    nodes: Annotated[str | None, typer.Option(help="Compute node per middle part.")] = None,
    plan: Annotated[
        Path | None, typer.Option(help="A plan file (`mpsl plan --out`): its cuts and nodes.")
    ] = None,
    policy: Annotated[str, typer.Option(help="Queue policy: fifo or backward-first.")] = "fifo",
    stragglers: Annotated[
        str | None, typer.Option(help="Slow data owners: OWNER=FACTOR,...")
    ] = None,
    time_scale: Annotated[
        float, typer.Option(help="Multiply every time by this (e.g. 0.001 to run 1000x faster).")
    ] = 1.0,
    out: Annotated[Path | None, typer.Option(help="Output directory for the run's report.")] = None,
    impute: ImputeOption = None,
    schedule: Annotated[
        Path | None,
        typer.Option(help="Schedule file (`mpsl schedule --json`) to emulate (one hop)."),
    ] = None,
    scenario: Annotated[
        Path | None, typer.Option(help="With --schedule: the scenario file it was made for.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Emulate one round: every task takes its profiled time, every message its link's time.

    Emulation only (no real compute): the model is replaced by stand-in layers and messages carry
    their sizes, so large models and many data owners run on one machine. Prints the measured
    round time next to the simulation's and the closed form's predictions.

    With --schedule, one hop with several helpers instead: each helper serves the data owners the
    schedule assigns it, in the schedule's task order, and the scenario's times (--scenario FILE,
    or --profile, --cluster and --cuts A,B) make every task last its time. Prints the measured
    makespan of one batch next to the schedule's.
    """
    from mpsl.emulate.emulation import Emulation, epoch_seconds
    from mpsl.estimate.closed_form import multihop
    from mpsl.estimate.simulate import simulate_deployment
    from mpsl.profile.impute import Imputation, imputed_json
    from mpsl.profile.shipped import load_profile
    from mpsl.report.summary import write_run

    if time_scale <= 0:
        raise ConfigError(f"must be positive; got {time_scale}", field="--time-scale")
    if schedule is not None:
        given = {"--nodes": nodes, "--plan": plan, "--stragglers": stragglers,
                 "--policy": policy != "fifo"}  # fmt: skip
        chain_only = [name for name, value in given.items() if value]
        if chain_only:
            raise ConfigError(
                f"a schedule sets each helper's data owners and task order: drop "
                f"{', '.join(chain_only)}",
                field="--schedule",
            )
        _emulate_schedule(schedule, scenario, profile, cluster, cuts, impute, time_scale, out,
                          as_json)  # fmt: skip
        return
    if scenario is not None:
        raise ConfigError("a scenario is emulated with a schedule: add --schedule FILE",
                          field="--scenario")  # fmt: skip
    if profile is None or cluster is None:
        raise ConfigError("give --profile and --cluster (or --schedule FILE with its scenario)",
                          field="--profile" if profile is None else "--cluster")  # fmt: skip
    queue_policy = QueuePolicy.parse(policy, field="--policy")
    if queue_policy is QueuePolicy.SCHEDULED:
        raise ConfigError("an emulation follows no prescribed order: choose fifo or "
                          "backward-first", field="--policy")  # fmt: skip
    prof, clu = load_profile(profile), Cluster.load(cluster)
    cut_list, node_list = _placement(cuts, nodes, plan, prof.num_layers)
    slow = parse_stragglers(stragglers) if stragglers is not None else None
    em = Emulation(
        prof, clu, cut_list, node_list, time_scale, slow, Imputation.parse(impute), str(cluster)
    )
    console = Console(stderr=True)
    with console.status(f"emulating one round ({clu.num_data_owners} data owners)"):
        result = em.run(policy=queue_policy)
    measured_s = result.rounds[0].seconds / time_scale
    sim = simulate_deployment(
        em.profile, clu, cut_list, node_list, policy=queue_policy, stragglers=slow
    )
    shared = bool(em.costs.host_cores) or any(o.uplink for o in em.costs.owners)
    # the closed form does not model shared hosts and uplinks (docs/estimate.md)
    closed_s = None if shared else multihop(em.costs).round_s
    sim_s = sim.round_ms / 1000
    if out:
        write_run(result, out)
    report = {
        "measured_round_s": measured_s,
        "sim_round_s": sim_s,
        "closed_round_s": closed_s,
        "sim_error": (sim_s - measured_s) / measured_s,
        "measured_epoch_s": epoch_seconds(result) / time_scale,
        "sim_epoch_s": sim.training_ms / 1000,
        "time_scale": time_scale,
        "bytes_per_link": result.bytes_per_link,
        "imputed": imputed_json(em.imputed),
    }
    if as_json:
        print_json(report)
        return
    table = Table("round time", "seconds", "vs measured")
    table.add_row("measured (emulated runtime)", f"{measured_s:,.2f}", "")
    for label, value in (("simulation", sim_s), ("closed form", closed_s)):
        if value is not None:
            table.add_row(label, f"{value:,.2f}", f"{(value - measured_s) / measured_s:+.2%}")
    Console().print(table)
    for line in imputed_lines(em.imputed):
        console.print(line)
    if out:
        console.print(f"report in {out}/ (summary.json, events.jsonl, pipeline.png)")


def _emulate_schedule(
    schedule: Path,
    scenario: Path | None,
    profile: str | None,
    cluster: Path | None,
    cuts: str | None,
    impute: str | None,
    time_scale: float,
    out: Path | None,
    as_json: bool,
) -> None:
    """``mpsl emulate --schedule``: one batch of one hop, each helper in its prescribed order."""
    from mpsl.cli.schedule import load_scenario
    from mpsl.emulate.onehop import emulate_schedule
    from mpsl.profile.impute import imputed_json
    from mpsl.report.summary import write_run
    from mpsl.schedule.orders import load_schedule

    sc, imputed = load_scenario(scenario, profile, cluster, cuts, impute)
    assignment, orders = load_schedule(schedule)
    console = Console(stderr=True)
    with console.status(f"emulating one batch ({sc.num_owners} data owners, {sc.num_helpers} "
                        f"helpers)"):  # fmt: skip
        run = emulate_schedule(sc, assignment, orders, time_scale, method=str(schedule))
    if out:
        write_run(run.run, out)
    if as_json:
        print_json({**run.to_json(), "imputed": imputed_json(imputed)})
        return
    measured, predicted = run.makespan_ms / 1000, run.predicted.makespan_ms / 1000
    table = Table("makespan", "seconds", "vs measured")
    table.add_row("measured (emulated runtime)", f"{measured:,.3f}", "")
    table.add_row("schedule (evaluator)", f"{predicted:,.3f}", f"{run.error:+.2%}")
    Console().print(table)
    errors = run.start_errors_ms()
    console.print(f"{len(errors)} helper tasks started {sum(errors) / len(errors):,.1f} ms "
                  f"(mean), {max(errors):,.1f} ms (max) from the schedule's starts")  # fmt: skip
    for line in imputed_lines(imputed):
        console.print(line)
    if out:
        console.print(f"report in {out}/ (summary.json, events.jsonl, pipeline.png)")


def _placement(
    cuts: str | None, nodes: str | None, plan: Path | None, num_layers: int
) -> tuple[tuple[int, ...], list[str] | None]:
    """(cuts, compute node of each part) from --cuts/--nodes or from --plan."""
    from mpsl.plan import Plan, check_plan_model

    if plan is not None:
        if cuts or nodes:
            raise ConfigError("give --plan or --cuts/--nodes, not both", field="--plan")
        made = Plan.load(plan)
        if not made.feasible:
            raise ConfigError(f"{plan} is no feasible plan: {made.reason}", field="--plan")
        check_plan_model(made, "the profile's model", num_layers)
        return tuple(made.cuts), made.nodes
    if cuts is None:
        raise ConfigError("give --cuts (and optionally --nodes), or --plan", field="--cuts")
    names = split_items(nodes, "--nodes", "vm2,vm1") if nodes is not None else None
    return parse_ints(cuts, "--cuts"), names


def register(app: typer.Typer) -> None:
    """Add ``emulate`` to the app."""
    app.command()(emulate)
