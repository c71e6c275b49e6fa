"""``mpsl profile``: (being written)."""

import typer


def register(app: typer.Typer) -> None:
    """Add ``profile`` to the app (nothing yet)."""
