"""Writing files so that a reader never sees half of one: write a temporary file, then rename."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (a crash leaves the old file or the new one)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically."""
    write_bytes(path, text.encode())


def replace_dir(tmp: Path, final: Path) -> None:
    """Move the finished directory ``tmp`` to ``final`` (replacing an older one of that name)."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
