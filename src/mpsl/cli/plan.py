"""``mpsl plan``: optimal cuts and node assignment for a profile and a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mpsl.cli.common import ImputeOption, imputed_lines, print_json
from mpsl.cluster import Cluster
from mpsl.estimate.costs import span_needs
from mpsl.plan import Plan, make_plan
from mpsl.plan.sweep import PartsSweep, sweep_parts
from mpsl.profile.impute import Imputation, Imputed, complete, imputed_json
from mpsl.profile.shipped import load_profile


def plan(
    profile: Annotated[str, typer.Option(help="Profile file, or a shipped one: mpsl_vgg19_CIFAR.")],
    cluster: Annotated[Path, typer.Option(help="Cluster file (JSON or TOML).")],
    first_cut: Annotated[int, typer.Option(help="The data owner keeps layers 1..FIRST.")],
    last_cut: Annotated[int, typer.Option(help="The data owner keeps layers LAST+1..S.")],
    objective: Annotated[
        str,
        typer.Option(
            help="epoch (round time), paper (published ILP), cost, or memory (largest node)."
        ),
    ] = "epoch",
    hops: Annotated[str, typer.Option(help="Compute nodes to use: a number or auto.")] = "auto",
    max_round_s: Annotated[
        float | None, typer.Option(help="Longest acceptable round (cost, epoch objectives).")
    ] = None,
    pareto: Annotated[
        bool, typer.Option("--pareto", help="Also list the time/cost frontier.")
    ] = False,
    out: Annotated[Path | None, typer.Option(help="Write the plan to this JSON file.")] = None,
    method: Annotated[str, typer.Option(help="dp (default), milp or brute (tiny cases).")] = "dp",
    impute: ImputeOption = None,
    manual: Annotated[
        str, typer.Option(help="Manual split to compare: balanced (load) or equal (layer counts).")
    ] = "balanced",
    sweep: Annotated[
        str | None,
        typer.Option(
            "--sweep-parts",
            help="One plan per multihop level P = nodes + 2: A..B, or A.. up to the most allowed.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Choose the cuts and the compute node of each middle part: the fastest (or cheapest, or
    least-memory) plan whose nodes all fit in memory, provably optimal; the manual split is shown
    for comparison."""
    nodes = Cluster.load(cluster)
    prof = load_profile(profile)
    imputation = Imputation.parse(impute)
    imputed: tuple[Imputed, ...] = ()
    if imputation is not None:
        # Without it the planner keeps its own rule: a node cannot host a layer its device did
        # not measure, and a data owner's unmeasured layer is an error naming it.
        prof.require_devices(nodes.devices(), str(cluster))
        needs = span_needs(nodes, first_cut, last_cut, prof.num_layers)
        prof, imputed = complete(prof, needs, imputation, str(cluster))
    if sweep is not None:
        if hops != "auto" or pareto:
            raise typer.BadParameter("--sweep-parts sets the hops; drop --hops and --pareto")
        levels = sweep_parts(
            prof,
            nodes,
            first_cut,
            last_cut,
            sweep,
            objective,
            method=method,
            manual=manual,
        )
        if out is not None:
            out.write_text(levels.model_dump_json(indent=1, exclude_none=True) + "\n")
        if as_json:
            data = levels.model_dump(mode="json", exclude_none=True)
            print_json(data | ({"imputed": imputed_json(imputed)} if imputed else {}))
        else:
            for line in imputed_lines(imputed):
                typer.echo(line, err=True)
            show_sweep(levels)
        return
    result = make_plan(
        prof,
        nodes,
        first_cut,
        last_cut,
        objective,
        hops,
        max_round_s,
        method=method,
        pareto=pareto,
        manual=manual,
    )
    if out is not None and result.feasible:
        result.save(out)
    if as_json:
        print_json({**result.model_dump(mode="json", exclude_none=True),
                    "imputed": imputed_json(imputed)})  # fmt: skip
        return
    for line in imputed_lines(imputed):
        typer.echo(line, err=True)
    if not result.feasible:
        typer.echo(f"error: no feasible plan: {result.reason}", err=True)
        raise typer.Exit(2)
    show(result, nodes)
    if out is not None:
        typer.echo(f"plan written to {out}")


def show(result: Plan, cluster: Cluster) -> None:
    """Human-readable plan, manual comparison and frontier."""
    console = Console()
    unbudgeted = result.memory_unbudgeted_bytes
    columns = ["part", "compute node", "device", "layers", "memory"]
    if unbudgeted is not None:
        columns += ["without budget", "budget"]
    table = Table(*columns, "node memory", title=f"{result.model}: cuts {result.cuts}")
    for i, part in enumerate(result.parts, 2):
        node = cluster.node(part.node)
        row = [
            str(i),
            part.node,
            node.device,
            f"{part.first_layer}..{part.last_layer}",
            f"{result.memory_bytes[part.node] / 1e9:.2f} GB",
        ]
        if unbudgeted is not None:
            budget = node.memory_budget_bytes
            row += [
                f"{unbudgeted[part.node] / 1e9:.2f} GB",
                "-" if budget is None else f"{budget / 1e9:.2f} GB",
            ]
        table.add_row(*row, f"{node.memory_bytes / 1e9:.2f} GB")
    console.print(table)
    memory = result.objective == "memory"
    unit = "GB on the largest compute node" if memory else result.objective_unit
    console.print(
        f"{result.objective}: {_value(result.objective, result.objective_value)} {unit}; "
        f"predicted round {result.predicted['round_s']:.3f} s; "
        f"solved in {result.solve_ms:.1f} ms ({result.method})"
    )
    manual = result.manual
    if manual is not None:
        line = f"manual split ({manual.kind}): cuts {manual.cuts} on {', '.join(manual.nodes)}"
        if manual.objective_value is not None:
            shown = _value(result.objective, manual.objective_value, "GB")
            line += f": {result.objective} {shown}"
        if manual.gain_pct is not None:
            line += f" (the plan is {manual.gain_pct:.1f}% lower)"
        if not manual.runnable:
            line += f"; cannot run: {manual.reason}"
        console.print(line)
    if result.frontier:
        front = Table("round s", "cost per round", "nodes", "cuts", title="time/cost frontier")
        for p in result.frontier:
            front.add_row(f"{p.round_s:.3f}", f"{p.cost:.6g}", ", ".join(p.nodes), str(p.cuts))
        console.print(front)


def show_sweep(levels: PartsSweep) -> None:
    """One row per multihop level: the plan, its largest node's memory and its round."""
    memory = levels.objective == "memory"  # then the objective is the largest node column
    unit = next((p.plan.objective_unit for p in levels.points if p.plan.objective_unit), "")
    kind = next((p.plan.manual.kind for p in levels.points if p.plan.manual), "balanced")
    columns = ["P", "compute nodes", "cuts", "on", "largest node", "round s"]
    columns += [] if memory else [f"{levels.objective} ({unit})"]
    title = f"{levels.model}: {levels.objective} plan per multihop level, "
    table = Table(*columns, f"{kind} manual split", title=f"{title}K = {levels.num_data_owners}")
    for point in levels.points:
        plan, manual = point.plan, point.plan.manual
        value = None if manual is None else manual.objective_value
        shown = "-" if value is None else _value(levels.objective, value, "GB")
        if not plan.feasible:
            dashes = ["-"] * (len(columns) - 3)
            table.add_row(str(point.parts), str(point.parts - 2), "none fits", *dashes, shown)
            continue
        row = [
            str(point.parts),
            str(point.parts - 2),
            str(plan.cuts),
            ", ".join(plan.nodes),
            f"{(point.largest_node_bytes or 0) / 1e9:.2f} GB",
            f"{plan.predicted['round_s']:.1f}",
        ]
        row += [] if memory else [f"{plan.objective_value:.6g}"]
        table.add_row(*row, shown)
    Console().print(table)
    for point in levels.points:
        if not point.plan.feasible:
            Console().print(f"P = {point.parts}: {point.plan.reason}")


def _value(objective: str, value: float | None, suffix: str = "") -> str:
    """An objective value as shown: the memory objective in GB (its unit stays bytes in JSON)."""
    if value is None:
        return "-"
    if objective == "memory":
        return f"{value / 1e9:.2f}{' ' + suffix if suffix else ''}"
    return f"{value:.6g}"


def register(app: typer.Typer) -> None:
    """Add ``plan`` to the app."""
    app.command()(plan)
