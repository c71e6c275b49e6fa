"""``mpsl estimate``: predict round time, memory and utilization of one cut list on a cluster."""

from __future__ import annotations

import json
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
from mpsl.estimate.summary import Estimate, Method, estimate
from mpsl.profile.impute import Imputation
from mpsl.profile.shipped import load_profile

TOP_ROLES = 5  # the busiest roles shown in the table (all of them in --json)


def _seconds(ms: float) -> str:
    return f"{ms / 1000.0:,.2f} s"


def _gib(num: float) -> str:
    return f"{num / 2**30:,.1f} GiB"


def render(est: Estimate, console: Console) -> None:
    """Human-readable tables of an estimate."""
    head = f"round time ({est.method.value}"
    head += f", {est.policy.value})" if est.policy else ")"
    console.print(f"[bold]{head}: {_seconds(est.round_ms)}[/bold]   cuts {list(est.cuts)}")
    console.print(
        f"epoch (r local epochs of every data owner): {_seconds(est.training_ms)}   "
        f"aggregation: {_seconds(est.aggregation_ms)}"
    )
    for line in imputed_lines(est.imputed):
        console.print(line)
    terms = Table("term", "time", title="terms")
    for name, ms in est.terms.items():
        terms.add_row(name, _seconds(ms))
    console.print(terms)
    cols = ["node", "device", "layers", "busy", "util", "memory / capacity", "fits"]
    if est.method is Method.SIM:
        cols += ["queue max", "mean"]
    nodes = Table(*cols, title="compute nodes")
    for n in est.nodes:
        row = [
            n.name,
            n.device,
            f"{n.first_layer}-{n.last_layer}",
            _seconds(n.busy_ms),
            f"{n.utilization:.0%}",
            f"{_gib(n.memory_bytes)} / {_gib(n.capacity_bytes)}",
            "yes" if n.fits else "[red]NO[/red]",
        ]
        if est.method is Method.SIM:
            row += [str(n.max_queue), f"{n.mean_queue:.1f}"]
        nodes.add_row(*row)
    console.print(nodes)
    groups = Table("group", "owners", "device", "memory / capacity", "fits", title="data owners")
    for g in est.groups:
        groups.add_row(
            g.name,
            str(g.count),
            g.device,
            f"{_gib(g.memory_bytes)} / {_gib(g.capacity_bytes)}",
            "yes" if g.fits else "[red]NO[/red]",
        )
    console.print(groups)
    for name, need, have in [(n.name, n.memory_bytes, n.capacity_bytes) for n in est.nodes] + [
        (f"each data owner of {g.name}", g.memory_bytes, g.capacity_bytes) for g in est.groups
    ]:
        if need > have:
            console.print(f"[red]does not fit: {name} needs {_gib(need)}, has {_gib(have)}[/red]")
    if est.links:
        links = Table("link", "busy", "transfers", title="compute-to-compute links")
        for name, (busy, count) in est.links.items():
            links.add_row(name, _seconds(busy), str(count))
        console.print(links)
    if est.bound is not None:
        roles = Table("role", "busy", "util", title=f"busiest roles (of {len(est.roles)})")
        for r in est.roles[:TOP_ROLES]:
            roles.add_row(r.name, _seconds(r.busy_ms), f"{r.utilization:.0%}")
        console.print(roles)
        share = est.bound.busy_ms / est.training_ms if est.training_ms else 0.0
        console.print(f"bounds the round: {est.bound.name} (busy {share:.0%} of the epoch)")
    if est.baselines:
        base = Table("baseline", "round time", title="baselines (closed form)")
        for name, b in est.baselines.items():
            base.add_row(name, b if isinstance(b, str) else _seconds(b.round_ms))
        console.print(base)


def estimate_command(
    profile: Annotated[str, typer.Option(help="Profile file, or a shipped profile's name.")],
    cluster: Annotated[Path, typer.Option(help="Cluster file (JSON).")],
    cuts: Annotated[str, typer.Option(help="Cut list c0,c1,...,cN.")],
    nodes: Annotated[
        str | None, typer.Option(help="Compute node per middle part (default: file order).")
    ] = None,
    method: Annotated[str, typer.Option(help="closed (formula) or sim (simulation).")] = "closed",
    policy: Annotated[
        str | None, typer.Option(help="Simulation queue policy: fifo or backward-first.")
    ] = None,
    stragglers: Annotated[
        str | None, typer.Option(help="Simulation: slow data owners, OWNER=FACTOR,... (0-based).")
    ] = None,
    aggregator_ms: Annotated[float, typer.Option(help="Aggregator's averaging time (ms).")] = 0.0,
    with_baselines: Annotated[
        bool, typer.Option("--baselines", help="Add closed-form baselines.")
    ] = False,
    trace: Annotated[
        Path | None, typer.Option(help="Simulation: write the task trace here (JSON lines).")
    ] = None,
    shared_cores: Annotated[
        int | None,
        typer.Option(help="Simulation: every role on one host of N cores (`mpsl run`: 1)."),
    ] = None,
    impute: ImputeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Predict the round time, per-node memory and utilization of CUTS on CLUSTER."""
    prof = load_profile(profile)
    clus = Cluster.load(cluster)
    est = estimate(
        prof,
        clus,
        parse_ints(cuts, "--cuts"),
        split_items(nodes, "--nodes", "vm2,vm1") if nodes is not None else None,
        method=method,
        policy=policy,
        stragglers=parse_stragglers(stragglers) if stragglers is not None else None,
        aggregator_ms=aggregator_ms,
        with_baselines=with_baselines,
        trace=trace is not None,
        shared_cores=shared_cores,
        imputation=Imputation.parse(impute),
        source=str(cluster),
    )
    if trace is not None:
        trace.write_text("".join(json.dumps(r.to_json()) + "\n" for r in est.trace))
    if as_json:
        print_json(est.to_json())
    else:
        render(est, Console())


def register(app: typer.Typer) -> None:
    """Add ``estimate`` to the app."""
    app.command("estimate")(estimate_command)
