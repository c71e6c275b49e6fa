"""``mpsl run``: (being written)."""

import typer


def register(app: typer.Typer) -> None:
    """Add ``run`` to the app (nothing yet)."""
