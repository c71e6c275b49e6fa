"""Your own data from a NumPy .npz archive: x_train, y_train, x_test, y_test (and classes).

Loaded with ``allow_pickle=False``: an object array would be a pickle, and unpickling runs code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mpsl.data.base import Dataset
from mpsl.data.tensors import Sources, assemble
from mpsl.errors import DatasetError

KEYS = ("x_train", "y_train", "x_test", "y_test")
CLASSES = "classes"
_SAVE = "save it with numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"


def load_npz(path: str | Path) -> Dataset:
    """The four arrays of ``path`` checked as ``from_tensors`` checks them; errors name the key."""
    path = Path(path)
    if not path.is_file():
        found = "is a directory" if path.is_dir() else "does not exist"
        raise DatasetError(f"{path} {found}; the npz dataset reads one .npz file: {_SAVE}")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as exc:  # a damaged or foreign file fails in many ways: zip, header, pickle
        found = f"{type(exc).__name__}: {exc}"
        if "pickle" in str(exc):  # numpy reads anything else as a pickle, and it refused
            found = "NumPy would read it only as a pickle, which MP-SL never loads: it can run code"
        raise DatasetError(f"{path} is not a NumPy .npz archive ({found}); {_SAVE}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # a lone .npy array
        raise DatasetError(f"{path} holds one array (a .npy file), not an .npz archive; {_SAVE}")
    with archive:
        keys = set(archive.files)
        for key in KEYS:
            if key not in keys:
                raise DatasetError(
                    f"{path}: key '{key}' is missing (the archive holds {sorted(keys)}); an npz "
                    f"dataset holds {', '.join(KEYS)} and optionally {CLASSES}"
                )
        if extra := sorted(keys - {*KEYS, CLASSES}):
            raise DatasetError(
                f"{path}: key '{extra[0]}' is not one MP-SL reads; an npz dataset holds "
                f"{', '.join(KEYS)} and optionally {CLASSES}: remove it or rename it"
            )
        arrays = {key: _read(archive, key, path) for key in sorted(keys)}
    names = arrays.get(CLASSES)
    if names is not None and (names.dtype.kind != "U" or names.ndim != 1):
        raise DatasetError(
            f"{path}: key '{CLASSES}' must be a 1-D array of class names (text, name i for label "
            f"i); found shape {list(names.shape)}, dtype {names.dtype}"
        )
    sources = Sources.named((*KEYS, CLASSES), lambda key: f"{path}: key '{key}'", str(path))
    return assemble(
        "npz",
        (arrays["x_train"], arrays["y_train"]),
        (arrays["x_test"], arrays["y_test"]),
        sources,
        classes=None if names is None else [str(n) for n in names],
    )


def _read(archive: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    """One array of the archive; DatasetError naming the file and key if it cannot be read."""
    try:
        return np.asarray(archive[key])
    except Exception as exc:  # a damaged member fails in many ways: zip CRC, zlib, header, EOF
        if isinstance(exc, ValueError) and "allow_pickle" in str(exc):  # numpy refused a pickle
            raise DatasetError(
                f"{path}: key '{key}' holds Python objects (an object array, stored as a "
                "pickle), which MP-SL does not load (unpickling can run code): store numbers, "
                "e.g. np.stack(list_of_arrays).astype('float32')"
            ) from None
        raise DatasetError(
            f"{path}: key '{key}' cannot be read ({type(exc).__name__}: {exc}): the file is "
            f"truncated or corrupt; write it again ({_SAVE})"
        ) from None
