"""LayerChain: a model as an ordered list of indivisible layers, numbered from 1."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn


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
