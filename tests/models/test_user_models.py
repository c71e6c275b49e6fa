"""Model specs: FILE.py:FUNCTION and PACKAGE.MODULE:FUNCTION through build_model, and chain_of."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from mpsl.errors import ModelError
from mpsl.models import LayerChain, build_model, chain_of, is_spec

MODELS = Path(__file__).parent / "user_models.py"


def spec(function: str) -> str:
    return f"{MODELS}:{function}"


def test_a_file_spec_builds_a_chain_named_by_the_spec():
    chain = build_model(spec("resnet"), 7, (3, 8, 8), seed=0)
    assert isinstance(chain, LayerChain) and chain.model_name == spec("resnet")
    assert chain(torch.zeros(2, 3, 8, 8)).shape == (2, 7)  # num_classes reached the function
    assert is_spec(spec("resnet")) and not is_spec("resnet18")


def test_a_module_spec_builds_too():
    chain = build_model("mpsl.models.gpt:gpt_small", 50, (8,))
    assert chain.model_name == "mpsl.models.gpt:gpt_small" and chain.num_layers == 7
    traced = build_model("user_models:functional", 10, (1, 8, 8))  # tests/models is importable
    assert traced.layer_names()[0] == "conv"


def test_the_seed_fixes_the_weights():
    a, b, c = (build_model(spec("transformer"), seed=s) for s in (3, 3, 4))
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not torch.equal(a.state_dict()["head.head.weight"], c.state_dict()["head.head.weight"])


def test_the_input_shape_comes_from_the_run_the_function_or_the_chain():
    assert build_model(spec("functional")).input_shape == (1, 8, 8)  # its default
    assert build_model(spec("resnet"), input_shape=(3, 6, 6)).input_shape == (3, 6, 6)
    assert build_model(spec("declared")).input_shape == (1, 8, 8)  # chain_of declared it
    assert build_model(spec("sequential"), input_shape=(1, 8, 8)).input_shape == (1, 8, 8)
    with pytest.raises(ModelError, match=r"the input shape of model '.*:sequential' is unknown"):
        build_model(spec("sequential"))


def test_a_sequential_is_a_chain_as_it_is():
    chain = build_model(spec("sequential"), 10, (1, 8, 8))
    assert chain.layer_names() == ["0", "1", "2", "3"]
    assert list(chain.source_state_dict()) == ["1.weight", "1.bias", "3.weight", "3.bias"]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("missing.py:build", r"model 'missing.py:build': no file missing.py \(looked for .*\)"),
        (spec("nope"), r"user_models.py has no function 'nope'; it defines: .*resnet"),
        (spec("NOT_CALLABLE"), r"user_models.py has a non-callable 'NOT_CALLABLE'"),
        (spec("broken"), r"broken\(num_classes=10\) raised ValueError: no such width"),
        (spec("not_a_module"), r"not_a_module\(\) returned int; expected a torch.nn.Module"),
        ("model.py:", r"model 'model.py:' is neither a zoo model nor FILE.py:FUNCTION"),
        ("no_such_pkg.models:build", r"no module named 'no_such_pkg'"),
        ("resnet19", r"unknown model 'resnet19'; choose one of: .*, or a model of your own"),
        (spec("fixed_classes"), r"outputs shape \(3,\) per sample, but the data has 10 classes"),
        (spec("two_inputs"), r"Pair.forward takes 2 inputs \(x, y\)"),
    ],
)
def test_bad_specs_are_named(model, message):
    with pytest.raises(ModelError, match=message) as info:
        build_model(model, 10)
    if ":" in model:
        assert f"'{model}'" in str(info.value) or model in str(info.value)


def test_an_untraceable_model_names_the_spec_the_line_and_the_fallback():
    with pytest.raises(ModelError) as info:
        build_model(spec("untraceable"))
    message = str(info.value)
    assert message.startswith(f"cannot trace {spec('untraceable')} in DataDependent.forward")
    assert "user_models.py:" in message and "`if x.sum() > 0:`" in message
    assert "chain_of" in message


def test_a_model_file_may_import_its_neighbours(tmp_path):
    (tmp_path / "blocks.py").write_text(
        "from torch import nn\n\ndef head(n):\n    return nn.Linear(4, n)\n"
    )
    (tmp_path / "net.py").write_text(
        "from torch import nn\nfrom blocks import head\n\n"
        "def build(num_classes):\n    return nn.Sequential(nn.ReLU(), head(num_classes))\n"
    )
    chain = build_model(f"{tmp_path / 'net.py'}:build", 3, (4,))
    assert chain.num_layers == 2


def test_a_file_that_fails_to_run_is_named(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("import torch\n1 / 0\n")
    with pytest.raises(ModelError, match=r"running .*bad.py failed: ZeroDivisionError"):
        build_model(f"{path}:build", 3, (4,))


def test_chain_of_declares_layers_by_hand():
    chain = chain_of({"embed": nn.Embedding(10, 4), "out": nn.Linear(4, 10)}, input_shape=(5,))
    assert chain.layer_names() == ["embed", "out"] and chain.input_dtype == torch.long
    assert chain(torch.zeros(2, 5, dtype=torch.long)).shape == (2, 5, 10)


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([], "needs at least one"),
        ([("a.b", nn.ReLU())], r"layer 1 needs a unique name without dots; got 'a.b'"),
        ([("a", nn.ReLU()), ("a", nn.ReLU())], r"layer 2 needs a unique name"),
        ([("f", torch.flatten)], r"layer 1 \('f'\) must be a torch.nn.Module; got"),
        ([nn.ReLU()], r"layer 1 must be a \(name, module\) pair"),
    ],
)
def test_chain_of_refuses_what_is_not_a_layer(layers, message):
    with pytest.raises(ModelError, match=message):
        chain_of(layers)
