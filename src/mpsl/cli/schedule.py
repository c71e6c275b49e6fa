"""``mpsl schedule``: (being written)."""

import typer


def register(app: typer.Typer) -> None:
    """Add ``schedule`` to the app (nothing yet)."""
