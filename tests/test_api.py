"""The Python API: mpsl.train, and docs/api.md's example run as it is written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

import mpsl
from mpsl.errors import ConfigError, FormatError
from mpsl.store import load_trained

DOCS = Path(__file__).parents[1] / "docs" / "api.md"


def test_the_docs_example_runs_as_written(capsys):
    code = re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert code is not None
    exec(compile(code.group(1), str(DOCS), "exec"), {"__name__": "docs_api"})
    printed = capsys.readouterr().out
    assert "round 2: loss" in printed and "stem" in printed


def test_a_module_is_trained_in_place_and_matches_the_chain():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    before = [p.detach().clone() for p in model.parameters()]
    trained = mpsl.train(
        model, "digits", data_owners=2, hops=1, rounds=1, local_epochs=1, batches_per_epoch=4
    )
    assert trained.model is model
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(model(x), trained.chain(x))  # one set of weights
    assert len(trained.history) == 1 and 0.0 <= trained.accuracy <= 1.0


def test_a_zoo_model_on_tensors_writes_a_run_directory(tmp_path):
    x, y = torch.rand(100, 1, 8, 8), torch.randint(0, 10, (100,))
    trained = mpsl.train(
        "digits_cnn", (x, y), data_owners=2, cuts=[1, 3, 5], rounds=2, out=tmp_path / "run"
    )
    assert trained.out == tmp_path / "run"
    assert (trained.out / "summary.json").is_file()
    reloaded = load_trained(trained.out)
    for key, value in trained.chain.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key


def test_bad_arguments_are_named():
    x, y = torch.rand(40, 1, 8, 8), torch.randint(0, 10, (40,))
    with pytest.raises(FormatError, match="field 'rounds'"):
        mpsl.train("digits_cnn", (x, y), rounds=0)
    with pytest.raises(ConfigError, match="field 'data'"):
        mpsl.train("digits_cnn", [1, 2, 3])
    with pytest.raises(ConfigError, match="give one of cuts, hops and plan"):
        mpsl.train("digits_cnn", (x, y), hops=1, plan="plan.json")
    with pytest.raises(ConfigError, match="engine 'processes' builds the model"):
        mpsl.train(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), (x, y), engine="processes")
    with pytest.raises(ConfigError, match="field 'engine'"):
        mpsl.train("digits_cnn", (x, y), engine="gpu")
