"""Checkpoints, resume, the trained model as a file, and the run directory's checks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cli_run import run
from mpsl.runtime.coordinator import Coordinator
from mpsl.store import load_trained
from mpsl.store.rundir import RunDir

SMALL = ["--dataset", "digits", "--data-owners", "2", "--local-epochs", "1"]
SMALL += ["--batches-per-epoch", "3", "--batch-size", "16", "--seed", "5"]


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_trained(out).state_dict()


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("engine", ["cooperative", "threads"])
def test_an_interrupted_run_resumed_ends_with_the_weights_of_an_uninterrupted_one(
    engine: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    common = [*SMALL, "--rounds", "3", "--engine", engine, "--quiet"]
    code, _, err = run(["run", *common, "--out", str(whole)], monkeypatch, capsys)
    assert code == 0, err

    original = Coordinator.run_round

    def crash_in_round_3(self: Coordinator, r: int, progress=None):
        if r == 2:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the third round
        return original(self, r, progress)

    monkeypatch.setattr(Coordinator, "run_round", crash_in_round_3)
    code, _, err = run(["run", *common, "--out", str(cut)], monkeypatch, capsys)
    assert code == 130 and "the run was interrupted by SIGINT" in err
    assert "2 completed round(s) are checkpointed" in err
    assert f"--resume {cut}" in err
    checkpoint = RunDir.open(cut).latest()
    assert checkpoint is not None and checkpoint.completed == 2
    assert not (cut / "model.safetensors").exists()  # the run did not end

    monkeypatch.setattr(Coordinator, "run_round", original)
    code, _, err = run(
        ["run", "--resume", str(cut), "--engine", engine, "--quiet"], monkeypatch, capsys
    )
    assert code == 0, err
    _same(_weights(whole), _weights(cut))
    rounds = json.loads((cut / "summary.json").read_text())["rounds"]
    assert [r["round"] for r in rounds] == [1, 2, 3]
    events = [json.loads(line) for line in (cut / "events.jsonl").read_text().splitlines()]
    assert {e["round"] for e in events} == {
        0,
        1,
        2,
    }  # each round's log once, the crashed one redone


def test_a_run_of_processes_resumes_from_its_checkpoint(tmp_path: Path, monkeypatch, capsys):
    """--engine processes checkpoints every round; resumed, it ends where one process ends."""
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    common = [*SMALL, "--rounds", "3", "--quiet"]
    code, _, err = run(["run", *common, "--out", str(whole)], monkeypatch, capsys)
    assert code == 0, err

    original = Coordinator.run_round

    def crash_in_round_3(self: Coordinator, r: int, progress=None):
        if r == 2:
            raise KeyboardInterrupt
        return original(self, r, progress)

    monkeypatch.setattr(Coordinator, "run_round", crash_in_round_3)
    code, _, err = run(
        ["run", *common, "--engine", "processes", "--out", str(cut)], monkeypatch, capsys
    )
    assert code == 130 and "every member process was stopped" in err, err
    assert f"continue with mpsl run --resume {cut}" in err
    monkeypatch.setattr(Coordinator, "run_round", original)
    code, _, err = run(["run", "--resume", str(cut), "--engine", "processes"], monkeypatch, capsys)
    assert code == 0, err
    assert f"resuming {cut} after round 2 of 3" in " ".join(err.split())
    want, got = _weights(whole), _weights(cut)
    assert want.keys() == got.keys()
    for k in want:  # processes and one process agree to float rounding (test_deploy.py)
        assert torch.allclose(want[k], got[k], atol=1e-5, rtol=0), k
    rounds = json.loads((cut / "summary.json").read_text())["rounds"]
    assert [r["round"] for r in rounds] == [1, 2, 3]


def test_a_killed_process_loses_only_the_round_in_progress(tmp_path: Path, monkeypatch, capsys):
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "mpsl", "run", *SMALL, "--rounds", "30", "--out", str(out)]
    proc = subprocess.Popen([*args, "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = out / "checkpoints" / "round-0001"
    deadline = time.monotonic() + 120
    while not first.is_dir() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    checkpoint = RunDir.open(out).latest()
    assert checkpoint is not None and checkpoint.completed >= 1
    # The checkpoint loads, and the run continues from it to the end.
    code, _, err = run(["run", "--resume", str(out), "--quiet"], monkeypatch, capsys)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert [r["round"] for r in summary["rounds"]] == list(range(1, 31))


def test_checkpoints_keep_the_last_three_and_write_atomically(tmp_path: Path, monkeypatch, capsys):
    out = tmp_path / "run"
    code, _, err = run(
        ["run", *SMALL, "--rounds", "5", "--out", str(out), "--quiet"], monkeypatch, capsys
    )
    assert code == 0, err
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["round-0003", "round-0004", "round-0005"]  # no temporary leftovers
    last = RunDir.open(out).latest()
    assert last is not None and last.completed == 5
    _same(last.weights(), _weights(out))  # the last checkpoint is the final model


def test_the_trained_model_is_a_plain_module_and_evaluate_scores_it(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    code, _, err = run(
        ["run", *SMALL, "--rounds", "2", "--out", str(out), "--quiet"], monkeypatch, capsys
    )
    assert code == 0, err
    model = load_trained(out)
    assert isinstance(model, torch.nn.Module) and not model.training
    assert model(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    code, stdout, err = run(["evaluate", str(out), "--json"], monkeypatch, capsys)
    assert code == 0, err
    report = json.loads(stdout)
    summary = json.loads((out / "summary.json").read_text())
    assert report["accuracy"] == pytest.approx(summary["final_accuracy"], abs=1e-12)
    code, stdout, err = run(
        ["evaluate", str(out), "--dataset", "synthetic", "--json"], monkeypatch, capsys
    )
    assert code == 0 and json.loads(stdout)["dataset"] == "synthetic", err
    (out / "model.safetensors").unlink()
    code, _, err = run(["evaluate", str(out)], monkeypatch, capsys)
    assert code == 2 and "no trained model" in err


def test_an_output_directory_is_checked_before_training(tmp_path: Path, monkeypatch, capsys):
    out = tmp_path / "run"
    args = ["run", *SMALL, "--rounds", "1", "--quiet"]
    assert run([*args, "--out", str(out)], monkeypatch, capsys)[0] == 0
    code, _, err = run([*args, "--out", str(out)], monkeypatch, capsys)
    assert code == 2 and "already holds a run" in err and "--overwrite" in err
    assert run([*args, "--out", str(out), "--overwrite"], monkeypatch, capsys)[0] == 0
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    code, _, err = run([*args, "--out", str(blocked / "sub")], monkeypatch, capsys)
    assert code == 2 and "cannot write to" in err
    untrained = tmp_path / "untrained"  # a run that stopped before its first round ended
    RunDir.create(untrained, RunDir.open(out).config())
    assert run([*args, "--out", str(untrained)], monkeypatch, capsys)[0] == 0
    code, _, err = run(["run", "--resume", str(tmp_path / "nothing")], monkeypatch, capsys)
    assert code == 2 and "holds no MP-SL run" in err
    code, _, err = run(["run", "--resume", str(out), "--rounds", "4"], monkeypatch, capsys)
    assert code == 2 and "its own config" in err


def test_the_coordinator_resumes_a_run_directory_with_its_own_config(tmp_path, monkeypatch, capsys):
    """mpsl coordinator --resume takes the run's config from its directory, nothing else."""
    code, _, err = run(
        ["coordinator", "--resume", str(tmp_path), "--rounds", "3"], monkeypatch, capsys
    )
    assert code == 2 and "give no other run option" in err
    code, _, err = run(["coordinator", "--resume", str(tmp_path)], monkeypatch, capsys)
    assert code == 2 and f"{tmp_path} holds no MP-SL run (no run.json)" in " ".join(err.split())


def test_a_heartbeat_timeout_of_zero_is_refused(tmp_path, monkeypatch, capsys):
    args = ["run", *SMALL, "--engine", "processes", "--heartbeat-timeout", "0"]
    code, _, err = run([*args, "--out", str(tmp_path / "x")], monkeypatch, capsys)
    assert code == 2 and "field 'heartbeat_timeout': must be seconds above 0, got 0" in err
