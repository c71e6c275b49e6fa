"""``mpsl estimate``: (being written)."""

import typer


def register(app: typer.Typer) -> None:
    """Add ``estimate`` to the app (nothing yet)."""
