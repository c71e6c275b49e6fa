"""Your own data as a ``Dataset``: tensors, NumPy arrays or a map-style torch dataset, checked once.

The checks are what the runtime assumes, made on load so that a mistake is named here and not as a
shape error deep inside a round: float inputs (N, ...) with integer labels (N,), or integer token
inputs (N, T) with next-token labels (N, T), as ``load_synthetic(tokens=True)`` makes for
``gpt_small``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import IterableDataset

from mpsl.data.base import Dataset, Labeled, check_labels
from mpsl.errors import DatasetError

Array = torch.Tensor | np.ndarray
_ARGS = ("x", "y", "x_test", "y_test", "classes")
_KINDS = {"O": "Python objects", "U": "text", "S": "bytes", "c": "complex numbers", "b": "booleans"}


@dataclass(frozen=True)
class Sources:
    """What an error calls each input: an argument of ``from_tensors``, a key of an .npz file."""

    x: str
    y: str
    x_test: str
    y_test: str
    classes: str
    call: str  # the function (or file) every name starts with: "from_tensors", "data.npz"

    @classmethod
    def named(cls, keys: Sequence[str], name: Callable[[str], str], call: str) -> Sources:
        """Sources called ``name(key)`` for the keys of x, y, x_test, y_test and classes."""
        x, y, x_test, y_test, classes = (name(key) for key in keys)
        return cls(x, y, x_test, y_test, classes, call)


def as_tensor(value: Any, where: str, scalar: bool = False) -> torch.Tensor:
    """``value`` as a CPU tensor, floats as float32 and integers as int64 (what training takes)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "iuf":
            found = _KINDS.get(value.dtype.kind, "non-numbers")
            raise DatasetError(
                f"{where}: expected numbers; found {found} (dtype {value.dtype}): store "
                "floating-point inputs and integer labels"
            )
        # torch takes only the machine's byte order (an .npz may hold big-endian arrays)
        value = torch.from_numpy(np.ascontiguousarray(value, value.dtype.newbyteorder("=")))
    elif not isinstance(value, torch.Tensor):
        raise DatasetError(
            f"{where}: expected a torch.Tensor or a NumPy array; got {type(value).__name__}"
        )
    value = value.detach().cpu()
    if value.ndim == 0 and not scalar:
        raise DatasetError(f"{where}: expected an array of samples; got a single number")
    if value.dtype == torch.bool or value.is_complex():
        raise DatasetError(
            f"{where}: expected real numbers; found {value.dtype}: give floating-point inputs "
            "and integer labels"
        )
    return value.to(torch.float32 if value.is_floating_point() else torch.int64)


def assemble(
    name: str,
    train: tuple[Any, Any],
    test: tuple[Any, Any] | None,
    sources: Sources,
    *,
    test_fraction: float = 0.2,
    num_classes: int | None = None,
    classes: Sequence[str] | None = None,
    seed: int = 0,
) -> Dataset:
    """The checked ``Dataset``; without ``test``, a seeded ``test_fraction`` of ``train`` tests."""
    names = _class_names(classes, sources.classes)
    x, y = _pair(train, sources.x, sources.y, sources.call)
    pairs = [(x, y, sources.x, sources.y)]
    if test is not None:
        x_test, y_test = _pair(test, sources.x_test, sources.y_test, sources.call)
        if x_test.dtype != x.dtype or x_test.shape[1:] != x.shape[1:]:
            raise DatasetError(
                f"{sources.x_test}: samples of shape {list(x_test.shape[1:])} ({x_test.dtype}) "
                f"do not match those of {sources.x.removeprefix(sources.call + ': ')}, "
                f"{list(x.shape[1:])} ({x.dtype}): training "
                "and test samples must have one shape and type"
            )
        pairs.append((x_test, y_test, sources.x_test, sources.y_test))
    count, fix = _count_classes(num_classes, names, pairs, sources)
    for inputs, labels, where_x, where_y in pairs:
        check_labels(labels, count, where_y, fix)
        if not inputs.is_floating_point():  # tokens index the model's vocabulary of `count`
            check_labels(inputs, count, where_x, fix, what="token")
    if test is None:
        train_part, test_part = split(Labeled(x, y), test_fraction, seed, sources.x, sources.call)
    else:
        train_part, test_part = Labeled(x, y), Labeled(x_test, y_test)
    return Dataset(name, train_part, test_part, count, names)


def split(
    data: Labeled, fraction: float, seed: int, where: str, call: str
) -> tuple[Labeled, Labeled]:
    """(train, test): a seeded random ``fraction`` of ``data`` (at least one sample) tests."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction < 1:
        raise DatasetError(
            f"{call}: test_fraction must be a number between 0 and 1 (the share of the samples "
            f"that tests); got {fraction!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DatasetError(f"{call}: seed must be an integer >= 0; got {seed!r}")
    if len(data) < 2:
        raise DatasetError(
            f"{where}: {len(data)} sample cannot be split into training and test samples; give "
            "at least 2, or give test data"
        )
    n_test = min(max(round(len(data) * fraction), 1), len(data) - 1)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(data)))
    return data.subset(order[n_test:]), data.subset(order[:n_test])


def from_tensors(
    x: Array,
    y: Array,
    x_test: Array | None = None,
    y_test: Array | None = None,
    *,
    test_fraction: float = 0.2,
    num_classes: int | None = None,
    classes: Sequence[str] | None = None,
    seed: int = 0,
    name: str = "tensors",
) -> Dataset:
    """Inputs ``x`` and labels ``y`` (tensors or NumPy arrays) as a Dataset to partition.

    ``x`` is float (N, ...) with integer labels ``y`` (N,) in 0..num_classes-1, or integer tokens
    (N, T) with next-token labels (N, T). Inputs become float32, labels int64. Without
    ``x_test``/``y_test``, a ``test_fraction`` of the samples, drawn with ``seed``, is the test
    set. ``num_classes`` defaults to the number of ``classes`` names, else the largest label + 1.
    """
    sources = Sources.named(_ARGS, lambda key: f"from_tensors: argument '{key}'", "from_tensors")
    return assemble(
        name,
        (x, y),
        _test_pair(x_test, y_test, "x_test", "y_test", "from_tensors"),
        sources,
        test_fraction=test_fraction,
        num_classes=num_classes,
        classes=classes,
        seed=seed,
    )


def from_torch(
    dataset: TorchDataset[Any],
    test: TorchDataset[Any] | None = None,
    *,
    test_fraction: float = 0.2,
    num_classes: int | None = None,
    classes: Sequence[str] | None = None,
    seed: int = 0,
    name: str = "torch",
) -> Dataset:
    """A map-style torch dataset of (input, label) items (and optional ``test``) as a Dataset.

    The items are read once, ``dataset[0]`` to ``dataset[len - 1]``, into tensors held in memory:
    the data must fit in memory, and a random transform (augmentation) is applied once, not anew
    each epoch. ``classes`` defaults to the dataset's own ``classes`` list (torchvision's have one);
    the rest is as in ``from_tensors``.
    """
    if classes is None:
        own = getattr(dataset, "classes", None)
        if isinstance(own, list | tuple) and own and all(isinstance(c, str) for c in own):
            classes = tuple(own)
    train = _materialise(dataset, "dataset")
    return assemble(
        name,
        train,
        None if test is None else _materialise(test, "test"),
        Sources(
            "from_torch: the inputs of 'dataset'",
            "from_torch: the labels of 'dataset'",
            "from_torch: the inputs of 'test'",
            "from_torch: the labels of 'test'",
            "from_torch: argument 'classes'",
            call="from_torch",
        ),
        test_fraction=test_fraction,
        num_classes=num_classes,
        classes=classes,
        seed=seed,
    )


def _test_pair(x: Any, y: Any, x_name: str, y_name: str, call: str) -> tuple[Any, Any] | None:
    if (x is None) != (y is None):
        given, missing = (x_name, y_name) if y is None else (y_name, x_name)
        raise DatasetError(
            f"{call}: argument '{given}' is given without '{missing}': give both, or neither "
            "for a seeded split of the training samples"
        )
    return None if x is None else (x, y)


def _pair(
    pair: tuple[Any, Any], where_x: str, where_y: str, call: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and labels, checked against each other; errors name ``where_x`` or ``where_y``."""
    x, y = as_tensor(pair[0], where_x), as_tensor(pair[1], where_y)
    if len(x) == 0 or x[0].numel() == 0:
        what = "no samples" if len(x) == 0 else "empty samples"
        raise DatasetError(f"{where_x}: {what} (shape {list(x.shape)}); give at least one value")
    if len(x) != len(y):
        raise DatasetError(
            f"{where_x} has {len(x)} samples but {where_y.removeprefix(call + ': ')} has "
            f"{len(y)} labels: give one label "
            "per sample, in the same order"
        )
    if y.is_floating_point():
        raise DatasetError(
            f"{where_y}: labels must be integers (class indices); found floating-point values: "
            "convert them, e.g. y.long() or y.astype('int64')"
        )
    if x.is_floating_point():
        if x.ndim < 2:
            raise DatasetError(
                f"{where_x}: expected samples of shape (N, ...); found shape {list(x.shape)}: "
                "give each sample its own dimensions, e.g. x.reshape(-1, 1) for one feature"
            )
        if y.ndim != 1:
            raise DatasetError(
                f"{where_y}: expected one class index per sample, shape ({len(y)},); found shape "
                f"{list(y.shape)}: flatten it (y.reshape(-1)), or for one-hot rows y.argmax(1)"
            )
        finite = torch.isfinite(x.flatten(1)).all(dim=1)
        if not finite.all():
            bad = int((~finite).sum())
            first = int((~finite).nonzero()[0, 0])
            raise DatasetError(
                f"{where_x}: {bad} sample(s) hold NaN or infinite values (the first is sample "
                f"{first}); training on them diverges: fix or drop them"
            )
    elif x.ndim != 2 or y.shape != x.shape:
        raise DatasetError(
            f"{where_x}: integer inputs are token sequences (N, T) with next-token labels of the "
            f"same shape; found inputs {list(x.shape)} and labels {list(y.shape)}: for images or "
            "features give floating-point inputs (e.g. pixels / 255 as float32)"
        )
    return x, y


def _class_names(classes: Sequence[str] | None, where: str) -> tuple[str, ...] | None:
    if classes is None:
        return None
    if isinstance(classes, str) or not all(isinstance(c, str) for c in classes) or not classes:
        raise DatasetError(
            f"{where}: expected a non-empty list of class names (text), name i for label i; "
            f"got {classes!r}"[:300]
        )
    names = tuple(classes)
    if len(set(names)) != len(names):
        twice = next(c for c in names if names.count(c) > 1)
        raise DatasetError(f"{where}: class name {twice!r} appears twice; each class needs its own")
    return names


def _count_classes(
    num_classes: int | None,
    names: tuple[str, ...] | None,
    pairs: list[tuple[torch.Tensor, torch.Tensor, str, str]],
    sources: Sources,
) -> tuple[int, str]:
    """The number of classes, and the fix a label error then advises."""
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise DatasetError(
                f"{sources.call}: num_classes must be an integer >= 1; got {num_classes!r}"
            )
        if names is not None and len(names) != num_classes:
            raise DatasetError(
                f"{sources.classes}: {len(names)} class names but num_classes is {num_classes}: "
                "give one name per class"
            )
        return num_classes, f"num_classes is {num_classes}: give a larger one or leave it out"
    if names is not None:
        return len(names), f"{len(names)} class names are given: one per label 0..{len(names) - 1}"
    tensors = [t for x, y, _, _ in pairs for t in (y, x) if not t.is_floating_point()]
    largest = max(int(t.max()) for t in tensors)
    return max(largest + 1, 1), "labels are class indices counted from 0"


def _materialise(data: Any, arg: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (input, label) item of a map-style dataset, stacked."""
    if isinstance(data, IterableDataset) or not isinstance(data, Sized):
        raise DatasetError(
            f"from_torch: argument '{arg}' is a {type(data).__name__}, not a map-style dataset "
            "(len() and data[i]): read it into tensors and give them to mpsl.data.from_tensors"
        )
    if len(data) == 0:
        raise DatasetError(f"from_torch: argument '{arg}' has no items; give at least one")
    inputs: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    for i in range(len(data)):
        item = data[i]  # type: ignore[index]
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise DatasetError(
                f"from_torch: {arg}[{i}] is a {type(item).__name__}, not an (input, label) pair: "
                "make the dataset return (x, y)"
            )
        inputs.append(_item(item[0], f"from_torch: the input of {arg}[{i}]", scalar=False))
        labels.append(_item(item[1], f"from_torch: the label of {arg}[{i}]", scalar=True))
    for what, got in (("input", inputs), ("label", labels)):
        for i, t in enumerate(got):
            if t.shape != got[0].shape or t.dtype != got[0].dtype:
                raise DatasetError(
                    f"from_torch: the {what} of {arg}[{i}] is {list(t.shape)} ({t.dtype}) but "
                    f"that of {arg}[0] is {list(got[0].shape)} ({got[0].dtype}): every {what} "
                    "must have one shape and type (resize or pad in the dataset's transform)"
                )
    return torch.stack(inputs), torch.stack(labels)


def _item(value: Any, where: str, scalar: bool) -> torch.Tensor:
    """One item's input or label as a tensor; a Python integer label is welcome."""
    if scalar and isinstance(value, int | np.integer) and not isinstance(value, bool):
        return torch.tensor(int(value))
    if scalar and isinstance(value, float | np.floating):
        raise DatasetError(f"{where} is {value!r}: labels must be integers (class indices)")
    if type(value).__module__.startswith("PIL."):
        raise DatasetError(
            f"{where} is a PIL image, not a tensor: give the dataset a transform that makes "
            "tensors, e.g. torchvision.transforms.ToTensor()"
        )
    return as_tensor(value, where, scalar=scalar)
