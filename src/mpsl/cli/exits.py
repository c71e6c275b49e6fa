"""How a command ends when SIGINT or SIGTERM stops it: what was stopped; exit code 128 + signal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer


@contextmanager
def exit_on_signals(who: str, after: str | Callable[[], str]) -> Iterator[None]:
    """Within: SIGINT and SIGTERM end the command with ``error: WHO was interrupted by SIG...;
    AFTER`` and exit code 128 + the signal (``after``: a text, or a callable asked at the end)."""
    import signal

    from mpsl.signals import Interrupted, interruptible

    try:
        with interruptible():
            yield
    except KeyboardInterrupt as exc:  # Interrupted, or Ctrl-C where handlers were set outside us
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        said = after() if callable(after) else after
        name = signal.Signals(signum).name
        typer.echo(f"error: {who} was interrupted by {name}; {said}", err=True)
        raise typer.Exit(128 + signum) from None
