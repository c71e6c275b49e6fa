"""A non-finite training loss stops the run; summary.json never holds a bare NaN or Infinity."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import threading

import pytest
import torch

from cli_run import run
from mpsl.data.base import Labeled
from mpsl.data.synthetic import load_synthetic
from mpsl.errors import RuntimeFailure
from mpsl.report.summary import finite_or_null, write_run
from mpsl.runtime.config import RunConfig
from mpsl.runtime.engine import InProcessEngine

DATA = load_synthetic((1, 8, 8), 10, train_size=48, test_size=8, seed=0)
ADVICE = "not a finite number: training diverged; lower the learning rate (lr, --lr)"
ROLES = {"owner1", "owner2", "node1", "node2", "aggregator"}


def _config(**kw) -> RunConfig:
    return RunConfig(
        **{"dataset": "synthetic", "rounds": 2, "data_owners": 2, "batch_size": 8} | kw
    )


@pytest.mark.parametrize("scheduling", ["cooperative", "threads"])
def test_a_nan_loss_stops_the_run_naming_data_owner_round_and_batch(scheduling):
    x = DATA.train.x.clone()
    x[:] = float("nan")
    poisoned = dataclasses.replace(DATA, train=Labeled(x, DATA.train.y))
    engine = InProcessEngine(_config(), dataset=poisoned, scheduling=scheduling)
    with pytest.raises(RuntimeFailure) as err:
        engine.run()
    # the first data owner to fail: either one, when every role has a thread
    text = str(err.value)
    found = re.search(
        r"RuntimeFailure: owner([12]) \(data owner ([01])\), round 0, batch 0: ", text
    )
    assert found and int(found[1]) == int(found[2]) + 1
    assert f"the training loss is nan, {ADVICE}" in text
    if engine.scheduler is not None:  # every role ends, none waits for a message
        assert engine.scheduler.finish() == []
    else:
        assert not [t.name for t in threading.enumerate() if t.name in ROLES and t.is_alive()]


def test_a_diverging_learning_rate_stops_the_run_at_the_first_bad_batch():
    with pytest.raises(RuntimeFailure) as err:
        InProcessEngine(_config(lr=1e10), dataset=DATA).run()
    found = str(err.value).split("RuntimeFailure: ", 1)[1]
    owner, rest = found.split(" (data owner ", 1)
    assert owner in ("owner1", "owner2") and ", round 0, batch " in rest
    assert rest.split(", batch ", 1)[1].split(":", 1)[0].isdigit()
    assert f"the training loss is nan, {ADVICE}" in rest or f"is inf, {ADVICE}" in rest


def test_the_cli_reports_the_diverged_run(tmp_path, monkeypatch, capsys):
    args = ["run", "--dataset", "synthetic", "--data-owners", "1", "--rounds", "1", "--quiet"]
    code, _, err = run([*args, "--lr", "1e10", "--out", str(tmp_path / "o")], monkeypatch, capsys)
    text = " ".join(err.split())
    assert code == 2 and text.startswith("error: data owner 0, round 0: RuntimeFailure: ")
    assert ADVICE in text and "owner1 (data owner 0), round 0, batch " in text
    assert not (tmp_path / "o" / "summary.json").exists()


def _strict_json(text: str) -> object:
    def refuse(constant: str) -> None:
        raise AssertionError(f"bare {constant} in summary.json")

    return json.loads(text, parse_constant=refuse)


def test_summary_json_writes_non_finite_numbers_as_null(tmp_path):
    result = InProcessEngine(_config(rounds=1), dataset=DATA, evaluate=False).run()
    assert math.isnan(result.rounds[0].test_loss)  # evaluation off
    result.extra["stragglers"] = {"slowdown": [1.5, float("inf"), -float("inf")]}
    summary = _strict_json((write_run(result, tmp_path) / "summary.json").read_text())
    assert isinstance(summary, dict)
    first = summary["rounds"][0]
    assert first["test_loss"] is None and first["accuracy"] is None
    assert summary["final_accuracy"] is None and math.isfinite(first["loss"])
    assert summary["stragglers"] == {"slowdown": [1.5, None, None]}


def test_finite_or_null_keeps_every_other_value():
    value = {"a": (1, 2.5, float("nan")), "b": {"c": [True, None, "x", -float("inf")]}}
    assert finite_or_null(value) == {"a": [1, 2.5, None], "b": {"c": [True, None, "x", None]}}
    assert finite_or_null(torch.tensor(1.0).item()) == 1.0
