"""Datasets and partitioning."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest

from mpsl.data import load_dataset, partition
from mpsl.data.cifar10 import load_cifar10
from mpsl.data.mnist import load_mnist
from mpsl.errors import DatasetError


def test_digits_split_is_fixed():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    assert len(a.train) + len(a.test) == 1797
    assert (a.test.y == b.test.y).all() and (a.train.x == b.train.x).all()


def _idx(path, array, magic_type=0x08, gz=False):
    raw = bytes([0, 0, magic_type, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def test_mnist_reads_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    _idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (5, 28, 28)), gz=True)
    _idx(tmp_path / "train-labels-idx1-ubyte", rng.integers(0, 10, 5))
    _idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 255, (3, 28, 28)))
    _idx(tmp_path / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 3))
    ds = load_mnist(tmp_path)
    assert ds.train.x.shape == (5, 1, 28, 28) and len(ds.test) == 3
    assert float(ds.train.x.max()) <= 1.0


def test_mnist_missing_and_malformed(tmp_path):
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.*not found in"):
        load_mnist(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"garbage!")
    with pytest.raises(DatasetError, match="not an IDX file"):
        load_mnist(tmp_path)
    _idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 28, 28)))
    (tmp_path / "train-images-idx3-ubyte").write_bytes(
        (tmp_path / "train-images-idx3-ubyte").read_bytes()[:-5]
    )
    for f in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        _idx(tmp_path / f, np.zeros((2,)))
    with pytest.raises(DatasetError, match="data bytes"):
        load_mnist(tmp_path)


def _cifar_batch(path, n, rng):
    data = {
        b"data": rng.integers(0, 255, (n, 3072)).astype(np.uint8),
        b"labels": list(rng.integers(0, 10, n)),
    }
    path.write_bytes(pickle.dumps(data))


def test_cifar10_reads_batches_and_refuses_foreign_pickles(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        _cifar_batch(tmp_path / f"data_batch_{i}", 4, rng)
    _cifar_batch(tmp_path / "test_batch", 2, rng)
    ds = load_cifar10(tmp_path)
    assert ds.train.x.shape == (20, 3, 32, 32) and len(ds.test) == 2
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros(3), b"x": print}))
    with pytest.raises(DatasetError, match="not a CIFAR-10 python batch"):
        load_cifar10(tmp_path)


def test_cifar10_missing(tmp_path):
    with pytest.raises(DatasetError, match=r"data_batch_1.*not found"):
        load_cifar10(tmp_path)


def test_unknown_dataset_and_missing_path():
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_dataset("imagenet")
    with pytest.raises(DatasetError, match="give its directory"):
        load_dataset("mnist")


@pytest.mark.parametrize("scheme", ["iid", "dirichlet"])
def test_partition_covers_disjoint_deterministic(scheme):
    labels = np.random.default_rng(1).integers(0, 10, 500)
    shares = partition(labels, 7, scheme, alpha=0.3, seed=4)
    joined = np.concatenate(shares)
    assert len(joined) == 500 and len(np.unique(joined)) == 500
    assert all(len(s) > 0 for s in shares)
    again = partition(labels, 7, scheme, alpha=0.3, seed=4)
    assert all((a == b).all() for a, b in zip(shares, again, strict=False))
    other = partition(labels, 7, scheme, alpha=0.3, seed=5)
    assert any(len(a) != len(b) or (a != b).any() for a, b in zip(shares, other, strict=False))


def test_dirichlet_skews_labels_more_than_iid():
    labels = np.repeat(np.arange(10), 100)

    def skew(shares):
        # mean over owners of the largest class fraction
        return np.mean([np.bincount(labels[s], minlength=10).max() / len(s) for s in shares])

    assert skew(partition(labels, 10, "dirichlet", alpha=0.1, seed=0)) > 2 * skew(
        partition(labels, 10, "iid", seed=0)
    )


def test_partition_errors():
    with pytest.raises(DatasetError, match="only 3 training samples"):
        partition(np.zeros(3), 5)
    with pytest.raises(DatasetError, match="unknown partitioning"):
        partition(np.zeros(10), 2, "shards")
    with pytest.raises(DatasetError, match="alpha must be positive"):
        partition(np.zeros(10), 2, "dirichlet", alpha=0)
