"""Tracing a module into a chain: where the cuts go, what the layers are called, what they share."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load, save
from torch import nn
from user_models import Functional, ResidualCNN, TinyGPT

from mpsl.errors import ModelError
from mpsl.models import trace_chain
from mpsl.split import split_model


def _equal_outputs(model: nn.Module, chain: nn.Module, x: torch.Tensor) -> bool:
    model.eval(), chain.eval()
    with torch.no_grad():
        return torch.equal(model(x), chain(x))


def test_a_residual_block_is_one_layer_named_by_its_path():
    chain = trace_chain(ResidualCNN(10), "resnet", (3, 8, 8))
    # bn and its in-place ReLU stay together: the ReLU changes bn's output, so no cut between
    assert chain.layer_names() == [
        "stem",
        "bn",
        "layer1_0",
        "layer1_1",
        "adaptive_avg_pool2d",
        "flatten",
        "fc",
    ]


def test_attention_and_mlp_halves_of_a_block_are_layers():
    chain = trace_chain(TinyGPT(32, 8), "gpt", (8,))
    assert chain.layer_names() == [
        "tokens",
        "blocks_0_attn",
        "blocks_0_mlp",
        "blocks_1_attn",
        "blocks_1_mlp",
        "norm",
        "head",
    ]
    assert chain.input_dtype == torch.long  # the input feeds an embedding


def test_functional_forward_is_cut_between_functions():
    chain = trace_chain(Functional(10, 1), "functional", (1, 8, 8))
    # the two branches read the same x, so they are one layer
    assert chain.layer_names() == ["conv", "relu", "flatten", "left_right", "mul", "out"]


@pytest.mark.parametrize(
    ("model", "shape"),
    [(ResidualCNN(10), (3, 8, 8)), (TinyGPT(32, 8), (8,)), (Functional(10, 1), (1, 8, 8))],
)
def test_the_chain_and_its_parts_compute_the_model(model, shape):
    chain = trace_chain(model, "m", shape)
    x = torch.randint(0, 32, (3, *shape)) if len(shape) == 1 else torch.randn(3, *shape)
    assert _equal_outputs(model, chain, x)
    y = x
    for part in split_model(chain, list(range(1, chain.num_layers))):
        y = part(y)
    assert torch.equal(y, chain(x))


def test_the_chain_holds_the_models_own_tensors():
    model = ResidualCNN(10)
    chain = trace_chain(model, "resnet", (3, 8, 8))
    mine = chain.source_state_dict(chain.state_dict(keep_vars=True))
    theirs = model.state_dict(keep_vars=True)
    assert mine.keys() == theirs.keys()
    assert all(mine[k] is theirs[k] for k in theirs)  # the same tensors, not copies
    assert chain.state_dict()["layer1_0.layer1.0.bn1.running_mean"] is not None


def test_training_the_chain_trains_the_model_and_updates_batchnorm_statistics():
    model = ResidualCNN(10)
    chain = trace_chain(model, "resnet", (3, 8, 8)).train()
    before = model.bn.running_mean.clone()
    loss = chain(torch.randn(4, 3, 8, 8)).sum()
    loss.backward()
    assert not torch.equal(model.bn.running_mean, before)
    assert model.fc.weight.grad is not None


def test_a_chain_saves_with_safetensors_even_with_a_buffer_read_by_several_layers():
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("scale", torch.tensor(2.0))
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.a(x) * self.scale) * self.scale

    model = Shared()
    chain = trace_chain(model, "shared", (4,))
    assert chain.num_layers >= 3
    state = chain.state_dict()
    assert set(chain.source_state_dict()) == set(model.state_dict())  # the buffer once
    assert load(save({k: v.contiguous() for k, v in state.items()})).keys() == state.keys()


def test_no_cut_where_a_shape_or_two_values_cross():
    class Reshapes(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 6)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n = x.shape[0]  # an int crosses until the view
            y = self.b(self.a(x))
            return y.view(n, 2, 3)

    chain = trace_chain(Reshapes(), "reshapes", (4,))
    assert chain.num_layers == 1


def test_no_cut_before_an_in_place_change_of_the_crossing_tensor():
    class InPlace(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.a(x)
            y.mul_(2)  # the part after a cut here would get a leaf that requires grad
            return self.b(F.relu(y, inplace=True))

    chain = trace_chain(InPlace(), "inplace", (4,))
    assert chain.layer_names() == ["a", "b"]
    chain(torch.randn(2, 4).requires_grad_()).sum().backward()
    x = torch.randn(2, 4)
    chain[1](chain[0](x).detach().requires_grad_()).sum().backward()  # as a compute node would


def test_an_untraceable_submodule_is_kept_whole():
    class Gate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) if x.sum() > 0 else -self.fc(x)

    class Gated(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.gate, self.b = nn.Linear(4, 4), Gate(), nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.gate(self.a(x)))

    model = Gated()
    chain = trace_chain(model, "gated", (4,))
    assert chain.layer_names() == ["a", "gate", "b"]
    x = torch.randn(5, 4)
    assert _equal_outputs(model, chain, x) and _equal_outputs(model, chain, -x - 10)


def test_an_untraceable_forward_names_operation_module_and_fallback():
    class DataDependent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.mean() > 0:
                x = x * 2
            return self.fc(x)

    with pytest.raises(ModelError) as info:
        trace_chain(DataDependent(), "my.py:build", (4,))
    message = str(info.value)
    assert "cannot trace my.py:build in DataDependent.forward" in message
    assert "test_trace.py:" in message and "`if x.mean() > 0:`" in message
    assert "control flow" in message and "mpsl.models.chain_of" in message


def test_a_model_of_two_inputs_is_refused():
    class Pair(nn.Module):
        def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return x * mask

    with pytest.raises(ModelError, match=r"Pair.forward takes 2 inputs \(x, mask\); MP-SL"):
        trace_chain(Pair(), "pair", (4,))


def test_optional_arguments_keep_their_defaults():
    class Optional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
            if mask is not None:
                x = x * mask
            return self.fc(x)

    assert trace_chain(Optional(), "optional", (4,)).layer_names() == ["fc"]


def test_a_model_returning_a_tuple_is_refused():
    class Both(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.fc(x), x

    with pytest.raises(ModelError, match="forward returns a tuple of 2 values; MP-SL splits"):
        trace_chain(Both(), "both", (4,))


def test_weights_tied_across_layers_are_refused():
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed, self.mid = nn.Embedding(10, 4), nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.linear(self.mid(self.embed(x)), self.embed.weight)

    with pytest.raises(ModelError, match=r"'embed\.weight' is used by layers embed and linear"):
        trace_chain(Tied(), "tied", (3,))


def test_a_wrong_input_shape_is_named():
    with pytest.raises(ModelError, match=r"fails on an example batch of shape 2x1x8x8"):
        trace_chain(ResidualCNN(10), "resnet", (1, 8, 8))


def test_a_forward_that_depends_on_training_mode_is_warned_about(caplog):
    class Dropping(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(F.dropout(x, 0.5, training=self.training))

    with caplog.at_level(logging.WARNING, logger="mpsl.models.trace"):
        trace_chain(Dropping(), "dropping", (4,))
    assert "depends on self.training" in caplog.text


def test_a_torch_module_is_one_layer():
    chain = trace_chain(nn.Linear(4, 3), "linear", (4,))
    assert chain.layer_names() == ["linear"]
