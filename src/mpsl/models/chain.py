"""LayerChain: a model as an ordered list of indivisible layers, numbered from 1."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from mpsl.errors import ModelError

UNKNOWN_SHAPE: tuple[int, ...] = ()
"""A chain's input shape before anyone said it: ``build_model`` fills in the run's."""


class LayerChain(nn.Sequential):
    """An ``nn.Sequential`` whose children are the model's indivisible layers, in order.

    Layer ``i`` (1-based, as in profiles and cut lists) is ``chain[i - 1]``.
    """

    def __init__(
        self,
        name: str,
        layers: list[tuple[str, nn.Module]],
        input_shape: tuple[int, ...],
        input_dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(OrderedDict(layers))
        self.model_name = name
        self.input_shape = tuple(input_shape)
        self.input_dtype = input_dtype
        # chain state_dict key -> key in the model it was traced from (absent: the same key)
        self.source_keys: dict[str, str] = {}

    @property
    def num_layers(self) -> int:
        """Number of indivisible layers S."""
        return len(self)

    def layer_names(self) -> list[str]:
        """Names of the layers, in order."""
        return [name for name, _ in self.named_children()]

    def example_input(self, batch_size: int = 2) -> torch.Tensor:
        """A zero input batch of the model's input shape and dtype."""
        return torch.zeros((batch_size, *self.input_shape), dtype=self.input_dtype)

    def source_state_dict(
        self, state: Mapping[str, torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """``state`` (default: this chain's) under the keys of the model it was traced from."""
        state = self.state_dict() if state is None else state
        return {self.source_keys.get(k, k): v for k, v in state.items()}


def chain_of(
    layers: Mapping[str, nn.Module] | Sequence[tuple[str, nn.Module]],
    *,
    name: str = "model",
    input_shape: Sequence[int] = UNKNOWN_SHAPE,
    input_dtype: torch.dtype | None = None,
) -> LayerChain:
    """A chain of layers declared by hand: ``(name, module)`` pairs in order, or a dict of them.

    Each module takes one tensor and returns one tensor. Without ``input_dtype`` the input is
    token ids (int64) when the first layer starts with an ``nn.Embedding``, else float32.
    """
    pairs = list(layers.items()) if isinstance(layers, Mapping) else list(layers)
    if not pairs:
        raise ModelError("chain_of needs at least one (name, module) layer; got none")
    seen: set[str] = set()
    for i, pair in enumerate(pairs, start=1):
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ModelError(f"chain_of: layer {i} must be a (name, module) pair; got {pair!r}")
        key, module = pair
        if not isinstance(module, nn.Module):
            raise ModelError(
                f"chain_of: layer {i} ('{key}') must be a torch.nn.Module; got "
                f"{type(module).__name__} (wrap functions in a module, e.g. nn.Flatten())"
            )
        if not isinstance(key, str) or not key or "." in key or key in seen:
            raise ModelError(f"chain_of: layer {i} needs a unique name without dots; got {key!r}")
        seen.add(key)
    dtype = input_dtype or guess_input_dtype(pairs[0][1])
    return LayerChain(name, pairs, tuple(input_shape), dtype)


def guess_input_dtype(first: nn.Module) -> torch.dtype:
    """int64 token ids when ``first`` is (or starts with) an embedding, else float32."""
    leaves = [m for m in first.modules() if not list(m.children())]
    if leaves and isinstance(leaves[0], nn.Embedding | nn.EmbeddingBag):
        return torch.long
    return torch.float32


@dataclass(frozen=True)
class LayerInfo:
    """Static facts about one indivisible layer."""

    index: int
    name: str
    output_shape: tuple[int, ...]
    params: int


def describe_layers(chain: LayerChain) -> list[LayerInfo]:
    """Per-layer output shape (one sample, no batch dimension) and parameter count."""
    infos: list[LayerInfo] = []
    was_training = chain.training
    chain.eval()
    try:
        with torch.no_grad():
            x = chain.example_input(batch_size=2)
            for index, (name, layer) in enumerate(chain.named_children(), start=1):
                x = layer(x)
                params = sum(p.numel() for p in layer.parameters())
                infos.append(LayerInfo(index, name, tuple(x.shape[1:]), params))
    finally:
        chain.train(was_training)
    return infos
