"""The ``mpsl`` command: thin; every subcommand parses its flags and calls the library."""

from __future__ import annotations

import importlib
import logging
import sys

import typer

from mpsl.errors import MpslError

app = typer.Typer(
    name="mpsl",
    help="Multihop parallel split learning: train, profile, estimate, plan and schedule.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Multihop parallel split learning: train, profile, estimate, plan and schedule."""


# One module per command family; each exposes register(app).
COMMANDS = (
    "models",
    "run",
    "evaluate",
    "emulate",
    "profile",
    "estimate",
    "plan",
    "schedule",
    "deploy",
    "audit",
)
for _name in COMMANDS:
    importlib.import_module(f"mpsl.cli.{_name}").register(app)


def main() -> None:
    """Entry point: run the app, turning MpslError into a clear message and exit code 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except MpslError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
