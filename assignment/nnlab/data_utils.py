"""Data loaders for the course library.

Three datasets can feed the networks of this assignment:

* **digits** (the default): scikit-learn's handwritten digits, 1797 grey images of 8x8 pixels in ten
  classes. The set ships inside the scikit-learn package, so it needs no download and works offline.
* **CIFAR-10**: 60000 colour images of 32x32 pixels in ten classes (50000 for training, 10000 for
  testing), read from the official "CIFAR-10 python version" folder ``cifar-10-batches-py``.
* **MNIST**: 70000 grey images of handwritten digits, 28x28 pixels (60000 for training, 10000 for
  testing), read from the four official IDX files (plain or gzipped).

CIFAR-10 and MNIST are not shipped with the course. They live in the folder ``datasets`` beside
``nnlab/`` (your assignment folder's own ``datasets/``), or wherever ``$DROPOUT_LAB_DATA`` points. In
the instructors' kit, whose ``datasets/get_datasets.sh`` fetches them, the kit's shared ``datasets``
folder is used while the tree has none of its own. When one is missing, the loaders raise
:class:`DatasetNotFoundError` with a message that says what was expected where and how to get it.

Every ``get_*_data`` function returns the same kind of dictionary, as in CS231n::

    data = get_data("digits")
    data["X_train"], data["y_train"]   # training split: the network learns from it
    data["X_val"],   data["y_val"]     # validation split: to choose hyperparameters
    data["X_test"],  data["y_test"]    # test split: to report the final accuracy, once

Images are float64 arrays whose first axis indexes the examples; labels are int64 arrays of class
indices 0..9. With ``subtract_mean=True`` the mean image of the *training* split is subtracted from all
three splits (the validation and test images must not influence the preprocessing).
"""

from __future__ import annotations

import gzip
import os
import pickle
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = [
    "DATASETS_DIR",
    "DatasetNotFoundError",
    "datasets_dir",
    "get_data",
    "get_digits_data",
    "load_CIFAR10",
    "get_CIFAR10_data",
    "load_mnist",
    "get_mnist_data",
    "read_idx",
]

# The environment variable that moves the datasets folder, for instance onto a shared disk.
DATA_ENV_VAR = "DROPOUT_LAB_DATA"

# The script that downloads CIFAR-10 and MNIST, relative to the root of the course folder.
FETCH_SCRIPT = "datasets/get_datasets.sh"

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"

MNIST_FOLDER = "mnist"
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def datasets_dir() -> Path:
    """Return the folder where CIFAR-10 and MNIST are looked for.

    Outputs:
    - ``$DROPOUT_LAB_DATA`` when that environment variable is set and not empty;
    - else the ``datasets`` folder beside ``nnlab/`` (in the folder that holds the notebook);
    - except in the instructors' kit, where a tree without its own ``datasets`` folder uses the kit's
      (the folder above the tree, recognised by the download script it holds).

    The variable is read on every call, so setting it in a running notebook takes effect at once.
    """
    override = os.environ.get(DATA_ENV_VAR)
    if override:
        return Path(override).expanduser()
    own = Path(__file__).resolve().parents[1] / "datasets"
    kit = _kit_datasets()
    return kit if kit is not None and not own.is_dir() else own


def _kit_datasets() -> Path | None:
    """The instructors' kit's datasets folder, when this library sits in the kit (beside it)."""
    kit = Path(__file__).resolve().parents[2] / "datasets"
    return kit if (kit / Path(FETCH_SCRIPT).name).is_file() else None


# The folder as it was when this module was imported; the loaders call datasets_dir() instead, so that
# a later change of the environment variable is honoured.
DATASETS_DIR = datasets_dir()


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where the loader looked for them.

    The message says which file or folder was expected where, and how to fetch the dataset.
    """


# Where each data set can be downloaded by hand, and what to unpack where.
DOWNLOADS = {
    "cifar10": "the CIFAR-10 python version, https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, "
               f"unpacked so that {CIFAR10_FOLDER}/ (with data_batch_1 ... test_batch) is inside that folder",
    "mnist": f"the four MNIST IDX files ({', '.join(MNIST_FILES.values())}, plain or .gz) put in its "
             f"{MNIST_FOLDER}/ subfolder; they are published at https://ossci-datasets.s3.amazonaws.com/mnist/",
}


def _not_found(dataset: str, expected: Path, what: str) -> DatasetNotFoundError:
    """Build the error for a missing ``dataset`` (``"cifar10"`` or ``"mnist"``)."""
    folder = datasets_dir()
    if _kit_datasets() is not None:  # the instructors' kit, whose script fetches it
        how = (f"To download it, run this command from the root of the course folder (it needs a network):\n"
               f"    bash {FETCH_SCRIPT} {dataset}\n"
               f"It saves into ${DATA_ENV_VAR} when that is set, else into datasets/; the loaders look in the "
               f"same place (now: {folder}).\n")
    else:
        how = (f"To use it, create the folder {folder} and download into it {DOWNLOADS[dataset]}. "
               f"(Set ${DATA_ENV_VAR} to use another folder.)\n")
    return DatasetNotFoundError(
        f"{what} not found: expected {expected}.\n" + how
        + 'The embedded digits set needs no download: get_data("digits").'
    )


def _check_sizes(sizes: dict, available: int, what: str) -> None:
    """Raise ValueError unless every size is a non-negative int and their sum fits in ``available``."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    total = sum(int(v) for v in sizes.values())
    if total > available:
        asked = " + ".join(f"{name}={int(v)}" for name, v in sizes.items())
        raise ValueError(f"{asked} = {total} examples asked for, but {what} has only {available}")


def _split_dict(X_train, y_train, X_val, y_val, X_test, y_test, subtract_mean: bool) -> dict:
    """Subtract the training mean image (when asked) and pack the six arrays into the usual dict."""
    if subtract_mean and len(X_train) > 0:
        # The mean comes from the training split alone: the validation and test images stand for data
        # the model has never seen, so they must not shape the preprocessing.
        mean_image = X_train.mean(axis=0)
        X_train = X_train - mean_image
        X_val = X_val - mean_image
        X_test = X_test - mean_image
    return {
        "X_train": X_train, "y_train": y_train,
        "X_val": X_val, "y_val": y_val,
        "X_test": X_test, "y_test": y_test,
    }


def _split_official(train_all, test_all, num_training, num_validation, num_test, name, subtract_mean):
    """Split a data set that comes as an official training and test set, as CIFAR-10 and MNIST do.

    The first num_training training examples form the training split, the next num_validation the
    validation split, and the first num_test test examples the test split. ``train_all`` and
    ``test_all`` are (images, labels) pairs. The splits are copies, so the returned arrays do not
    keep the whole data set alive.
    """
    (X_train_all, y_train_all), (X_test_all, y_test_all) = train_all, test_all
    _check_sizes({"num_training": num_training, "num_validation": num_validation},
                 len(X_train_all), f"the {name} training set")
    _check_sizes({"num_test": num_test}, len(X_test_all), f"the {name} test set")
    val = slice(num_training, num_training + num_validation)
    # Subtracting the mean makes new image arrays anyway; copy them here only when it does not.
    own_images = (lambda images: images) if subtract_mean and num_training > 0 else np.copy
    return _split_dict(
        own_images(X_train_all[:num_training]), y_train_all[:num_training].copy(),
        own_images(X_train_all[val]), y_train_all[val].copy(),
        own_images(X_test_all[:num_test]), y_test_all[:num_test].copy(),
        subtract_mean,
    )


# ----------------------------------------------------------------------------------------------------
# digits (embedded, no download)
# ----------------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Read scikit-learn's digits once per session; the arrays are made read-only so nobody edits them."""
    from sklearn.datasets import load_digits  # imported here: only this dataset needs scikit-learn

    digits = load_digits()
    X = np.asarray(digits.data, dtype=np.float64) / 16.0  # pixel values are 0..16
    y = np.asarray(digits.target, dtype=np.int64)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def get_digits_data(num_training: int = 200, num_validation: int = 500, num_test: int = 500,
                    seed: int = 0, subtract_mean: bool = True, flatten: bool = True) -> dict:
    """Load scikit-learn's digits set and split it into train / validation / test.

    Inputs:
    - num_training, num_validation, num_test: sizes of the three splits; together at most 1797.
      The default training split is small on purpose: a network can then overfit it, which is what
      dropout is meant to fight.
    - seed: the splits are drawn from a random permutation of the 1797 images made with this seed.
      The same seed always gives the same splits.
    - subtract_mean: if True, subtract the mean image of the training split from all three splits.
    - flatten: if True, images are rows of 64 pixels; if False, they have shape (1, 8, 8) (one channel).

    Returns a dict with keys X_train, y_train, X_val, y_val, X_test, y_test:
    - X_*: float64 arrays of shape (N, 64), or (N, 1, 8, 8) when flatten is False, with pixel values
      scaled to [0, 1] before any mean subtraction.
    - y_*: int64 arrays of shape (N,) with the digit shown, 0..9.

    The three splits never share an image. Raises ValueError if the sizes add up to more than 1797.
    """
    X, y = _digits_arrays()
    sizes = {"num_training": num_training, "num_validation": num_validation, "num_test": num_test}
    _check_sizes(sizes, len(X), "the digits set")

    # A private generator: the rest of the library (dropout masks, weight initialisation) draws from
    # numpy's global generator, which the notebook seeds. Loading data must not move that generator,
    # or the notebook's numbers would depend on whether (and how often) the data were loaded.
    order = np.random.RandomState(seed).permutation(len(X))
    bounds = np.cumsum([0, num_training, num_validation, num_test])
    idx_train, idx_val, idx_test = (order[a:b] for a, b in zip(bounds[:-1], bounds[1:]))

    shape = (-1, 64) if flatten else (-1, 1, 8, 8)
    # Fancy indexing copies, so the caller gets writable arrays of its own.
    splits = [(X[idx].reshape(shape), y[idx].copy()) for idx in (idx_train, idx_val, idx_test)]
    (X_train, y_train), (X_val, y_val), (X_test, y_test) = splits
    return _split_dict(X_train, y_train, X_val, y_val, X_test, y_test, subtract_mean)


# ----------------------------------------------------------------------------------------------------
# CIFAR-10 (python pickle batches)
# ----------------------------------------------------------------------------------------------------

def _load_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 batch file.

    Inputs:
    - path: a pickle of a dict whose ``data`` entry is an (N, 3072) uint8 array and whose ``labels``
      entry is a list of N ints. Each row holds a 32x32 image as three planes of 1024 bytes, red then
      green then blue, each plane row by row.

    Returns (X, y): X float64 of shape (N, 32, 32, 3) (height, width, channel), y int64 of shape (N,).
    """
    with open(path, "rb") as f:
        # The batches were pickled by Python 2; encoding="bytes" reads their str keys as bytes.
        # Unpickling is acceptable here: the file is a dataset the instructor downloaded.
        batch = pickle.load(f, encoding="bytes")
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: expected a pickled dict, found {type(batch).__name__}")

    def entry(key: str):
        for k in (key.encode(), key):  # bytes keys from the official files, str keys from re-pickled ones
            if k in batch:
                return batch[k]
        raise ValueError(f"{path}: no {key!r} entry in the batch")

    data = np.asarray(entry("data"))
    labels = np.asarray(entry("labels"), dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: 'data' should have shape (N, 3072), found {data.shape}")
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: {data.shape[0]} images but {labels.size} labels")
    # (N, 3072) -> (N, channel, row, column) -> (N, row, column, channel).
    X = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float64)
    return X, labels


def load_CIFAR10(root) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load all of CIFAR-10 from the official python-version folder.

    Inputs:
    - root: path of the folder ``cifar-10-batches-py``, holding data_batch_1 .. data_batch_5 and
      test_batch.

    Returns (X_train, y_train, X_test, y_test):
    - X_train: float64, shape (50000, 32, 32, 3), pixel values 0..255 (channels last, as stored).
    - y_train: int64, shape (50000,), class indices 0..9.
    - X_test, y_test: the same for the 10000 test images.

    Raises DatasetNotFoundError if the folder or one of its files is missing.
    """
    root = Path(root)
    if not root.is_dir():
        raise _not_found("cifar10", root, f"CIFAR-10 folder {CIFAR10_FOLDER!r}")
    for name in CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE,):
        if not (root / name).is_file():
            raise _not_found("cifar10", root / name, f"CIFAR-10 batch file {name!r}")

    train = [_load_cifar_batch(root / name) for name in CIFAR10_TRAIN_FILES]
    X_train = np.concatenate([X for X, _ in train])
    y_train = np.concatenate([y for _, y in train])
    X_test, y_test = _load_cifar_batch(root / CIFAR10_TEST_FILE)
    return X_train, y_train, X_test, y_test


def get_CIFAR10_data(num_training: int = 49000, num_validation: int = 1000, num_test: int = 1000,
                     subtract_mean: bool = True, root=None) -> dict:
    """Load CIFAR-10 and split it into train / validation / test, ready for a network.

    Inputs:
    - num_training: the first num_training training images form the training split.
    - num_validation: the next num_validation training images form the validation split (so the
      validation split is taken from the end of the official training set when the sizes add to 50000).
    - num_test: the first num_test images of the official test set.
    - subtract_mean: if True, subtract the mean image of the training split from all three splits.
    - root: the ``cifar-10-batches-py`` folder; default ``datasets_dir() / "cifar-10-batches-py"``.

    Returns a dict with keys X_train, y_train, X_val, y_val, X_test, y_test; images are float64 with
    channels first, shape (N, 3, 32, 32); labels int64 of shape (N,).

    Raises DatasetNotFoundError if the files are missing, ValueError if the sizes do not fit.
    """
    if root is None:
        root = datasets_dir() / CIFAR10_FOLDER
    X_train_all, y_train_all, X_test_all, y_test_all = load_CIFAR10(root)
    data = _split_official((X_train_all, y_train_all), (X_test_all, y_test_all),
                           num_training, num_validation, num_test, "CIFAR-10", subtract_mean)
    for key in ("X_train", "X_val", "X_test"):
        # Channels first, as the layers of a convolutional network expect.
        data[key] = np.ascontiguousarray(data[key].transpose(0, 3, 1, 2))
    return data


# ----------------------------------------------------------------------------------------------------
# MNIST (IDX files)
# ----------------------------------------------------------------------------------------------------

# IDX type codes (third byte of the magic number) and the big-endian numpy types they stand for.
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path) -> np.ndarray:
    """Read one file in the IDX format of the MNIST distribution (plain, or gzipped if named ``*.gz``).

    The format: a 4-byte magic number (two zero bytes, a type code, 0x08 for unsigned bytes, and the
    number of dimensions), then each dimension's size as a big-endian 32-bit integer, then the values
    in row-major order.

    Inputs:
    - path: the file.

    Returns the array, in its stored type and with the stored dimensions.
    Raises ValueError, naming the file, if the header is malformed or the payload size does not match it.
    """
    path = Path(path)
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # gzip's errors for a truncated or non-gzip file
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path}: cannot be read as a gzipped IDX file ({exc})") from exc

    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    zero1, zero2, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero1 != 0 or zero2 != 0 or type_code not in _IDX_TYPES or ndim == 0:
        raise ValueError(f"{path}: bad IDX magic number {raw[:4].hex()} "
                         f"(expected 0000 then a type code such as 08, then the number of dimensions)")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(f"{path}: header announces {ndim} dimensions but the file ends first")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_TYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    payload = len(raw) - header_size
    if payload != expected:
        raise ValueError(f"{path}: header says shape {shape} ({expected} bytes of data) "
                         f"but the file holds {payload} bytes of data")
    return np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)


def _find_idx(root: Path, name: str) -> Path:
    """Return ``root/name`` or ``root/name.gz``, whichever exists (plain first)."""
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise _not_found("mnist", root / f"{name}[.gz]", f"MNIST file {name!r} (plain or .gz)")


def load_mnist(root) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load all of MNIST from its four IDX files.

    Inputs:
    - root: a folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte
      and t10k-labels-idx1-ubyte, each either as is or gzipped with a ``.gz`` suffix.

    Returns (X_train, y_train, X_test, y_test):
    - X_train: float64, shape (60000, 1, 28, 28) (one grey channel), pixel values scaled to [0, 1].
    - y_train: int64, shape (60000,), the digit shown.
    - X_test, y_test: the same for the 10000 test images.

    Raises DatasetNotFoundError if a file is missing; ValueError, naming the file, if a file is not a
    valid IDX file of the expected kind or if images and labels do not match in number.
    """
    root = Path(root)
    if not root.is_dir():
        raise _not_found("mnist", root, f"MNIST folder {MNIST_FOLDER!r}")
    paths = {key: _find_idx(root, name) for key, name in MNIST_FILES.items()}

    def images(path: Path) -> np.ndarray:
        raw = read_idx(path)
        if raw.ndim != 3 or raw.dtype != np.uint8:
            raise ValueError(f"{path}: expected unsigned-byte images of shape (N, rows, cols), "
                             f"found {raw.dtype} data of shape {raw.shape}")
        # Add the channel axis so that grey and colour images have the same layout (N, C, H, W).
        return (raw.astype(np.float64) / 255.0)[:, None, :, :]

    def labels(path: Path) -> np.ndarray:
        raw = read_idx(path)
        if raw.ndim != 1:
            raise ValueError(f"{path}: expected a 1-D label array, found shape {raw.shape}")
        return raw.astype(np.int64)

    X_train, y_train = images(paths["train_images"]), labels(paths["train_labels"])
    X_test, y_test = images(paths["test_images"]), labels(paths["test_labels"])
    for X, y, ip, lp in ((X_train, y_train, paths["train_images"], paths["train_labels"]),
                         (X_test, y_test, paths["test_images"], paths["test_labels"])):
        if len(X) != len(y):
            raise ValueError(f"{ip} holds {len(X)} images but {lp} holds {len(y)} labels")
    return X_train, y_train, X_test, y_test


def get_mnist_data(num_training: int = 59000, num_validation: int = 1000, num_test: int = 1000,
                   subtract_mean: bool = True, root=None) -> dict:
    """Load MNIST and split it into train / validation / test, ready for a network.

    Inputs:
    - num_training: the first num_training training images form the training split.
    - num_validation: the next num_validation training images form the validation split.
    - num_test: the first num_test images of the official test set.
    - subtract_mean: if True, subtract the mean image of the training split from all three splits.
    - root: the folder of the IDX files; default ``datasets_dir() / "mnist"``.

    Returns a dict with keys X_train, y_train, X_val, y_val, X_test, y_test; images float64 of shape
    (N, 1, 28, 28), labels int64 of shape (N,).

    Raises DatasetNotFoundError if the files are missing, ValueError if the sizes do not fit.
    """
    if root is None:
        root = datasets_dir() / MNIST_FOLDER
    X_train_all, y_train_all, X_test_all, y_test_all = load_mnist(root)
    return _split_official((X_train_all, y_train_all), (X_test_all, y_test_all),
                           num_training, num_validation, num_test, "MNIST", subtract_mean)


# ----------------------------------------------------------------------------------------------------
# One entry point
# ----------------------------------------------------------------------------------------------------

_LOADERS = {
    "digits": get_digits_data,
    "cifar10": get_CIFAR10_data,
    "mnist": get_mnist_data,
}


def get_data(name: str = "digits", **kwargs) -> dict:
    """Load a dataset by name, split into train / validation / test.

    Inputs:
    - name: "digits" (embedded, the default), "cifar10" or "mnist". Case, "-" and "_" are ignored, so
      "CIFAR-10" works too.
    - kwargs: passed on to get_digits_data, get_CIFAR10_data or get_mnist_data (see those for the
      sizes and options each one takes).

    Returns the dict of that loader (keys X_train, y_train, X_val, y_val, X_test, y_test).
    Raises ValueError for an unknown name.
    """
    key = str(name).lower().replace("-", "").replace("_", "")
    if key not in _LOADERS:
        known = ", ".join(repr(k) for k in _LOADERS)
        raise ValueError(f"unknown dataset {name!r}; known datasets: {known}")
    return _LOADERS[key](**kwargs)
