"""SIGINT and SIGTERM as an exception, so that a deployment process stops cleanly when told to.

A process of a deployment (the coordinator, a member, the launcher of ``mpsl run --engine
processes``) holds sockets, peers that wait for it and, for the launcher, child processes and a
directory of secret keys. Python's default SIGTERM ends the process on the spot and leaves all of
them behind. Within ``interruptible()``, SIGINT and SIGTERM raise ``Interrupted`` in the main
thread instead, and the ``except`` and ``finally`` blocks on the way out tell the peers and
release everything. Only the first signal raises: later ones arrive while the process is already
stopping, and are ignored. Code that must not be cut in the middle (starting a child process and
noting it, cleaning up) runs within ``deferred()``: a signal that arrives there is raised when the
block ends.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """SIGINT or SIGTERM: the process is to stop.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` on the way out
    swallows it.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


class _State:
    """Where the main thread stands (signal handlers and ``deferred`` run only there)."""

    raised = False  # Interrupted was raised: the process is stopping
    pending: int | None = None  # a signal that came within ``deferred()``
    holds = 0  # nested ``deferred()`` blocks


_state = _State()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _handler(signum: int, frame: FrameType | None) -> None:
    if _state.raised or _state.pending is not None:
        log.warning("%s: already stopping", signal.Signals(signum).name)
        return
    if _state.holds:
        _state.pending = signum
        return
    _state.raised = True
    raise Interrupted(signum)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within: SIGINT and SIGTERM raise ``Interrupted`` (once) in the main thread."""
    if not _main_thread():  # only the main thread may set signal handlers
        yield
        return
    _state.raised, _state.pending, _state.holds = False, None, 0
    previous = {s: signal.signal(s, _handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within: a signal waits, and is raised when the block ends (if it ends without an error)."""
    if not _main_thread():
        yield
        return
    _state.holds += 1
    try:
        yield
    finally:
        _state.holds -= 1
    if not _state.holds and _state.pending is not None and not _state.raised:
        signum, _state.pending = _state.pending, None
        _state.raised = True
        raise Interrupted(signum)
