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

from mpsl.data.base import Dataset, Labeled
from mpsl.errors import DatasetError

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
MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _SafeUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, KeyError, TypeError, ValueError, EOFError) as exc:
        raise DatasetError(f"{path} is not a CIFAR-10 python batch: {exc}") from exc
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DatasetError(f"{path}: expected data (N, 3072) and N labels; got {data.shape}")
    return data.reshape(-1, 3, 32, 32), labels


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

    return Dataset("cifar10", labeled(TRAIN_FILES), labeled([TEST_FILE]), 10)
