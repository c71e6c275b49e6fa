"""Silencing what native libraries print to a file descriptor (HiGHS, torch's profiler)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def silenced(fd: int) -> Iterator[None]:
    """Send file descriptor ``fd`` (1 or 2) to /dev/null while the block runs.

    Native code writes to the descriptor directly, past Python's sys.stdout/sys.stderr, so
    redirecting the Python objects is not enough.
    """
    (sys.stdout if fd == 1 else sys.stderr).flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
