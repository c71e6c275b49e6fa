"""Datasets and partitioning."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest

from mpsl.data import load_dataset, partition
from mpsl.data.base import read_file
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


def _mnist_dir(path, gz=False):
    """A valid MNIST directory of 5 training and 3 test samples (train images gzipped if gz)."""
    rng = np.random.default_rng(0)
    _idx(path / f"train-images-idx3-ubyte{'.gz' if gz else ''}", np.zeros((5, 28, 28)), gz=gz)
    _idx(path / "train-labels-idx1-ubyte", rng.integers(0, 10, 5))
    _idx(path / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28)))
    _idx(path / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 3))


@pytest.mark.parametrize(
    ("damage", "found"),
    [
        (lambda raw: raw[: len(raw) // 2], "Compressed file ended"),  # truncated download
        (lambda raw: raw[:-8] + bytes(8), "CRC check failed"),  # corrupt trailer
        (lambda raw: raw[:12] + b"\xff" * 20 + raw[32:], ""),  # corrupt deflate stream
        (lambda raw: b"PK\x03\x04" + raw[4:], "Not a gzipped file"),  # another format
    ],
)
def test_mnist_corrupt_gz_names_the_file(tmp_path, damage, found):
    _mnist_dir(tmp_path, gz=True)
    gz = tmp_path / "train-images-idx3-ubyte.gz"
    gz.write_bytes(damage(gz.read_bytes()))
    with pytest.raises(DatasetError) as err:
        load_mnist(tmp_path)
    text = str(err.value)
    assert text.startswith(f"{gz} is not a valid gzip file (") and found in text
    assert "truncated or corrupt; download it again" in text


@pytest.mark.parametrize(
    ("labels", "magic", "bad"),
    [(np.array([1, 10, 2]), 0x08, "10"), (np.array([3, -1, 2]), 0x09, "-1")],
)
def test_mnist_labels_out_of_range_name_the_file_value_and_range(tmp_path, labels, magic, bad):
    _mnist_dir(tmp_path)
    path = tmp_path / "t10k-labels-idx1-ubyte"
    _idx(path, labels, magic_type=magic)
    with pytest.raises(DatasetError) as err:
        load_mnist(tmp_path)
    assert str(err.value).startswith(
        f"{path}: label {bad} is outside the allowed range 0..9 (10 classes; 1 of 3 labels out of "
        "range); MNIST has 10 classes: the file is corrupt or not MNIST's"
    )


def test_mnist_labels_must_be_integers_in_a_vector(tmp_path):
    _mnist_dir(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte"
    raw = bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 5) + np.full(5, 1.5, ">f4").tobytes()
    path.write_bytes(raw)
    with pytest.raises(DatasetError, match=rf"^{path}: labels must be integers; found >f4"):
        load_mnist(tmp_path)
    _idx(path, np.zeros((5, 1)))
    with pytest.raises(DatasetError, match=r"train images \(5, 28, 28\) do not match labels"):
        load_mnist(tmp_path)


def test_an_unreadable_file_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match=rf"cannot read {tmp_path}: Is a directory"):
        read_file(tmp_path)


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


def _cifar_dir(path):
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        _cifar_batch(path / f"data_batch_{i}", 2, rng)
    _cifar_batch(path / "test_batch", 2, rng)


def test_cifar10_truncated_or_corrupt_batch_names_the_file(tmp_path):
    _cifar_dir(tmp_path)
    path = tmp_path / "data_batch_3"
    good = path.read_bytes()
    rng = np.random.default_rng(1)
    damaged = [good[:cut] for cut in range(0, len(good), 97)]
    for _ in range(40):
        raw = bytearray(good)
        raw[rng.integers(0, 200)] = rng.integers(0, 256)
        damaged.append(bytes(raw))
    for raw in damaged:
        path.write_bytes(raw)
        try:
            load_cifar10(tmp_path)
        except DatasetError as exc:
            assert str(exc).startswith(f"{path}")
            assert "download and unpack cifar-10-python.tar.gz again" in str(exc)


@pytest.mark.parametrize(
    ("batch", "found"),
    [
        (np.zeros(3), "(expected a dict with keys b'data' and b'labels'; found ndarray)"),
        ({b"data": np.zeros((2, 3072), np.uint8)}, "found keys [b'data']"),
        (
            {b"data": [[300] * 3072], b"labels": [1]},
            "(expected pixel values 0..255; found 300..300)",
        ),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [[1], [2, 3]]}, "inhomogeneous"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [[1, 2], [3, 4]]}, "labels (2, 2)"),
        ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [1.5]}, "labels must be integers"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, "label 10 is outside"),
        ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [-1]}, "label -1 is outside the"),
    ],
)
def test_cifar10_malformed_batch_names_the_file_and_what_is_wrong(tmp_path, batch, found):
    _cifar_dir(tmp_path)
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps(batch))
    with pytest.raises(DatasetError) as err:
        load_cifar10(tmp_path)
    assert str(err.value).startswith(str(path)) and found in str(err.value)
    assert "allowed range 0..9" in str(err.value) or "outside" not in found


def test_num_classes_must_cover_every_label():
    with pytest.raises(DatasetError) as err:
        load_dataset("digits", num_classes=5)
    assert str(err.value).startswith(
        "dataset 'digits' (training set): label 7 is outside the allowed range 0..4 (5 classes;"
    )
    assert str(err.value).endswith("num_classes is 5: give at least 10 or leave it out")
    assert load_dataset("digits", num_classes=12).num_classes == 10
    for bad in (0, -2, True):
        with pytest.raises(DatasetError, match=r"'synthetic': num_classes must be an integer >= 1"):
            load_dataset("synthetic", num_classes=bad)
    assert load_dataset("synthetic", num_classes=3).train.y.max() <= 2


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
