"""Datasets (digits, MNIST, CIFAR-10, synthetic) and their partitioning across data owners."""

from __future__ import annotations

from pathlib import Path

from mpsl.data.base import Dataset, Labeled, check_labels
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
    """Load dataset ``name``; mnist and cifar10 read from ``path``.

    ``num_classes`` (the run config's) is the synthetic data's number of classes; for the other
    datasets every label must be below it, or the model's output could not score it.
    """
    if num_classes is not None and (isinstance(num_classes, bool) or num_classes < 1):
        raise DatasetError(
            f"dataset '{name}': num_classes must be an integer >= 1; got {num_classes!r}"
        )
    if name == "synthetic":
        classes = 10 if num_classes is None else num_classes
        return load_synthetic(input_shape or (1, 8, 8), classes, seed=seed)
    if name == "digits":
        dataset = load_digits()
    elif name in ("mnist", "cifar10"):
        if path is None:
            raise DatasetError(f"dataset '{name}' is read from local files: give its directory")
        dataset = load_mnist(path) if name == "mnist" else load_cifar10(path)
    else:
        raise DatasetError(f"unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}")
    if num_classes is not None:
        fix = f"num_classes is {num_classes}: give at least {dataset.num_classes} or leave it out"
        for part, data in (("training", dataset.train), ("test", dataset.test)):
            where = f"dataset '{name}'{f' in {path}' if path else ''} ({part} set)"
            check_labels(data.y, num_classes, where, fix)
    return dataset
