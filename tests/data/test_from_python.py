"""Your own data from Python: from_tensors and from_torch, checked, split and partitioned."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import IterableDataset, TensorDataset

from mpsl.data import from_tensors, from_torch
from mpsl.errors import DatasetError
from mpsl.runtime.config import RunConfig
from mpsl.runtime.engine import InProcessEngine
from mpsl.runtime.setup import owner_shares


def _data(n: int = 60, classes: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=gen), torch.arange(n) % classes


def test_from_tensors_splits_a_seeded_test_set_and_counts_classes():
    x, y = _data()
    data = from_tensors(x, y)
    assert (data.name, data.num_classes, data.classes) == ("tensors", 3, None)
    assert (len(data.train), len(data.test), data.input_shape) == (48, 12, (1, 8, 8))
    joined = torch.cat([data.train.x, data.test.x])
    assert sorted(joined.flatten(1).sum(1).tolist()) == sorted(x.flatten(1).sum(1).tolist())
    again, other = from_tensors(x, y), from_tensors(x, y, seed=1)
    assert torch.equal(again.test.x, data.test.x) and not torch.equal(other.test.x, data.test.x)
    assert len(from_tensors(x, y, test_fraction=0.5).test) == 30


def test_from_tensors_takes_numpy_and_test_data_and_classes():
    x, y = _data()
    xt, yt = _data(9, seed=1)
    data = from_tensors(
        x.double().numpy(), y.int().numpy(), xt, yt, classes=["a", "b", "c"], name="mine"
    )
    assert data.train.x.dtype == torch.float32 and data.train.y.dtype == torch.int64
    assert (len(data.train), len(data.test), data.classes) == (60, 9, ("a", "b", "c"))
    assert from_tensors(x, y, num_classes=7).num_classes == 7


def test_from_tensors_takes_token_sequences():
    tokens = torch.randint(0, 20, (30, 8), generator=torch.Generator().manual_seed(0))
    data = from_tensors(tokens, torch.roll(tokens, -1, 1))
    assert data.num_classes == int(tokens.max()) + 1 and data.input_shape == (8,)
    with pytest.raises(DatasetError, match=r"argument 'x': token 19 is outside .*0\.\.9"):
        from_tensors(tokens, torch.roll(tokens, -1, 1) % 10, num_classes=10)


class _Pairs(TorchDataset):
    """A map-style dataset of (input, int label) items with a torchvision-like classes list."""

    def __init__(self, n: int) -> None:
        self.x, self.y = _data(n)
        self.classes = ["zero", "one", "two"]

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], int(self.y[i])


def test_from_torch_materialises_items_and_takes_the_dataset_classes():
    data = from_torch(_Pairs(40), _Pairs(6))
    assert (len(data.train), len(data.test), data.num_classes) == (40, 6, 3)
    assert data.classes == ("zero", "one", "two") and data.name == "torch"
    assert torch.equal(data.train.x, _Pairs(40).x)
    split = from_torch(TensorDataset(*_data(50)))
    assert (len(split.train), len(split.test), split.classes) == (40, 10, None)


@pytest.mark.parametrize("scheme", ["iid", "dirichlet"])
@pytest.mark.parametrize("source", ["tensors", "torch"])
def test_own_data_is_partitioned_across_data_owners(scheme, source):
    x, y = _data(200, classes=4)
    data = from_tensors(x, y) if source == "tensors" else from_torch(TensorDataset(x, y))
    config = RunConfig(data_owners=5, partition=scheme, alpha=0.2, seed=3)
    shares = owner_shares(config, data)
    assert sum(len(s) for s in shares) == len(data.train) and all(len(s) for s in shares)
    seen = torch.cat([s.x.flatten(1).sum(1) for s in shares])
    assert sorted(seen.tolist()) == sorted(data.train.x.flatten(1).sum(1).tolist())
    skew = max(np.bincount(s.y.numpy(), minlength=4).max() / len(s) for s in shares)
    assert (skew > 0.5) if scheme == "dirichlet" else (skew < 0.5)


def test_own_data_trains_one_round_in_process():
    config = RunConfig(data_owners=2, partition="dirichlet", rounds=1, local_epochs=1, batch_size=8)
    result = InProcessEngine(config, dataset=from_torch(_Pairs(40))).run()
    assert [r.samples for r in result.rounds] == [32]  # every training sample, once
    assert 0 <= result.rounds[0].accuracy <= 1


class _Stream(IterableDataset):
    def __iter__(self):
        yield torch.zeros(2), 0


class _Items(TorchDataset):
    def __init__(self, items: list) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


X, Y = _data(10)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: from_tensors(X, Y[:7]), "argument 'x' has 10 samples but argument 'y' has 7"),
        (lambda: from_tensors(X, Y.float()), "argument 'y': labels must be integers"),
        (lambda: from_tensors(X, Y + 1, num_classes=3), "argument 'y': label 3 is outside"),
        (lambda: from_tensors(X, Y - 1), "argument 'y': label -1 is outside the allowed range"),
        (
            lambda: from_tensors(X, Y, X[:3], Y[:3] + 5, num_classes=3),
            "argument 'y_test': label 5 is outside",
        ),
        (lambda: from_tensors(X[:0], Y[:0]), "argument 'x': no samples"),
        (lambda: from_tensors(X, Y, X), "argument 'x_test' is given without 'y_test'"),
        (lambda: from_tensors(X, Y, y_test=Y), "argument 'y_test' is given without 'x_test'"),
        (lambda: from_tensors(X, Y, X[:, :, :4], Y), "'x_test': samples of shape [1, 4, 8]"),
        (lambda: from_tensors(X.flatten(), Y.repeat(64)), "'x': expected samples of shape"),
        (lambda: from_tensors(X, Y[:, None]), "'y': expected one class index per sample"),
        (lambda: from_tensors(X.long(), Y), "'x': integer inputs are token sequences"),
        (lambda: from_tensors(X > 0, Y), "argument 'x': expected real numbers; found torch.bool"),
        (lambda: from_tensors([[1.0]], [0]), "'x': expected a torch.Tensor or a NumPy array"),
        (lambda: from_tensors(np.array(["a"] * 10), Y), "'x': expected numbers; found text"),
        (lambda: from_tensors(X.clone().fill_(float("nan")), Y), "10 sample(s) hold NaN"),
        (lambda: from_tensors(X, Y, test_fraction=1), "test_fraction must be a number between"),
        (lambda: from_tensors(X[:1], Y[:1]), "1 sample cannot be split"),
        (lambda: from_tensors(X, Y, num_classes=0), "num_classes must be an integer >= 1"),
        (lambda: from_tensors(X, Y, classes="abc"), "argument 'classes': expected a non-empty"),
        (lambda: from_tensors(X, Y, classes=["a", "a", "b"]), "class name 'a' appears twice"),
        (
            lambda: from_tensors(X, Y, classes=["a"], num_classes=3),
            "argument 'classes': 1 class names but num_classes is 3",
        ),
        (
            lambda: from_tensors(X, Y, classes=["a", "b"]),
            "label 2 is outside the allowed range 0..1",
        ),
        (lambda: from_tensors(X, Y, seed=-1), "seed must be an integer >= 0"),
        (lambda: from_torch(_Stream()), "argument 'dataset' is a _Stream, not a map-style"),
        (lambda: from_torch(_Items([])), "argument 'dataset' has no items"),
        (lambda: from_torch(_Items([X[0]])), "dataset[0] is a Tensor, not an (input, label)"),
        (lambda: from_torch(_Items([(X[0], 1.0)])), "the label of dataset[0] is 1.0"),
        (
            lambda: from_torch(_Items([(X[0], 0), (X[1, :, :4], 1)])),
            "the input of dataset[1] is [1, 4, 8] (torch.float32) but that of dataset[0] is",
        ),
        (lambda: from_torch(_Pairs(4), _Items([(X[0], 5)])), "labels of 'test': label 5 is"),
    ],
)
def test_bad_python_data_is_refused_naming_the_argument(call, message):
    with pytest.raises(DatasetError) as err:
        call()
    assert message in str(err.value)


def test_a_pil_image_item_asks_for_a_transform():
    from PIL import Image

    with pytest.raises(DatasetError, match=r"dataset\[0\] is a PIL image.*ToTensor\(\)"):
        from_torch(_Items([(Image.new("L", (4, 4)), 0)]))
