"""Labelled data held in memory as tensors."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Labeled:
    """Inputs ``x`` (N, ...) and integer labels ``y`` (N,) or (N, T) for token data."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} samples but y has {len(self.y)}")

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, indices: torch.Tensor) -> Labeled:
        """The samples at ``indices``."""
        return Labeled(self.x[indices], self.y[indices])


@dataclass(frozen=True)
class Dataset:
    """A train/test pair with its input shape and number of classes."""

    name: str
    train: Labeled
    test: Labeled
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input sample."""
        return tuple(self.train.x.shape[1:])
