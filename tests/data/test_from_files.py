"""Your own data from files: an .npz archive and an image folder, loaded, refused, and trained."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_run import run
from mpsl.data import load_dataset, load_images, load_npz
from mpsl.errors import DatasetError

SMALL = ["--data-owners", "2", "--local-epochs", "1", "--batch-size", "8", "--rounds", "1"]
SMALL += ["--batches-per-epoch", "2", "--quiet"]


def _arrays(n: int = 40, m: int = 10, classes: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.random((n, 1, 8, 8), dtype=np.float32),
        "y_train": np.arange(n) % classes,
        "x_test": rng.random((m, 1, 8, 8), dtype=np.float32),
        "y_test": np.arange(m) % classes,
    }


def _npz(path: Path, **changes) -> Path:
    arrays = _arrays() | changes
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_npz_round_trip(tmp_path):
    path = _npz(tmp_path / "data.npz", classes=np.array(["cat", "dog", "eel"]))
    data = load_npz(path)
    assert (len(data.train), len(data.test), data.num_classes) == (40, 10, 3)
    assert data.classes == ("cat", "dog", "eel") and data.input_shape == (1, 8, 8)
    np.testing.assert_array_equal(data.test.x.numpy(), _arrays()["x_test"])
    assert load_dataset("npz", path, num_classes=5).num_classes == 3
    tokens = np.random.default_rng(0).integers(0, 9, (12, 6))
    text = _npz(
        tmp_path / "t.npz", x_train=tokens, y_train=tokens % 8, x_test=tokens, y_test=tokens
    )
    assert load_npz(text).num_classes == 9
    with pytest.raises(DatasetError, match=r"\(training set inputs\): token 8 is outside"):
        load_dataset("npz", text, num_classes=8)


def test_npz_trains_one_round_through_the_cli(tmp_path, monkeypatch, capsys):
    path, out = _npz(tmp_path / "data.npz"), tmp_path / "run"
    args = ["run", "--dataset", "npz", "--data-path", str(path), *SMALL, "--out", str(out)]
    code, _, err = run(args, monkeypatch, capsys)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["dataset"] == "npz" and len(summary["rounds"]) == 1
    assert json.loads((out / "model.json").read_text())["num_classes"] == 3
    code, printed, err = run(["evaluate", str(out), "--json"], monkeypatch, capsys)
    assert code == 0 and json.loads(printed)["samples"] == 10, err


def _pickled_array(path: Path) -> None:
    objects = np.empty(40, dtype=object)
    objects[:] = [np.zeros(3)] * 40
    np.savez(path, **(_arrays() | {"x_train": objects}))


def _truncate(path: Path) -> None:
    _npz(path)
    path.write_bytes(path.read_bytes()[:300])


def _corrupt_member(path: Path) -> None:
    _npz(path)
    raw = bytearray(path.read_bytes())
    start = raw.index(b"y_train.npy") + 200  # inside that member's array bytes
    raw[start : start + 40] = b"\xff" * 40
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda p: _npz(p, y_test=None), "key 'y_test' is missing (the archive holds ['x_test', "),
        (lambda p: _npz(p, extra=np.zeros(2)), "key 'extra' is not one MP-SL reads"),
        (_pickled_array, "key 'x_train' holds Python objects (an object array, stored as a"),
        (lambda p: _npz(p, y_train=np.arange(39) % 3), "key 'x_train' has 40 samples but key "),
        (lambda p: _npz(p, y_train=np.full(40, 1.0)), "key 'y_train': labels must be integers"),
        (lambda p: _npz(p, y_test=np.full(10, -1)), "key 'y_test': label -1 is outside the"),
        (lambda p: _npz(p, x_test=np.zeros((10, 1, 8, 9), np.float32)), "key 'x_test': sample"),
        (lambda p: _npz(p, x_train=np.zeros((40, 1, 8, 8), np.uint8)), "key 'x_train': integer"),
        (lambda p: _npz(p, x_train=np.full((40, 2), "a")), "key 'x_train': expected numbers;"),
        (lambda p: _npz(p, y_train=np.zeros((40, 2), int)), "key 'y_train': expected one class"),
        (lambda p: _npz(p, x_test=np.zeros((0, 1, 8, 8), np.float32)), "'x_test': no samples"),
        (lambda p: _npz(p, classes=np.array([1, 2, 3])), "key 'classes' must be a 1-D array of"),
        (lambda p: _npz(p, classes=np.array(["a", "b"])), "key 'y_train': label 2 is outside"),
        (lambda p: p.write_bytes(b"not an archive"), "is not a NumPy .npz archive (NumPy would"),
        (lambda p: p.write_bytes(pickle.dumps({"x_train": 1})), "only as a pickle, which MP-SL"),
        (lambda p: np.save(p.open("wb"), np.zeros(3)), "holds one array (a .npy file), not an"),
        (_truncate, "is not a NumPy .npz archive (BadZipFile"),
        (_corrupt_member, "key 'y_train' cannot be read ("),
    ],
)
def test_bad_npz_is_refused_naming_the_file_and_key(tmp_path, write, message):
    path = tmp_path / "data.npz"
    write(path)
    with pytest.raises(DatasetError) as err:
        load_npz(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value)


def test_npz_path_must_be_a_file(tmp_path):
    with pytest.raises(DatasetError, match=r"nope.npz does not exist; the npz dataset reads one"):
        load_npz(tmp_path / "nope.npz")
    with pytest.raises(DatasetError, match=r"give the \.npz file \(data_path, --data-path\)"):
        load_dataset("npz")


def _png(path: Path, value: int, size=(8, 8), mode="RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = value if mode in ("L", "P") else (value, 255 - value, 0)
    Image.new(mode, size, colour).save(path)


def _folder(root: Path, split: bool = True, per_class: int = 4) -> Path:
    """Tiny RGB images: classes 'ant' (dark) and 'bee' (bright), in train/ and test/ if split."""
    for part, count in (("train", per_class), ("test", 2)) if split else (("", per_class),):
        for c, name in enumerate(("bee", "ant")):  # written out of order: labels sort by name
            for i in range(count):
                _png(root / part / name / f"{i}.png", 200 * c + i)
    return root


def test_image_folder_with_train_and_test(tmp_path):
    data = load_images(_folder(tmp_path / "imgs"))
    assert data.classes == ("ant", "bee") and data.num_classes == 2
    assert (len(data.train), len(data.test), data.input_shape) == (8, 4, (3, 8, 8))
    assert data.train.y.tolist() == [0] * 4 + [1] * 4
    ant = data.train.x[data.train.y == 0]
    assert float(ant[:, 0].min()) == pytest.approx(200 / 255) and float(data.train.x.max()) <= 1


def test_image_folder_of_class_folders_is_split_the_same_way_every_time(tmp_path):
    root = _folder(tmp_path / "imgs", split=False, per_class=5)
    data, again = load_images(root), load_images(root)
    assert (len(data.train), len(data.test)) == (8, 2)
    assert data.test.x.equal(again.test.x)
    _png(root / "cat" / "a.png", 3, mode="P")  # palette -> RGB
    (root / ".hidden").mkdir()
    (root / "README.txt").write_text("files beside the class folders are ignored")
    assert load_images(root).classes == ("ant", "bee", "cat")


def test_grayscale_images_have_one_channel(tmp_path):
    """L stays, 1 and LA become L (alpha dropped), JPEG reads like PNG."""
    for name, mode, colour in (("a/1.png", "L", 9), ("a/2.png", "LA", (9, 7)), ("b/1.jpg", "L", 9)):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.new(mode, (5, 3), colour).save(tmp_path / name)
    Image.new("1", (5, 3), 1).save(tmp_path / "b" / "2.png")
    data = load_images(tmp_path)
    assert data.input_shape == (1, 3, 5) and len(data.train) + len(data.test) == 4
    pixels = sorted(float(x.max()) for x in (*data.train.x, *data.test.x))
    assert pixels == pytest.approx([9 / 255] * 3 + [1.0], abs=2 / 255)  # JPEG is lossy


def test_image_folder_trains_one_round_through_the_cli(tmp_path, monkeypatch, capsys):
    root, out = _folder(tmp_path / "imgs"), tmp_path / "run"
    args = ["run", "--dataset", "images", "--data-path", str(root), *SMALL, "--out", str(out)]
    code, _, err = run(args, monkeypatch, capsys)
    assert code == 0, err
    model = json.loads((out / "model.json").read_text())
    assert model["input_shape"] == [3, 8, 8] and model["num_classes"] == 2


def _differing_size(root: Path) -> Path:
    _png(root / "test" / "bee" / "9.png", 0, size=(8, 9))
    return root / "test" / "bee" / "9.png"


def _differing_mode(root: Path) -> Path:
    _png(root / "train" / "bee" / "9.png", 0, mode="L")
    return root / "train" / "bee" / "9.png"


def _corrupt(root: Path) -> Path:
    path = root / "train" / "ant" / "1.png"
    path.write_bytes(path.read_bytes()[:40])
    return path


def _empty_class(root: Path) -> Path:
    for path in (root / "test" / "bee").iterdir():
        path.unlink()
    return root / "test" / "bee"


def _sixteen_bit(root: Path) -> Path:
    path = root / "train" / "ant" / "0.png"
    Image.fromarray(np.full((8, 8), 300, np.uint16)).save(path)
    return path


def _other_file(root: Path) -> Path:
    (root / "train" / "ant" / "notes.txt").write_text("x")
    return root / "train" / "ant" / "notes.txt"


def _missing_class(root: Path) -> Path:
    (root / "train" / "cow").mkdir()
    _png(root / "train" / "cow" / "0.png", 9)
    return root / "test"


def _no_test(root: Path) -> Path:
    (root / "test").rename(root / "held-out")
    return root


def _beside(root: Path) -> Path:
    (root / "extra").mkdir()
    return root / "extra"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_differing_size, "is 8x9 pixels but {root}/train/ant/0.png, the first image, is 8x8"),
        (_differing_mode, "is L but {root}/train/ant/0.png, the first image, is RGB"),
        (_corrupt, "cannot be read as an image (UnidentifiedImageError"),
        (_empty_class, ": empty class folder (no .png, .jpg or .jpeg images)"),
        (_sixteen_bit, ": I;16 pixels (16-bit or floating-point) are not read"),
        (_other_file, ": not a .png, .jpg or .jpeg file; a class folder holds only its images"),
        (_missing_class, ": class folder 'cow' is missing (train/ has it)"),
        (_no_test, " has a train/ folder but no test/"),
        (_beside, ": a folder beside train/ and test/"),
    ],
)
def test_bad_image_folder_is_refused_naming_the_file(tmp_path, damage, message):
    root = _folder(tmp_path / "imgs")
    named = damage(root)
    with pytest.raises(DatasetError) as err:
        load_images(root)
    assert str(err.value).startswith(str(named))
    assert message.format(root=root) in str(err.value)


def test_image_folder_must_exist_and_hold_classes(tmp_path):
    with pytest.raises(DatasetError, match=r"image folder .*nope does not exist; expected DIR/"):
        load_images(tmp_path / "nope")
    with pytest.raises(DatasetError, match=r"holds no class folders; expected DIR/<class>/"):
        load_images(tmp_path)
    with pytest.raises(DatasetError, match=r"give the image folder \(data_path, --data-path\)"):
        load_dataset("images")
