"""CIFAR-10 from the python-version batches in a local directory.

The batches are Python pickles. We never run arbitrary pickles: a restricted unpickler admits only
the few numpy reconstruction functions that those files use.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mpsl.data.base import Dataset, Labeled, check_labels, read_file
from mpsl.errors import DatasetError

CLASSES = 10
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILE = "test_batch"
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}
_REDOWNLOAD = (
    "the file is truncated, corrupt or not CIFAR-10's (10 classes); download and unpack "
    "cifar-10-python.tar.gz again"
)
MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = read_file(path)
    try:
        batch = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # truncated or corrupt bytes fail in many ways: EOF, overflow, ...
        raise _not_a_batch(path, f"{type(exc).__name__}: {exc}") from None
    if not isinstance(batch, dict) or not {b"data", b"labels"} <= batch.keys():
        found = f"keys {list(batch)[:4]}" if isinstance(batch, dict) else type(batch).__name__
        raise _not_a_batch(path, f"expected a dict with keys b'data' and b'labels'; found {found}")
    try:
        data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    except (TypeError, ValueError) as exc:  # ragged lists
        raise _not_a_batch(path, str(exc)) from None
    if (
        data.ndim != 2
        or data.shape[1] != 3 * 32 * 32
        or labels.ndim != 1
        or len(data) != len(labels)
    ):
        raise _not_a_batch(
            path,
            f"expected data (N, 3072) and N labels; found data {data.shape}, labels {labels.shape}",
        )
    if data.dtype.kind not in "iu" or (data.size and (data.min() < 0 or data.max() > 255)):
        found = f"{data.min()}..{data.max()}" if data.dtype.kind in "iuf" else str(data.dtype)
        raise _not_a_batch(path, f"expected pixel values 0..255; found {found}")
    check_labels(labels, CLASSES, str(path), _REDOWNLOAD)
    return data.astype(np.uint8).reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _not_a_batch(path: Path, found: str) -> DatasetError:
    return DatasetError(f"{path} is not a CIFAR-10 python batch ({found}); {_REDOWNLOAD}")


def load_cifar10(root: str | Path) -> Dataset:
    """CIFAR-10 as normalised 3x32x32 float tensors."""
    root = Path(root)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    missing = [f for f in [*TRAIN_FILES, TEST_FILE] if not (root / f).is_file()]
    if missing:
        raise DatasetError(
            f"CIFAR-10 files {missing} not found in {root}; expected the python-version batches "
            f"{', '.join(TRAIN_FILES)} and {TEST_FILE}"
        )

    def labeled(files: list[str]) -> Labeled:
        parts = [_read_batch(root / f) for f in files]
        x = torch.from_numpy(np.concatenate([p[0] for p in parts])).float() / 255.0
        y = torch.from_numpy(np.concatenate([p[1] for p in parts]))
        return Labeled((x - MEAN) / STD, y)

    return Dataset("cifar10", labeled(TRAIN_FILES), labeled([TEST_FILE]), CLASSES)
