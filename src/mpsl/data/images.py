"""Your own images: a folder of class folders, read with Pillow into float (C, H, W) in [0, 1].

Two layouts (docs/formats.md): ``DIR/train/<class>/`` with ``DIR/test/<class>/`` (your split),
or ``DIR/<class>/`` (a fixed seeded split: a fifth tests). The class folders' names, sorted, are
the labels 0, 1, ... Images are never resized: every one must have the first one's size and mode.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mpsl.data.base import Dataset, Labeled
from mpsl.data.tensors import split
from mpsl.errors import DatasetError

EXTENSIONS = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "test")
TEST_FRACTION = 0.2
SPLIT_SEED = 0  # one split whatever the run's seed, so runs with different seeds test alike
_GRAY = {"1", "L", "LA", "La"}  # read as L (alpha dropped); 16-bit and float modes are refused
_LAYOUT = "DIR/<class>/*.png, or DIR/train/<class>/ and DIR/test/<class>/ (docs/formats.md)"


def load_images(root: str | Path) -> Dataset:
    """The images under ``root``, labelled by class folder; ``classes`` maps labels to names."""
    root = Path(root)
    if not root.is_dir():
        found = "is a file" if root.exists() else "does not exist"
        raise DatasetError(f"image folder {root} {found}; expected {_LAYOUT}")
    top = _folders(root)
    reader = _Reader()
    if not set(SPLITS) & set(top):
        classes = _classes(root, top)
        x, y = reader.read(root, classes)
        train, test = split(Labeled(x, y), TEST_FRACTION, SPLIT_SEED, str(root), str(root))
        return Dataset("images", train, test, len(classes), classes)
    for name in SPLITS:
        if name not in top:
            other = next(s for s in SPLITS if s != name)
            raise DatasetError(
                f"{root} has a {other}/ folder but no {name}/: give both train/ and test/, each "
                f"holding the class folders, or put the class folders in {root} itself"
            )
    if extra := [f for f in top if f not in SPLITS]:
        raise DatasetError(
            f"{root / extra[0]}: a folder beside train/ and test/; with train/ and test/, the "
            "class folders go inside them: move or remove it"
        )
    classes = _classes(root / "train", _folders(root / "train"))
    if differ := sorted(set(classes) ^ set(_folders(root / "test"))):
        where, other = ("test", "train") if differ[0] in classes else ("train", "test")
        raise DatasetError(
            f"{root / where}: class folder '{differ[0]}' is missing ({other}/ has it): train/ "
            "and test/ must hold the same class folders"
        )
    train = Labeled(*reader.read(root / "train", classes))
    test = Labeled(*reader.read(root / "test", classes))
    return Dataset("images", train, test, len(classes), classes)


def _folders(folder: Path) -> list[str]:
    """The sorted names of the folders in ``folder``; hidden ones (.name) and files are skipped."""
    try:
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise DatasetError(f"cannot list {folder}: {exc.strerror or exc}") from None


def _classes(folder: Path, names: list[str]) -> tuple[str, ...]:
    if not names:
        raise DatasetError(f"{folder} holds no class folders; expected {_LAYOUT}")
    return tuple(names)


def _image_files(folder: Path) -> list[Path]:
    """The images of one class folder, sorted by name; anything else in it is refused."""
    try:
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise DatasetError(f"cannot list {folder}: {exc.strerror or exc}") from None
    for path in entries:
        if path.is_dir() or path.suffix.lower() not in EXTENSIONS:
            what = "a folder" if path.is_dir() else "not a .png, .jpg or .jpeg file"
            raise DatasetError(
                f"{path}: {what}; a class folder holds only its images: move it, or convert it to "
                "PNG"
            )
    if not entries:
        raise DatasetError(
            f"{folder}: empty class folder (no .png, .jpg or .jpeg images): add images or remove it"
        )
    return entries


class _Reader:
    """Reads images as uint8 arrays, each held to the size and mode of the first one read."""

    def __init__(self) -> None:
        self.first: tuple[Path, tuple[int, int], str] | None = None

    def read(self, folder: Path, classes: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (N, C, H, W) in [0, 1] and labels (N,) of every class folder in ``folder``."""
        images: list[np.ndarray] = []
        labels: list[int] = []
        for label, name in enumerate(classes):
            files = _image_files(folder / name)
            images += [self.image(path) for path in files]
            labels += [label] * len(files)
        x = torch.from_numpy(np.stack(images)).float().div_(255.0)
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()
        return x, torch.tensor(labels, dtype=torch.int64)

    def image(self, path: Path) -> np.ndarray:
        """One image as (H, W) for L or (H, W, 3) for RGB."""
        try:
            with Image.open(path) as img:
                img.load()
                read = img.mode
                mode = "L" if read in _GRAY else read if read.startswith(("I", "F")) else "RGB"
                if mode not in ("L", "RGB"):
                    raise DatasetError(
                        f"{path}: {read} pixels (16-bit or floating-point) are not read; MP-SL "
                        "reads 8-bit images: convert it to 8 bits (L or RGB)"
                    )
                size = img.size
                pixels = np.asarray(img if read == mode else img.convert(mode), dtype=np.uint8)
        except DatasetError:
            raise
        except Exception as exc:  # Pillow fails on damaged files in many ways (OSError, ...)
            raise DatasetError(
                f"{path} cannot be read as an image ({type(exc).__name__}: {exc}): it is "
                "truncated, corrupt or not an image: replace or remove it"
            ) from None
        if self.first is None:
            self.first = (path, size, mode)
        first, first_size, first_mode = self.first
        if size != first_size:
            raise DatasetError(
                f"{path} is {size[0]}x{size[1]} pixels but {first}, the first image, is "
                f"{first_size[0]}x{first_size[1]}: every image must have one size; resize them "
                "beforehand (MP-SL does not resize)"
            )
        if mode != first_mode:
            converted = f" (read as {read})" if read != mode else ""
            raise DatasetError(
                f"{path} is {mode}{converted} but {first}, the first image, is {first_mode}: "
                "every image must be grayscale (L) or every one colour (RGB); convert them "
                "beforehand"
            )
        return pixels
