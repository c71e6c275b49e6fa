"""``mpsl models``: list the zoo, or show one model's indivisible layers."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mpsl.cli.common import parse_ints, print_json
from mpsl.models import MODELS, build_model, describe_layers


def models(
    name: Annotated[
        str | None,
        typer.Argument(
            help="A model to describe layer by layer: a zoo name, or your own as "
            "FILE.py:FUNCTION or PACKAGE.MODULE:FUNCTION (docs/models.md)."
        ),
    ] = None,
    input_shape: Annotated[
        str | None, typer.Option(help="Input shape C,H,W (T for token models like gpt_small).")
    ] = None,
    num_classes: Annotated[int | None, typer.Option(help="Classes (vocabulary for gpt).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the zoo, or show NAME's layers (index, name, output shape, parameters); NAME may be
    a model of your own, traced into its layers."""
    console = Console()
    if name is None:
        rows = [
            {"name": s.name, "input_shape": list(s.input_shape), "summary": s.summary}
            for s in MODELS.values()
        ]
        if as_json:
            print_json(rows)
            return
        table = Table("model", "default input", "layers", "description")
        for s in MODELS.values():
            n = build_model(s.name).num_layers
            table.add_row(s.name, ",".join(map(str, s.input_shape)), str(n), s.summary)
        console.print(table)
        return
    shape = parse_ints(input_shape, "--input-shape") if input_shape is not None else None
    chain = build_model(name, num_classes=num_classes, input_shape=shape)
    layers = describe_layers(chain)
    if as_json:
        print_json(
            {
                "name": name,
                "input_shape": list(chain.input_shape),
                "layers": [
                    {
                        "index": i.index,
                        "name": i.name,
                        "output_shape": list(i.output_shape),
                        "params": i.params,
                    }
                    for i in layers
                ],
            }
        )
        return
    table = Table("#", "layer", "output shape", "params", title=f"{name}: {len(layers)} layers")
    for i in layers:
        table.add_row(str(i.index), i.name, "x".join(map(str, i.output_shape)), f"{i.params:,}")
    console.print(table)
    console.print(f"total parameters: {sum(i.params for i in layers):,}")


def register(app: typer.Typer) -> None:
    """Add ``models`` to the app."""
    app.command()(models)
