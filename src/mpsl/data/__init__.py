"""Datasets (digits, MNIST, CIFAR-10, synthetic, your own) and their partitioning.

Your own data: ``from_tensors`` and ``from_torch`` in Python, an .npz file (``load_npz``) or a
folder of class folders of images (``load_images``) from a file.
"""

from __future__ import annotations

from pathlib import Path

from mpsl.data.base import Dataset, Labeled, check_labels
from mpsl.data.cifar10 import load_cifar10
from mpsl.data.digits import load_digits
from mpsl.data.images import load_images
from mpsl.data.mnist import load_mnist
from mpsl.data.npz import load_npz
from mpsl.data.partition import partition
from mpsl.data.synthetic import load_synthetic
from mpsl.data.tensors import from_tensors, from_torch
from mpsl.errors import DatasetError

__all__ = [
    "DATASETS",
    "Dataset",
    "Labeled",
    "from_tensors",
    "from_torch",
    "load_dataset",
    "load_images",
    "load_npz",
    "partition",
]

DATASETS = ("digits", "mnist", "cifar10", "synthetic", "npz", "images")
# The datasets read from local files: what ``path`` names, and the loader.
_FROM_FILES = {
    "mnist": ("its directory", load_mnist),
    "cifar10": ("its directory", load_cifar10),
    "npz": ("the .npz file", load_npz),
    "images": ("the image folder", load_images),
}


def load_dataset(
    name: str,
    path: str | Path | None = None,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
    seed: int = 0,
) -> Dataset:
    """Load dataset ``name``; mnist, cifar10, npz and images read from ``path``.

    ``num_classes`` (the run config's) is the synthetic data's number of classes; for the other
    datasets every label (and token input) must be below it, or the model could not score it.
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
    elif name in _FROM_FILES:
        what, load = _FROM_FILES[name]
        if path is None:
            raise DatasetError(
                f"dataset '{name}' is read from local files: give {what} (data_path, --data-path)"
            )
        dataset = load(path)
    elif name == "python":
        raise DatasetError(
            "dataset 'python' was given to mpsl.train as an object: there is nothing to load; "
            "pass the data again (mpsl.data.from_tensors, from_torch), or use a dataset name"
        )
    else:
        raise DatasetError(f"unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}")
    if num_classes is not None:
        fix = f"num_classes is {num_classes}: give at least {dataset.num_classes} or leave it out"
        for part, data in (("training", dataset.train), ("test", dataset.test)):
            where = f"dataset '{name}'{f' in {path}' if path else ''} ({part} set)"
            check_labels(data.y, num_classes, where, fix)
            if not data.x.is_floating_point():  # tokens index the model's vocabulary
                check_labels(data.x, num_classes, f"{where[:-1]} inputs)", fix, what="token")
    return dataset
