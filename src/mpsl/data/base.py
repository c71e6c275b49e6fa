"""Labelled data held in memory as tensors, and the checks every loader applies to its files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mpsl.errors import DatasetError


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
    """A train/test pair with its number of classes and, where known, each class's name.

    ``classes[i]`` names label ``i`` (an image folder's class folders, an .npz file's ``classes``).
    """

    name: str
    train: Labeled
    test: Labeled
    num_classes: int
    classes: tuple[str, ...] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input sample."""
        return tuple(self.train.x.shape[1:])


def read_file(path: Path) -> bytes:
    """The bytes of a dataset file; a DatasetError names the file when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}; check the file") from None


def check_labels(
    labels: np.ndarray | torch.Tensor, num_classes: int, where: str, fix: str, what: str = "label"
) -> None:
    """DatasetError naming ``where``, the first label outside 0..num_classes-1 and ``fix``.

    ``what`` is what the values are called: labels, or tokens (a language model's inputs).
    """
    values = np.asarray(labels)
    if values.dtype.kind not in "iu":
        raise DatasetError(f"{where}: {what}s must be integers; found {values.dtype} values; {fix}")
    bad = values[(values < 0) | (values >= num_classes)]
    if bad.size:
        raise DatasetError(
            f"{where}: {what} {bad.flat[0]} is outside the allowed range 0..{num_classes - 1} "
            f"({num_classes} classes; {bad.size} of {values.size} {what}s out of range); {fix}"
        )
