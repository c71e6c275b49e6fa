"""SIGINT and SIGTERM as an exception, so that a deployment process stops cleanly when told to.

A process of a deployment (the coordinator, a member, the launcher of ``mpsl run --engine
processes``) holds sockets, peers that wait for it and, for the launcher, child processes and a
directory of secret keys. Python's default SIGTERM ends the process on the spot and leaves all of
them behind. Within ``interruptible()``, SIGINT and SIGTERM raise ``Interrupted`` in the main
thread instead, and the ``except`` and ``finally`` blocks on the way out tell the peers and
release everything. Only the first signal raises: later ones arrive while the process is already
stopping, and are ignored. Code that must not be cut in the middle (starting a child process and
noting it, cleaning up) runs within ``deferred()``: a signal that arrives there, whoever handles
signals outside it (``interruptible``, Python's Ctrl-C, another handler that raises), is raised
when the block ends.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM: the process is to stop.

    A KeyboardInterrupt, so that no ``except Exception`` on the way out swallows it, and code that
    handles Ctrl-C handles SIGTERM alike.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


class _State:
    """Where the main thread stands (signal handlers and ``deferred`` run only there)."""

    active = False  # within ``interruptible()``
    raised = False  # Interrupted was raised: the process is stopping
    pending: int | None = None  # a signal that came within ``deferred()``
    depth = 0  # nested ``deferred()`` blocks


_state = _State()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _stopping(signum: int) -> bool:
    """True (and a warning) when the process already stops: the signal is ignored."""
    if _state.raised or _state.pending is not None:
        log.warning("%s: already stopping", signal.Signals(signum).name)
        return True
    return False


def _raise(signum: int, frame: FrameType | None) -> None:
    if not _stopping(signum):
        _state.raised = True
        raise Interrupted(signum)


def _hold(signum: int, frame: FrameType | None) -> None:
    if not _stopping(signum):
        _state.pending = signum


def _install(handler: Callable[[int, FrameType | None], None]) -> dict[signal.Signals, Any] | None:
    """Set ``handler`` for SIGINT and SIGTERM; the previous handlers (None: cannot restore)."""
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    if any(h is None for h in previous.values()):  # set outside Python: leave them be
        return None
    for s in SIGNALS:
        signal.signal(s, handler)
    return previous


def _restore(previous: dict[signal.Signals, Any] | None) -> None:
    for s, handler in (previous or {}).items():
        signal.signal(s, handler)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within: SIGINT and SIGTERM raise ``Interrupted`` (once) in the main thread."""
    if not _main_thread():  # only the main thread may set signal handlers
        yield
        return
    _state.active, _state.raised, _state.pending = True, False, None
    previous = _install(_raise)
    try:
        yield
    finally:
        _restore(previous)
        _state.active, _state.raised, _state.pending = False, False, None


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within: SIGINT and SIGTERM wait, whoever handles them outside, and raise ``Interrupted``
    when the block ends (if it ends without an error of its own)."""
    if not _main_thread():
        yield
        return
    _state.depth += 1
    previous = None
    if _state.depth == 1:
        if not _state.active:  # on its own, a block knows of no earlier signal
            _state.raised = False
        previous = _install(_hold)
    try:
        yield
    except BaseException:
        if _state.depth == 1:  # the block's own error ends it: a signal held meanwhile is moot
            _state.pending = None
        raise
    finally:
        _state.depth -= 1
        if _state.depth == 0:
            _restore(previous)
    if not _state.depth and _state.pending is not None:
        signum, _state.pending = _state.pending, None
        _state.raised = True
        raise Interrupted(signum)
