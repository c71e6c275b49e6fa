"""Synthetic data of any shape, for benchmarks and tests."""

from __future__ import annotations

import torch

from mpsl.data.base import Dataset, Labeled


def load_synthetic(
    input_shape: tuple[int, ...] = (1, 8, 8),
    num_classes: int = 10,
    train_size: int = 512,
    test_size: int = 128,
    seed: int = 0,
    tokens: bool = False,
) -> Dataset:
    """Random inputs with labels from a fixed random linear rule (so a model can learn them).

    With ``tokens`` the inputs are integer sequences of shape (T,) and the labels are the next
    tokens (a cyclic shift), as a language model expects.
    """
    gen = torch.Generator().manual_seed(seed)

    def draw(n: int) -> Labeled:
        if tokens:
            x = torch.randint(0, num_classes, (n, *input_shape), generator=gen)
            return Labeled(x, torch.roll(x, shifts=-1, dims=1))
        x = torch.randn((n, *input_shape), generator=gen)
        return Labeled(x, (x.flatten(1) @ weights).argmax(dim=1))

    weights = torch.randn(int(torch.tensor(input_shape).prod()), num_classes, generator=gen)
    return Dataset("synthetic", draw(train_size), draw(test_size), num_classes)
