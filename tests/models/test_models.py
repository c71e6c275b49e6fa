"""The model zoo: layer counts, shapes, and that parts compose to the full model."""

from __future__ import annotations

import pytest
import torch

from mpsl.errors import CutError, ModelError
from mpsl.models import MODELS, build_model, describe_layers
from mpsl.split import check_cuts, even_cuts, part_ranges, split_model

# Small inputs keep the big models fast; vgg needs 32x32 (five halvings).
SHAPES = {"digits_cnn": (1, 8, 8), "lenet5": (1, 28, 28), "gpt_small": (16,)}


def _input(chain, batch=2):
    if chain.input_dtype == torch.long:
        return torch.randint(
            0, 256, (batch, *chain.input_shape), generator=torch.Generator().manual_seed(0)
        )
    return torch.randn((batch, *chain.input_shape), generator=torch.Generator().manual_seed(0))


def test_reference_layer_counts():
    assert build_model("vgg19").num_layers == 25
    assert build_model("resnet101_basic").num_layers == 37


def test_vgg19_layer_order_matches_reference_profiles():
    names = build_model("vgg19").layer_names()
    assert sum(n.startswith("conv") for n in names) == 16
    assert [i + 1 for i, n in enumerate(names) if n.startswith("pool")] == [3, 6, 11, 16, 21]
    assert names[21:] == ["avgpool", "fc1", "fc2", "fc3"]


def test_resnet101_basic_layering():
    names = build_model("resnet101_basic").layer_names()
    assert names[:2] == ["conv1", "pool"] and names[-2:] == ["avgpool", "fc"]
    assert all(n.startswith("block") for n in names[2:35])


@pytest.mark.parametrize("name", list(MODELS))
def test_parts_compose_to_full_model(name):
    chain = build_model(name, input_shape=SHAPES.get(name), seed=1).eval()
    x = _input(chain)
    with torch.no_grad():
        expected = chain(x)
        s = chain.num_layers
        for cuts in {(1, s - 1), (1, s // 2, s - 1), (2, 3, s - 2), tuple(range(1, s))}:
            if len(cuts) < 2 or len(set(cuts)) != len(cuts) or cuts[-1] >= s:
                continue
            y = x
            for part in split_model(chain, cuts):
                y = part(y)
            assert torch.equal(y, expected), f"{name} cuts {cuts}"


def test_describe_layers_shapes_and_params():
    infos = describe_layers(build_model("digits_cnn"))
    assert [i.index for i in infos] == list(range(1, 7))
    assert infos[-1].output_shape == (10,)
    assert infos[0].params == 1 * 32 * 9 + 32


def test_num_classes_and_input_shape():
    assert describe_layers(build_model("lenet5", num_classes=7, input_shape=(3, 32, 32)))[
        -1
    ].output_shape == (7,)
    assert build_model("gpt_small", num_classes=50, input_shape=(8,))(
        torch.zeros(2, 8, dtype=torch.long)
    ).shape == (2, 8, 50)


def test_seed_makes_weights_reproducible():
    a, b = build_model("lenet5", seed=3), build_model("lenet5", seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=False))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "alexnet"}, "unknown model 'alexnet'"),
        ({"name": "vgg19", "input_shape": (1, 28, 28)}, "needs height and width >= 32"),
        ({"name": "lenet5", "input_shape": (28, 28)}, "takes an input shape of 3 numbers"),
    ],
)
def test_bad_model_requests(kwargs, message):
    with pytest.raises(ModelError, match=message):
        build_model(**kwargs)


@pytest.mark.parametrize(
    ("cuts", "message"),
    [
        ([3], "at least 2 cuts"),
        ([0, 3], "outside"),
        ([2, 6], "outside"),
        ([3, 3], "increase strictly"),
        ([4, 2], "increase strictly"),
    ],
)
def test_bad_cut_lists(cuts, message):
    with pytest.raises(CutError, match=message):
        check_cuts(cuts, 6, "digits_cnn")


def test_part_ranges_and_even_cuts():
    assert part_ranges([1, 3, 5], 6) == [(1, 1), (2, 3), (4, 5), (6, 6)]
    assert even_cuts(25, 3) == (1, 9, 16, 24)
    with pytest.raises(CutError, match="at most 4 compute nodes"):
        even_cuts(6, 5)
