"""``mpsl audit``: train a run, attack what each compute node received, report it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mpsl.cli.common import print_json, split_items
from mpsl.cli.job import FIELDS, load_job
from mpsl.cli.options import ConfigFile, field_command

# Job fields that do not apply: the audit trains the chain and writes its own report.
NOT_TAKEN = ("out", "plan", "profile", "cluster", "first_cut", "last_cut", "objective", "schedule")
# Rounds when neither a flag nor a config file says: the attacks need a trained model, not a
# finished one, and the audit should take seconds on the embedded default.
AUDIT_ROUNDS = 2


def audit(
    config: ConfigFile = None,
    out: Annotated[
        Path, typer.Option(help="Directory of the report (privacy.json, privacy.png).")
    ] = Path("runs/audit"),
    defences: Annotated[
        str,
        typer.Option(
            help="Comma-separated defences to audit: none, noise, activation-noise, "
            "gradient-noise, strong, nopeek, max-norm."
        ),
    ] = "none",
    defence_strength: Annotated[
        float | None,
        typer.Option(
            help="Overrides the defences' strength: the noise multiplier of noise, "
            "activation-noise and gradient-noise, the weight of nopeek (strong and max-norm "
            "have none)."
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="How the audited run trains: cooperative or threads (one process, the "
            "transport observed), or processes (every role a process; each compute node "
            "records what it receives)."
        ),
    ] = "cooperative",
    attack_nodes: Annotated[
        str | None,
        typer.Option(help="Compute nodes whose view is attacked, e.g. node1 (default: all)."),
    ] = None,
    attack_round: Annotated[
        int | None, typer.Option(help="Round observed, from 1 (default: the last).")
    ] = None,
    aux_fraction: Annotated[
        float, typer.Option(help="Share of the test split the attacker owns as auxiliary data.")
    ] = 0.5,
    inversion_epochs: Annotated[
        int, typer.Option(help="Epochs of the inversion network's training.")
    ] = 30,
    known_labels: Annotated[
        int, typer.Option(help="Labelled samples per class the label attacker holds.")
    ] = 10,
    attack_seed: Annotated[int, typer.Option(help="Seed of the attacker's choices.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress or tables.")] = False,
    **options: Any,
) -> None:
    """Measure privacy: train with MP-SL, then attack labels and inputs from each node's view."""
    from mpsl.privacy.audit import AttackSettings
    from mpsl.privacy.audit import audit as run_audit
    from mpsl.privacy.plot import draw_audit

    console = Console(stderr=True, quiet=quiet or as_json)
    if config is None:
        options.setdefault("rounds", AUDIT_ROUNDS)
    job = load_job(config, options)
    settings = AttackSettings(
        nodes=tuple(split_items(attack_nodes, "--attack-nodes", "node1,node2"))
        if attack_nodes
        else None,
        round=attack_round - 1 if attack_round is not None else None,
        aux_fraction=aux_fraction,
        inversion_epochs=inversion_epochs,
        known_labels=known_labels,
        seed=attack_seed,
    )
    names = split_items(defences, "--defences", "none")
    out.mkdir(parents=True, exist_ok=True)
    report = run_audit(
        job.run,
        settings,
        names,
        strength=defence_strength,
        engine=engine,
        say=lambda line: console.print(line),
    )
    (out / "privacy.json").write_text(json.dumps(report, indent=1) + "\n")
    draw_audit(report, out / "privacy.png")
    if as_json:
        print_json(report)
        return
    console.print(table(report))
    console.print(f"report in {out}/ (privacy.json, privacy.png)")


def table(report: dict[str, Any]) -> Table:
    """One row per defence and node: what each attack achieved, beside chance and baseline."""
    t = Table("defence", "test acc.", "node", "attack", "result", "chance / baseline")
    for name, got in report["defences"].items():
        if "label_attack" in got:
            label = got["label_attack"]
            for attack, acc in got["label_attack_accuracy"].items():
                shown = "n/a (binary labels only)" if acc is None else f"{acc:.2%} accuracy"
                t.add_row(
                    name,
                    f"{got['test_accuracy']:.2%}",
                    label["node"],
                    f"labels: {attack}",
                    shown,
                    f"{label['chance']:.2%}",
                )
        for node, r in got["reconstruction"].items():
            t.add_row(
                name,
                f"{got['test_accuracy']:.2%}",
                node,
                "inputs: inversion MSE",
                f"{r['mse']:.4f}",
                f"{r['baseline_mse']:.4f}",
            )
            t.add_row(
                name,
                "",
                node,
                "inputs: classifier on them",
                f"{r['classifier_accuracy']:.2%} (true inputs {r['classifier_accuracy_true']:.2%})",
                f"{r['chance']:.2%}",
            )
    return t


def register(app: typer.Typer) -> None:
    """Add ``audit``, with an option per run-config field, to the app."""
    app.command("audit")(field_command(audit, FIELDS, exclude=NOT_TAKEN))
