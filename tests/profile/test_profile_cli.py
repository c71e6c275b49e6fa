"""``mpsl profile`` (measure) and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_run import run
from mpsl.profile.format import Profile

QUICK = ["--model", "digits_cnn", "--repeats", "1", "--warmup", "0"]


def test_measure_writes_a_profile_and_merges_a_second_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "digits.json"
    args = ["profile", *QUICK, "--batch-size", "4", "--out", str(out)]
    code, text, _ = run([*args, "--device-name", "a"], monkeypatch, capsys)
    assert code == 0 and f"wrote {out}" in text and "conv1" in text
    assert Profile.load(out).devices() == ["a"]
    code, text, _ = run([*args, "--device-name", "b", "--merge"], monkeypatch, capsys)
    assert code == 0 and "(merged)" in text
    merged = Profile.load(out)
    assert merged.devices() == ["a", "b"] and merged.num_layers == 6


def test_task_overhead_flag_stores_the_measured_overhead_for_the_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "digits.json"
    args = ["profile", *QUICK, "--batch-size", "4", "--out", str(out), "--device-name", "a"]
    code, _, err = run([*args, "--threads", "1", "--task-overhead"], monkeypatch, capsys)
    assert code == 0 and "runtime overhead per task on a:" in err
    profile = Profile.load(out)
    stored = (profile.task_overhead_ms or {})["a"]
    assert f"{stored:.3f} ms" in err
    assert profile.task_overhead("a") == stored >= 0
    assert Profile.load(out).task_overhead("b") == 0.0
    code, _, err = run(args, monkeypatch, capsys)  # without the flag: nothing measured
    assert code == 0 and "overhead" not in err and Profile.load(out).task_overhead_ms is None


def test_merge_refuses_another_batch_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "digits.json")
    assert run(["profile", *QUICK, "--batch-size", "4", "--out", out], monkeypatch, capsys)[0] == 0
    code, _, err = run(
        ["profile", *QUICK, "--batch-size", "2", "--out", out, "--merge"], monkeypatch, capsys
    )
    assert code == 2 and "same batch size" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["profile", "--batch-size", "4", "--out", "x.json"], "field '--model'"),
        (["profile", "--model", "digits_cnn", "--out", "x.json"], "field '--batch-size'"),
        (["profile", "--model", "digits_cnn", "--batch-size", "4"], "field '--out'"),
        (
            ["profile", "--model", "alexnet", "--batch-size", "4", "--out", "x.json"],
            "unknown model 'alexnet'",
        ),
        (
            ["profile", *QUICK, "--batch-size", "0", "--out", "x.json"],
            "batch size must be positive",
        ),
        (
            ["profile", *QUICK, "--batch-size", "4", "--out", "x.json", "--input-shape", "3,x"],
            "field '--input-shape'",
        ),
    ],
)
def test_measure_errors(
    args: list[str],
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(args, monkeypatch, capsys)
    assert code == 2 and expected in err
    assert not (tmp_path / "x.json").exists()
