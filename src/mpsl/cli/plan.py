"""``mpsl plan``: (being written)."""

import typer


def register(app: typer.Typer) -> None:
    """Add ``plan`` to the app (nothing yet)."""
