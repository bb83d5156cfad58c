"""Tests for nnlab.data_utils and datasets/get_datasets.sh.

The CIFAR-10 and MNIST loaders are tested on tiny files that the tests write in the exact official
formats (pickled batches with bytes keys; IDX headers with big-endian sizes), built here from first
principles (struct, explicit channel planes) rather than by inverting the loader's own code. The
download script is tested against an address where nothing listens and against a local HTTP server,
so no test needs the internet.
"""

from __future__ import annotations

import collections
import functools
import gzip
import hashlib
import http.server
import os
import pickle
import shutil
import struct
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from autograder.paths import REPO_ROOT
from nnlab import data_utils
from nnlab.data_utils import DatasetNotFoundError

SCRIPT = REPO_ROOT / "datasets" / "get_datasets.sh"
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
    """Tests start without DROPOUT_LAB_DATA, whatever the developer's shell has set."""
    monkeypatch.delenv("DROPOUT_LAB_DATA", raising=False)


# ====================================================================================================
# Writers for the official formats
# ====================================================================================================

def cifar_row(red: np.ndarray, green: np.ndarray, blue: np.ndarray) -> np.ndarray:
    """One CIFAR-10 row: the red plane's 1024 bytes row by row, then green, then blue."""
    return np.concatenate([red.ravel(), green.ravel(), blue.ravel()]).astype(np.uint8)


def write_cifar_batch(path: Path, images_hwc: np.ndarray, labels, bytes_keys: bool = True) -> None:
    """Write a batch like the official ones: a Python-2-era pickle of {b"data": (N, 3072), b"labels": [...]}."""
    data = np.stack([cifar_row(im[:, :, 0], im[:, :, 1], im[:, :, 2]) for im in images_hwc])
    batch = {"batch_label": "test batch", "data": data, "labels": [int(v) for v in labels]}
    if bytes_keys:
        batch = {k.encode(): v for k, v in batch.items()}
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


def make_cifar(root: Path, n_train_per_batch: int = 3, n_test: int = 4, seed: int = 1,
               bytes_keys: bool = True):
    """Write a complete tiny cifar-10-batches-py folder; return the images (N, 32, 32, 3) and labels written."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    train_x, train_y = [], []
    for i in range(1, 6):
        x = rng.integers(0, 256, size=(n_train_per_batch, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, 10, size=n_train_per_batch)
        write_cifar_batch(root / f"data_batch_{i}", x, y, bytes_keys)
        train_x.append(x)
        train_y.append(y)
    test_x = rng.integers(0, 256, size=(n_test, 32, 32, 3), dtype=np.uint8)
    test_y = rng.integers(0, 10, size=n_test)
    write_cifar_batch(root / "test_batch", test_x, test_y, bytes_keys)
    return np.concatenate(train_x), np.concatenate(train_y), test_x, test_y


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """The IDX encoding of an array: 0, 0, type code, number of dims, big-endian int32 sizes, data."""
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    big_endian = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    return header + array.astype(big_endian[type_code]).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool) -> Path:
    raw = idx_bytes(array)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)
    return path


def make_mnist(root: Path, n_train: int = 6, n_test: int = 4, gz=True, seed: int = 2):
    """Write the four MNIST files; gz is a bool or a tuple of 4 bools. Return the uint8 arrays written."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    gzs = gz if isinstance(gz, tuple) else (gz,) * 4
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, size=n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, size=n_test).astype(np.uint8),
    }
    # Known extremes, so that the [0, 1] scaling is checked at both ends.
    arrays["train-images-idx3-ubyte"][2, 3, 17] = 255
    arrays["train-images-idx3-ubyte"][2, 3, 18] = 0
    for (name, arr), g in zip(arrays.items(), gzs):
        write_idx(root / name, arr, g)
    return arrays


# ====================================================================================================
# Where datasets live
# ====================================================================================================

def test_datasets_dir_defaults_to_repo_datasets_folder():
    assert data_utils.datasets_dir() == REPO_ROOT / "datasets"
    assert data_utils.DATASETS_DIR == REPO_ROOT / "datasets"


def test_datasets_dir_follows_env_var_at_call_time(monkeypatch, tmp_path):
    monkeypatch.setenv("DROPOUT_LAB_DATA", str(tmp_path))
    assert data_utils.datasets_dir() == tmp_path


# ====================================================================================================
# digits
# ====================================================================================================

def _digits_reference():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data / 16.0, d.target


def _row_counter(X, y):
    return collections.Counter((row.tobytes(), int(label)) for row, label in zip(X, y))


def test_digits_default_shapes_and_dtypes():
    data = data_utils.get_digits_data()
    expected = {"X_train": (200, 64), "y_train": (200,), "X_val": (500, 64), "y_val": (500,),
                "X_test": (500, 64), "y_test": (500,)}
    assert {k: v.shape for k, v in data.items()} == expected
    for k in ("X_train", "X_val", "X_test"):
        assert data[k].dtype == np.float64
    for k in ("y_train", "y_val", "y_test"):
        assert data[k].dtype == np.int64


@pytest.mark.parametrize("sizes", [(200, 500, 500), (1000, 400, 397), (7, 3, 2)])
def test_digits_splits_are_disjoint_and_come_from_the_dataset_with_their_labels(sizes):
    n_tr, n_val, n_te = sizes
    data = data_utils.get_digits_data(n_tr, n_val, n_te, subtract_mean=False)
    assert (len(data["X_train"]), len(data["X_val"]), len(data["X_test"])) == sizes
    X_ref, y_ref = _digits_reference()
    full = _row_counter(X_ref, y_ref)
    drawn = _row_counter(np.concatenate([data["X_train"], data["X_val"], data["X_test"]]),
                         np.concatenate([data["y_train"], data["y_val"], data["y_test"]]))
    # Every (image, label) pair drawn exists in the dataset, and no more often than it exists there:
    # an image in two splits (or twice in one) would exceed its count.
    assert not (drawn - full), "splits overlap or hold pairs that are not in the digits set"
    if sum(sizes) == len(X_ref):
        assert drawn == full


def test_digits_pixel_values_scaled_to_unit_interval():
    data = data_utils.get_digits_data(1000, 400, 397, subtract_mean=False)
    X = np.concatenate([data["X_train"], data["X_val"], data["X_test"]])
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(X * 16, np.round(X * 16))  # raw values were the integers 0..16


def test_digits_same_seed_same_splits_other_seed_other_splits():
    a = data_utils.get_digits_data(seed=3)
    b = data_utils.get_digits_data(seed=3)
    c = data_utils.get_digits_data(seed=4)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["y_train"], c["y_train"])
    assert not np.array_equal(a["X_train"], c["X_train"])


def test_digits_mean_subtraction_uses_the_training_mean():
    raw = data_utils.get_digits_data(seed=1, subtract_mean=False)
    centred = data_utils.get_digits_data(seed=1, subtract_mean=True)
    mean = raw["X_train"].mean(axis=0)
    assert np.abs(mean).max() > 0.1  # the check below would be vacuous for a zero mean
    for k in ("X_train", "X_val", "X_test"):
        np.testing.assert_allclose(centred[k], raw[k] - mean, atol=1e-12)
    for k in ("y_train", "y_val", "y_test"):
        np.testing.assert_array_equal(centred[k], raw[k])
    np.testing.assert_allclose(centred["X_train"].mean(axis=0), 0.0, atol=1e-12)
    # The validation mean is not what was subtracted.
    assert np.abs(centred["X_val"].mean(axis=0)).max() > 1e-3


def test_digits_unflattened_images_are_one_channel_8x8():
    flat = data_utils.get_digits_data(50, 20, 10, seed=2)
    img = data_utils.get_digits_data(50, 20, 10, seed=2, flatten=False)
    assert img["X_train"].shape == (50, 1, 8, 8)
    assert img["X_val"].shape == (20, 1, 8, 8) and img["X_test"].shape == (10, 1, 8, 8)
    for k in ("X_train", "X_val", "X_test"):
        np.testing.assert_allclose(img[k].reshape(len(img[k]), 64), flat[k])
    # Row-major 8x8: pixel (r, c) is feature 8r + c, as in scikit-learn's images array.
    from sklearn.datasets import load_digits

    d = load_digits()
    raw = data_utils.get_digits_data(50, 20, 10, seed=2, flatten=False, subtract_mean=False)
    first = raw["X_train"][0, 0]
    matches = [i for i in range(len(d.images)) if np.array_equal(d.images[i] / 16.0, first)]
    assert matches, "the first training image is not one of scikit-learn's 8x8 images"


def test_digits_leaves_numpy_global_random_state_untouched():
    np.random.seed(12345)
    before = np.random.get_state()
    data_utils.get_digits_data(seed=7)
    data_utils.get_data("digits", seed=8)
    after = np.random.get_state()
    assert before[0] == after[0]
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2:] == after[2:]


def test_digits_returned_arrays_are_writable_and_independent():
    a = data_utils.get_digits_data(10, 5, 5, subtract_mean=False)
    a["X_train"][:] = -1.0  # must neither fail nor change what the next call returns
    b = data_utils.get_digits_data(10, 5, 5, subtract_mean=False)
    assert b["X_train"].min() >= 0.0


def test_digits_sizes_checked():
    data_utils.get_digits_data(1797, 0, 0)  # exactly the whole set is fine
    with pytest.raises(ValueError, match="1797"):
        data_utils.get_digits_data(1000, 500, 298)
    with pytest.raises(ValueError, match="num_validation"):
        data_utils.get_digits_data(10, -1, 10)


# ====================================================================================================
# CIFAR-10
# ====================================================================================================

@pytest.mark.parametrize("bytes_keys", [True, False], ids=["bytes-keys", "str-keys"])
def test_load_cifar10_shapes_values_and_order(tmp_path, bytes_keys):
    root = tmp_path / "cifar-10-batches-py"
    x_tr, y_tr, x_te, y_te = make_cifar(root, bytes_keys=bytes_keys)
    X_train, y_train, X_test, y_test = data_utils.load_CIFAR10(root)
    assert X_train.shape == (15, 32, 32, 3) and X_test.shape == (4, 32, 32, 3)
    assert X_train.dtype == np.float64 and X_test.dtype == np.float64
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    # Batches 1..5 in order, images in file order, labels alongside.
    np.testing.assert_array_equal(X_train, x_tr.astype(np.float64))
    np.testing.assert_array_equal(y_train, y_tr)
    np.testing.assert_array_equal(X_test, x_te.astype(np.float64))
    np.testing.assert_array_equal(y_test, y_te)


def test_load_cifar10_unpacks_channel_planes(tmp_path):
    """A single bright byte in a known plane lands at the known (row, column, channel)."""
    root = tmp_path / "cifar-10-batches-py"
    make_cifar(root, n_train_per_batch=1, n_test=1)
    data = np.zeros((2, 3072), dtype=np.uint8)
    data[0, 1024 + 5 * 32 + 7] = 200   # image 0: green plane, row 5, column 7
    data[1, 2048 + 31 * 32 + 0] = 99   # image 1: blue plane, row 31, column 0
    data[1, 0 * 32 + 31] = 17          # image 1: red plane, row 0, column 31
    with open(root / "data_batch_1", "wb") as f:
        pickle.dump({b"data": data, b"labels": [3, 8], b"batch_label": b"x"}, f, protocol=2)
    X_train, y_train, _, _ = data_utils.load_CIFAR10(root)
    assert X_train.shape == (6, 32, 32, 3)
    assert X_train[0, 5, 7, 1] == 200.0
    assert X_train[1, 31, 0, 2] == 99.0
    assert X_train[1, 0, 31, 0] == 17.0
    assert np.count_nonzero(X_train[:2]) == 3
    assert list(y_train[:2]) == [3, 8]


def test_load_cifar10_rejects_malformed_batch(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    make_cifar(root)
    with open(root / "data_batch_3", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f, protocol=2)
    with pytest.raises(ValueError, match="data_batch_3"):
        data_utils.load_CIFAR10(root)


def test_get_cifar10_data_splits_layout_and_mean(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    x_tr, y_tr, x_te, y_te = make_cifar(root)
    raw = data_utils.get_CIFAR10_data(10, 3, 2, subtract_mean=False, root=root)
    assert raw["X_train"].shape == (10, 3, 32, 32)
    assert raw["X_val"].shape == (3, 3, 32, 32) and raw["X_test"].shape == (2, 3, 32, 32)
    # Channels first: X[n, c, r, col] is the stored pixel (r, col) of channel c.
    np.testing.assert_array_equal(raw["X_train"], x_tr[:10].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(raw["X_val"], x_tr[10:13].transpose(0, 3, 1, 2))  # next after train
    np.testing.assert_array_equal(raw["X_test"], x_te[:2].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(raw["y_train"], y_tr[:10])
    np.testing.assert_array_equal(raw["y_val"], y_tr[10:13])
    np.testing.assert_array_equal(raw["y_test"], y_te[:2])
    for k in ("X_train", "X_val", "X_test"):
        assert raw[k].dtype == np.float64 and raw[k].flags.c_contiguous
    for k in ("y_train", "y_val", "y_test"):
        assert raw[k].dtype == np.int64

    centred = data_utils.get_CIFAR10_data(10, 3, 2, root=root)
    mean = raw["X_train"].mean(axis=0)
    for k in ("X_train", "X_val", "X_test"):
        np.testing.assert_allclose(centred[k], raw[k] - mean, atol=1e-9)


def test_get_cifar10_data_sizes_checked(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    make_cifar(root)  # 15 training images, 4 test images
    with pytest.raises(ValueError, match="15"):
        data_utils.get_CIFAR10_data(14, 2, 1, root=root)
    with pytest.raises(ValueError, match="num_test"):
        data_utils.get_CIFAR10_data(10, 2, 5, root=root)


def test_get_cifar10_data_default_root_follows_env_var(tmp_path, monkeypatch):
    make_cifar(tmp_path / "cifar-10-batches-py")
    monkeypatch.setenv("DROPOUT_LAB_DATA", str(tmp_path))
    data = data_utils.get_CIFAR10_data(num_training=12, num_validation=3, num_test=4)
    assert data["X_train"].shape == (12, 3, 32, 32)


def test_missing_cifar10_folder_names_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("DROPOUT_LAB_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as info:
        data_utils.get_data("cifar10")
    msg = str(info.value)
    assert "bash datasets/get_datasets.sh cifar10" in msg
    assert str(tmp_path / "cifar-10-batches-py") in msg
    assert 'get_data("digits")' in msg
    assert isinstance(info.value, FileNotFoundError)


def test_missing_cifar10_batch_file_is_named(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    make_cifar(root)
    (root / "data_batch_4").unlink()
    with pytest.raises(DatasetNotFoundError, match="data_batch_4") as info:
        data_utils.load_CIFAR10(root)
    assert "get_datasets.sh cifar10" in str(info.value)


# ====================================================================================================
# MNIST
# ====================================================================================================

@pytest.mark.parametrize("gz", [True, False, (True, False, False, True)], ids=["gz", "plain", "mixed"])
def test_load_mnist_shapes_values_and_order(tmp_path, gz):
    arrays = make_mnist(tmp_path, gz=gz)
    X_train, y_train, X_test, y_test = data_utils.load_mnist(tmp_path)
    assert X_train.shape == (6, 1, 28, 28) and X_test.shape == (4, 1, 28, 28)
    assert X_train.dtype == np.float64 and y_train.dtype == np.int64 and y_test.dtype == np.int64
    np.testing.assert_array_equal(X_train[:, 0], arrays["train-images-idx3-ubyte"] / 255.0)
    np.testing.assert_array_equal(X_test[:, 0], arrays["t10k-images-idx3-ubyte"] / 255.0)
    np.testing.assert_array_equal(y_train, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte"])
    assert X_train[2, 0, 3, 17] == 1.0 and X_train[2, 0, 3, 18] == 0.0
    assert X_train.min() >= 0.0 and X_train.max() <= 1.0


def test_read_idx_parses_the_header_by_hand(tmp_path):
    # Written byte by byte: magic 0x00000803, sizes 2, 3, 4 as big-endian int32, then 24 bytes.
    path = tmp_path / "tiny-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03" + b"\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\x04"
                     + bytes(range(24)))
    arr = data_utils.read_idx(path)
    assert arr.shape == (2, 3, 4) and arr.dtype == np.uint8
    assert arr[1, 2, 3] == 23 and arr[0, 1, 0] == 4


def test_read_idx_big_endian_types(tmp_path):
    values = np.array([[1, -2, 70000]], dtype=np.int32)
    path = tmp_path / "ints.idx"
    path.write_bytes(idx_bytes(values, type_code=0x0C))
    np.testing.assert_array_equal(data_utils.read_idx(path), values)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("corruption", ["magic", "type", "truncated", "too-long", "short-header"])
def test_corrupt_idx_raises_value_error_naming_the_file(tmp_path, corruption, gz):
    make_mnist(tmp_path, gz=False)
    good = (tmp_path / "train-labels-idx1-ubyte").read_bytes()
    bad = {
        "magic": b"\x01" + good[1:],
        "type": good[:2] + b"\x07" + good[3:],
        "truncated": good[:-1],
        "too-long": good + b"\x00",
        "short-header": good[:6],
    }[corruption]
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    name = "train-labels-idx1-ubyte" + (".gz" if gz else "")
    if gz:
        with gzip.open(tmp_path / name, "wb") as f:
            f.write(bad)
    else:
        (tmp_path / name).write_bytes(bad)
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        data_utils.load_mnist(tmp_path)


def test_gz_file_that_is_not_gzip_raises_value_error(tmp_path):
    make_mnist(tmp_path, gz=True)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"this is not gzip data at all")
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz"):
        data_utils.load_mnist(tmp_path)


def test_mnist_image_and_label_counts_must_agree(tmp_path):
    make_mnist(tmp_path, gz=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8), gz=False)  # 4 images
    with pytest.raises(ValueError, match="t10k"):
        data_utils.load_mnist(tmp_path)


def test_mnist_labels_file_in_place_of_images_rejected(tmp_path):
    make_mnist(tmp_path, gz=False)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros(6, np.uint8), gz=False)
    with pytest.raises(ValueError, match="train-images-idx3-ubyte"):
        data_utils.load_mnist(tmp_path)


def test_get_mnist_data_splits_and_mean(tmp_path):
    arrays = make_mnist(tmp_path)
    imgs = arrays["train-images-idx3-ubyte"] / 255.0
    labels = arrays["train-labels-idx1-ubyte"]
    raw = data_utils.get_mnist_data(3, 2, 3, subtract_mean=False, root=tmp_path)
    np.testing.assert_array_equal(raw["X_train"][:, 0], imgs[:3])
    np.testing.assert_array_equal(raw["X_val"][:, 0], imgs[3:5])  # taken right after the training split
    np.testing.assert_array_equal(raw["X_test"][:, 0], arrays["t10k-images-idx3-ubyte"][:3] / 255.0)
    np.testing.assert_array_equal(raw["y_train"], labels[:3])
    np.testing.assert_array_equal(raw["y_val"], labels[3:5])
    assert raw["X_val"].shape == (2, 1, 28, 28)
    centred = data_utils.get_mnist_data(3, 2, 3, root=tmp_path)
    mean = raw["X_train"].mean(axis=0)
    for k in ("X_train", "X_val", "X_test"):
        np.testing.assert_allclose(centred[k], raw[k] - mean, atol=1e-12)
    with pytest.raises(ValueError):
        data_utils.get_mnist_data(5, 2, 1, root=tmp_path)


def test_missing_mnist_names_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("DROPOUT_LAB_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as info:
        data_utils.get_data("mnist")
    msg = str(info.value)
    assert "bash datasets/get_datasets.sh mnist" in msg and str(tmp_path / "mnist") in msg
    assert 'get_data("digits")' in msg


def test_missing_mnist_file_is_named(tmp_path):
    make_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match="t10k-labels-idx1-ubyte") as info:
        data_utils.load_mnist(tmp_path)
    assert "get_datasets.sh mnist" in str(info.value)


# ====================================================================================================
# get_data
# ====================================================================================================

def test_get_data_default_is_digits():
    a = data_utils.get_data()
    b = data_utils.get_digits_data()
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_get_data_passes_options_on(tmp_path):
    d = data_utils.get_data("digits", num_training=30, num_validation=20, num_test=10, flatten=False)
    assert d["X_train"].shape == (30, 1, 8, 8) and d["X_test"].shape == (10, 1, 8, 8)
    make_cifar(tmp_path / "c")
    c = data_utils.get_data("CIFAR-10", num_training=5, num_validation=2, num_test=1, root=tmp_path / "c")
    assert c["X_train"].shape == (5, 3, 32, 32)
    make_mnist(tmp_path / "m")
    m = data_utils.get_data("mnist", num_training=4, num_validation=1, num_test=2, root=tmp_path / "m")
    assert m["X_train"].shape == (4, 1, 28, 28) and m["X_test"].shape == (2, 1, 28, 28)


def test_get_data_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError) as info:
        data_utils.get_data("imagenet")
    msg = str(info.value)
    assert "imagenet" in msg
    for known in ("digits", "cifar10", "mnist"):
        assert known in msg


# ====================================================================================================
# datasets/get_datasets.sh
# ====================================================================================================

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


def run_script(data_dir: Path, *args: str, cifar_url: str = UNREACHABLE, mnist_url: str = UNREACHABLE,
               script: Path = SCRIPT, cwd: Path | None = None, path_env: str | None = None):
    env = dict(os.environ, DROPOUT_LAB_DATA=str(data_dir),
               DROPOUT_LAB_CIFAR_URL=cifar_url, DROPOUT_LAB_MNIST_URL=mnist_url)
    if path_env is not None:
        env["PATH"] = path_env
    start = time.monotonic()
    proc = subprocess.run([shutil.which("bash", path=path_env) or "bash", str(script), *args],
                          cwd=cwd or data_dir.parent, env=env, capture_output=True, text=True, timeout=60)
    return proc, time.monotonic() - start


def all_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_script_is_executable():
    assert SCRIPT.is_file() and os.access(SCRIPT, os.X_OK)


@needs_bash
@pytest.mark.parametrize("pre_create", [True, False], ids=["existing-folder", "new-folder"])
def test_script_without_network_fails_fast_and_leaves_nothing(tmp_path, pre_create):
    data_dir = tmp_path / "data"
    if pre_create:
        data_dir.mkdir()
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    proc, elapsed = run_script(data_dir, cwd=elsewhere)  # default: all
    assert proc.returncode != 0
    assert elapsed < 30
    err = proc.stderr
    assert "cifar-10-python.tar.gz" in err and "train-images-idx3-ubyte.gz" in err
    assert "127.0.0.1:9" in err
    assert "digits" in err
    assert all_files(data_dir) == []
    assert data_dir.exists() == pre_create  # a folder it created for nothing is removed again
    assert all_files(elsewhere) == []


@needs_bash
def test_script_single_dataset_only_touches_that_one(tmp_path):
    proc, _ = run_script(tmp_path / "data", "mnist")
    assert proc.returncode != 0
    assert "train-images-idx3-ubyte.gz" in proc.stderr
    assert "cifar" not in proc.stderr.lower().replace("dropout_lab_cifar_url", "")


@needs_bash
def test_script_rejects_unknown_dataset(tmp_path):
    proc, _ = run_script(tmp_path / "data", "imagenet")
    assert proc.returncode == 2
    assert "imagenet" in proc.stderr and "usage" in proc.stderr


@needs_bash
def test_script_skips_datasets_already_present(tmp_path):
    data_dir = tmp_path / "data"
    make_cifar(data_dir / "cifar-10-batches-py", n_train_per_batch=1, n_test=1)
    make_mnist(data_dir / "mnist", gz=(True, False, True, False))
    before = {p: (data_dir / p).read_bytes() for p in all_files(data_dir) if (data_dir / p).is_file()}
    proc, _ = run_script(data_dir)  # the URLs are unreachable: it must not even try
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("skipping") == 2
    after = {p: (data_dir / p).read_bytes() for p in all_files(data_dir) if (data_dir / p).is_file()}
    assert after == before


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture
def http_folder(tmp_path):
    """A local HTTP server over a temporary folder; yields (folder, base_url)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _serve_fake_datasets(served: Path, work: Path):
    """Put a tiny CIFAR tarball and tiny MNIST .gz files into the served folder; return their md5s."""
    make_cifar(work / "cifar-10-batches-py", n_train_per_batch=2, n_test=3)
    with tarfile.open(served / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(work / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    make_mnist(served, gz=True)
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in served.iterdir()}


@needs_bash
def test_script_refuses_downloads_with_wrong_md5_and_leaves_nothing(tmp_path, http_folder):
    served, url = http_folder
    _serve_fake_datasets(served, tmp_path / "work")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    proc, _ = run_script(data_dir, cifar_url=url, mnist_url=url + "/")
    assert proc.returncode != 0
    assert "MD5" in proc.stderr
    assert "cifar-10-python.tar.gz" in proc.stderr and "train-images-idx3-ubyte.gz" in proc.stderr
    assert all_files(data_dir) == []


@needs_bash
def test_script_downloads_verifies_and_places_files_for_the_loaders(tmp_path, http_folder):
    """End to end against a local server: a copy of the script whose MD5 sums match the fake files."""
    served, url = http_folder
    sums = _serve_fake_datasets(served, tmp_path / "work")
    text = SCRIPT.read_text()
    official = {
        "cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a",
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }
    for name, md5 in official.items():
        assert text.count(md5) == 1, f"official MD5 of {name} not found once in the script"
        text = text.replace(md5, sums[name])
    script = tmp_path / "get_datasets_copy.sh"
    script.write_text(text)

    data_dir = tmp_path / "data"
    proc, _ = run_script(data_dir, cifar_url=url, mnist_url=url, script=script)
    assert proc.returncode == 0, proc.stderr
    files = all_files(data_dir)
    assert not [f for f in files if Path(f).name.startswith(".")], files  # no temporary left over
    assert "cifar-10-python.tar.gz" not in files  # unpacked, not kept
    data = data_utils.get_CIFAR10_data(8, 2, 3, root=data_dir / "cifar-10-batches-py")
    assert data["X_train"].shape == (8, 3, 32, 32)
    X_train, y_train, X_test, _ = data_utils.load_mnist(data_dir / "mnist")
    assert X_train.shape == (6, 1, 28, 28) and X_test.shape == (4, 1, 28, 28)

    # A second run finds everything and does not download again (the server is gone from its view).
    proc2, _ = run_script(data_dir, script=script)
    assert proc2.returncode == 0 and proc2.stdout.count("skipping") == 2


@needs_bash
def test_script_completes_a_partial_folder_and_keeps_what_is_there(tmp_path, http_folder):
    served, url = http_folder
    sums = _serve_fake_datasets(served, tmp_path / "work")
    text = SCRIPT.read_text()
    for name, md5 in (("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
                      ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
                      ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c")):
        text = text.replace(md5, sums[name])
    script = tmp_path / "get_datasets_copy.sh"
    script.write_text(text)

    data_dir = tmp_path / "data"
    # Earlier runs left one CIFAR batch and two MNIST files (one plain, one gzipped), all different
    # from what the server has; the training files' MD5s were NOT replaced, so fetching them would fail.
    kept_x, _, _, _ = make_cifar(tmp_path / "old-cifar", n_train_per_batch=2, n_test=3, seed=99)
    (data_dir / "cifar-10-batches-py").mkdir(parents=True)
    shutil.copy(tmp_path / "old-cifar" / "data_batch_1", data_dir / "cifar-10-batches-py")
    old = make_mnist(tmp_path / "old-mnist", gz=(False, True, True, True), seed=98)
    (data_dir / "mnist").mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte.gz"):
        shutil.copy(tmp_path / "old-mnist" / name, data_dir / "mnist")

    proc, _ = run_script(data_dir, cifar_url=url, mnist_url=url, script=script)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (data_dir / "mnist").iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte.gz"]
    X_train, y_train, _, _ = data_utils.load_mnist(data_dir / "mnist")
    np.testing.assert_array_equal(X_train[:, 0], old["train-images-idx3-ubyte"] / 255.0)
    X_cifar, _, _, _ = data_utils.load_CIFAR10(data_dir / "cifar-10-batches-py")
    np.testing.assert_array_equal(X_cifar[:2], kept_x[:2])  # batch 1 kept, not overwritten
    assert not [f for f in all_files(data_dir) if Path(f).name.startswith(".")]


@needs_bash
def test_script_falls_back_to_wget(tmp_path):
    tools = ["bash", "wget", "mktemp", "md5sum", "cut", "dirname", "basename", "mkdir", "rmdir", "rm",
             "mv", "tar", "gzip"]
    found = {t: shutil.which(t) for t in tools}
    if any(v is None for v in found.values()):
        pytest.skip("wget or a core tool is missing")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, target in found.items():
        (bin_dir / tool).symlink_to(target)
    proc, elapsed = run_script(tmp_path / "data", "mnist", path_env=str(bin_dir))
    assert proc.returncode != 0 and elapsed < 30
    assert "wget" in proc.stderr and "127.0.0.1:9" in proc.stderr
    assert all_files(tmp_path / "data") == []
