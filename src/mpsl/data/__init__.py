"""Datasets (digits, MNIST, CIFAR-10, synthetic) and their partitioning across data owners."""

from __future__ import annotations

from pathlib import Path

from mpsl.data.base import Dataset, Labeled
from mpsl.data.cifar10 import load_cifar10
from mpsl.data.digits import load_digits
from mpsl.data.mnist import load_mnist
from mpsl.data.partition import partition
from mpsl.data.synthetic import load_synthetic
from mpsl.errors import DatasetError

__all__ = ["DATASETS", "Dataset", "Labeled", "load_dataset", "partition"]

DATASETS = ("digits", "mnist", "cifar10", "synthetic")


def load_dataset(
    name: str,
    path: str | Path | None = None,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
    seed: int = 0,
) -> Dataset:
    """Load dataset ``name``; mnist and cifar10 read from ``path``."""
    if name == "digits":
        return load_digits()
    if name in ("mnist", "cifar10"):
        if path is None:
            raise DatasetError(f"dataset '{name}' is read from local files: give its directory")
        return load_mnist(path) if name == "mnist" else load_cifar10(path)
    if name == "synthetic":
        return load_synthetic(input_shape or (1, 8, 8), num_classes or 10, seed=seed)
    raise DatasetError(f"unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}")
