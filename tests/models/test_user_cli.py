"""Models of one's own through the command line: mpsl models, mpsl run, mpsl profile."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from cli_run import run
from mpsl.models import build_model
from mpsl.models.user import load_function
from mpsl.store.model_file import load_trained

MODELS = Path(__file__).parent / "user_models.py"


def test_models_shows_a_traced_model_like_a_zoo_model(monkeypatch, capsys):
    code, out, _ = run(["models", f"{MODELS}:resnet", "--json"], monkeypatch, capsys)
    assert code == 0
    shown = json.loads(out)
    assert shown["name"] == f"{MODELS}:resnet" and shown["input_shape"] == [3, 8, 8]
    assert [layer["name"] for layer in shown["layers"]][:4] == [
        "stem",
        "bn",
        "layer1_0",
        "layer1_1",
    ]
    assert shown["layers"][2] == {
        "index": 3,
        "name": "layer1_0",
        "output_shape": [8, 8, 8],
        "params": 1184,
    }
    code, out, _ = run(["models", f"{MODELS}:transformer"], monkeypatch, capsys)
    assert code == 0 and "blocks_0_attn" in out and "7 layers" in out


def test_models_needs_an_input_shape_when_nothing_declares_one(monkeypatch, capsys):
    code, _, err = run(["models", f"{MODELS}:sequential"], monkeypatch, capsys)
    assert code == 2 and "input shape of model" in err and "--input-shape" in err
    code, out, _ = run(
        ["models", f"{MODELS}:sequential", "--input-shape", "1,8,8"], monkeypatch, capsys
    )
    assert code == 0 and "4 layers" in out


def test_an_untraceable_model_is_a_clean_error(monkeypatch, capsys):
    code, _, err = run(["models", f"{MODELS}:untraceable"], monkeypatch, capsys)
    assert code == 2 and "error: cannot trace" in " ".join(err.split())


def test_run_trains_a_model_file_and_keeps_it_loadable(tmp_path, monkeypatch, capsys):
    model = f"{MODELS}:functional"
    args = ["run", "--model", model, "--dataset", "synthetic", "--input-shape", "1,8,8"]
    args += ["--rounds", "1", "--local-epochs", "1", "--batches-per-epoch", "2"]
    args += ["--data-owners", "2", "--cuts", "1,3,5", "--out", str(tmp_path / "run")]
    code, _, err = run(args, monkeypatch, capsys)
    assert code == 0, err
    trained = load_trained(tmp_path / "run")
    assert trained.model_name == model and trained.layer_names()[:2] == ["conv", "relu"]
    own = load_function(model)(num_classes=10, input_shape=(1, 8, 8))
    own.load_state_dict(trained.source_state_dict())  # the trained weights, in the user's module
    start = build_model(model, 10, (1, 8, 8), seed=0)
    assert not torch.equal(
        trained.state_dict()["out.out.weight"], start.state_dict()["out.out.weight"]
    )


def test_profile_measures_a_model_file(tmp_path, monkeypatch, capsys):
    out = tmp_path / "profile.json"
    args = ["profile", "--model", f"{MODELS}:transformer", "--batch-size", "2"]
    args += ["--out", str(out), "--repeats", "1", "--warmup", "0"]
    code, _, err = run(args, monkeypatch, capsys)
    assert code == 0, err
    profile = json.loads(out.read_text())
    assert profile["model"] == f"{MODELS}:transformer"
    assert [layer["name"] for layer in profile["layers"]][1] == "blocks_0_attn"
