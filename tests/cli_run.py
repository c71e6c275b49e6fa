"""Running the ``mpsl`` command inside a test."""

import sys

import pytest

from mpsl.cli import main


def run(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """Run ``mpsl ARGS`` through main(); (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["mpsl", *args])
    monkeypatch.setenv("COLUMNS", "120")
    with pytest.raises(SystemExit) as done:
        main()
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err
