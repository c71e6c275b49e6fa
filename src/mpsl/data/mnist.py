"""MNIST from the four IDX files in a local directory (plain or .gz)."""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from mpsl.data.base import Dataset, Labeled, check_labels, read_file
from mpsl.errors import DatasetError

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CLASSES = 10
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file into an array; errors name the file and what is wrong."""
    raw = read_file(path)
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
            raise DatasetError(
                f"{path} is not a valid gzip file ({exc}): it is truncated or corrupt; "
                f"download it again, or give the uncompressed file without .gz"
            ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DatasetError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path} is truncated: its header promises {ndim} dimensions")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype: np.dtype = np.dtype(_DTYPES[raw[2]])  # type: ignore[call-overload]
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header != expected:
        raise DatasetError(
            f"{path} holds {len(raw) - header} data bytes; "
            f"its header {list(shape)} needs {expected}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find(root: Path, stem: str) -> Path:
    for candidate in (root / stem, root / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    expected = ", ".join(FILES.values())
    raise DatasetError(
        f"MNIST file '{stem}' (or '{stem}.gz') not found in {root}; "
        f"the directory must hold the four IDX files: {expected}"
    )


def load_mnist(root: str | Path) -> Dataset:
    """MNIST as 1x28x28 float tensors in [0, 1]."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"MNIST directory {root} does not exist; expected the files {FILES}")
    paths: dict[str, Path] = {}
    arrays: dict[str, np.ndarray] = {}
    for key, stem in FILES.items():  # each file found, then read, in turn
        paths[key] = _find(root, stem)
        arrays[key] = read_idx(paths[key])

    def labeled(what: str) -> Labeled:
        images, labels = arrays[f"{what}_images"], arrays[f"{what}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DatasetError(
                f"MNIST {what} images {images.shape} do not match labels {labels.shape} in {root}"
            )
        fix = f"MNIST has {CLASSES} classes: the file is corrupt or not MNIST's; download it again"
        check_labels(labels, CLASSES, str(paths[f"{what}_labels"]), fix)
        x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
        return Labeled(x, torch.from_numpy(labels.astype(np.int64)))

    return Dataset("mnist", labeled("train"), labeled("test"), CLASSES)
