"""``mpsl profile import``: the shipped profiles are a fresh import of the reference CSVs."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import pytest

from mpsl.cli import main
from mpsl.profile.reference import import_all

REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "profiles"
needs_reference = pytest.mark.skipif(
    not REFERENCE.is_dir(), reason=f"reference CSVs not found at {REFERENCE}"
)


def shipped() -> dict[str, str]:
    folder = resources.files("mpsl") / "profiles"
    return {p.name: p.read_text() for p in folder.iterdir() if p.name.endswith(".json")}


@needs_reference
def test_shipped_profiles_equal_a_fresh_import(tmp_path: Path) -> None:
    fresh = {}
    for sub in ("mpsl", "workflow"):
        for key, profile in import_all(REFERENCE / sub).items():
            profile.save(tmp_path / f"{sub}_{key}.json")
            fresh[f"{sub}_{key}.json"] = (tmp_path / f"{sub}_{key}.json").read_text()
    assert fresh == shipped()


@needs_reference
def test_import_command_writes_the_shipped_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        sys,
        "argv",
        ["mpsl", "profile", "import", "--from", str(REFERENCE), "--out", str(tmp_path / "out")],
    )
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code in (0, None)
    written = {p.name: p.read_text() for p in (tmp_path / "out").iterdir()}
    assert written == shipped()
    assert "wrote" in capsys.readouterr().out


@needs_reference
def test_import_of_one_folder_names_files_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "mpsl",
            "profile",
            "import",
            "--from",
            str(REFERENCE / "workflow"),
            "--out",
            str(tmp_path),
        ],
    )
    with pytest.raises(SystemExit):
        main()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "workflow_resnet101_CIFAR.json",
        "workflow_vgg19_CIFAR.json",
    ]


def test_import_of_a_folder_without_tables_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["mpsl", "profile", "import", "--from", str(tmp_path)])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 2
    assert "no <model>_<dataset>_memory.csv tables" in capsys.readouterr().err
