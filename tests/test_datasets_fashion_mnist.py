"""Fashion-MNIST from the IDX files Zalando publishes (Debian's dataset-fashion-mnist)."""

import gzip
import os
import struct

import numpy as np
import pytest

from skcal.datasets import FASHION_MNIST_CLASSES, FASHION_MNIST_DEBIAN_ROOT, load_fashion_mnist


def load_from(root, split="train"):
    """Load a split from the fashion-mnist folder ``root`` of a data cache, never downloading."""
    return load_fashion_mnist(split=split, data_home=root.parent, download_if_missing=False)


def idx_bytes(array, magic=None):
    """An IDX file of unsigned bytes, as Zalando writes them: magic 0x0000080<ndim>, big-endian sizes, data."""
    array = np.asarray(array, dtype=np.uint8)
    magic = 0x800 + array.ndim if magic is None else magic
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_split(root, prefix, images, labels, compress=True):
    root.mkdir(parents=True, exist_ok=True)
    for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
        data = idx_bytes(array)
        if compress:
            (root / f"{prefix}-{kind}-ubyte.gz").write_bytes(gzip.compress(data))
        else:
            (root / f"{prefix}-{kind}-ubyte").write_bytes(data)


@pytest.fixture
def fmnist(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "fashion-mnist"
    train = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    train[0, 0, 0], train[0, 0, 1] = 0, 255
    write_split(root, "train", train, np.arange(12) % 10)
    write_split(root, "t10k", rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), [9, 2, 1, 1, 6])
    return root, train


def test_reads_the_gzipped_idx_files(fmnist, tmp_path):
    root, train = fmnist
    fmnist = load_fashion_mnist(data_home=tmp_path, download_if_missing=False)
    X, y, names = fmnist.data, fmnist.target, fmnist.target_names
    assert X.shape == (12, 1, 28, 28) and X.dtype == np.float32
    assert X[0, 0, 0, 0] == 0.0 and X[0, 0, 0, 1] == 1.0
    np.testing.assert_allclose(X[:, 0], train / 255.0, rtol=1e-6)
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert names.tolist() == list(FASHION_MNIST_CLASSES) and names[9] == "Ankle boot"
    assert "Zalando" in fmnist.DESCR
    X, y = load_fashion_mnist(split="test", data_home=str(tmp_path), download_if_missing=False, return_X_y=True)
    assert X.shape == (5, 1, 28, 28) and y.tolist() == [9, 2, 1, 1, 6]


def test_reads_uncompressed_files_and_the_data_cache(tmp_path, monkeypatch):
    images = np.full((3, 28, 28), 51, dtype=np.uint8)
    write_split(tmp_path / "fashion-mnist", "t10k", images, [1, 2, 3], compress=False)
    monkeypatch.setenv("SKCAL_DATA", str(tmp_path))
    X, y = load_fashion_mnist(split="test", return_X_y=True)  # by default $SKCAL_DATA/fashion-mnist first
    assert X.shape == (3, 1, 28, 28) and np.allclose(X, 0.2) and y.tolist() == [1, 2, 3]


def test_missing_files_say_how_to_get_them(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist") as error:
        load_fashion_mnist(data_home=tmp_path, download_if_missing=False)
    assert "train-images-idx3-ubyte" in str(error.value) and "zalandoresearch/fashion-mnist" in str(error.value)
    monkeypatch.setenv("SKCAL_DATA", str(tmp_path))
    if not (FASHION_MNIST_DEBIAN_ROOT / "t10k-images-idx3-ubyte.gz").exists():
        with pytest.raises(FileNotFoundError, match="data_home="):
            load_fashion_mnist(split="test", download_if_missing=False)
    with pytest.raises(ValueError, match="split must be one of"):
        load_fashion_mnist(split="val", data_home=tmp_path)


def test_only_the_images_of_a_split_present_is_missing(fmnist):
    root, _ = fmnist
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_from(root, split="test")


def corrupt(root, name, data):
    (root / name).write_bytes(data)
    return root / name


@pytest.mark.parametrize(
    "name, make_data, message",
    [
        ("train-images-idx3-ubyte.gz", lambda raw: gzip.compress(raw[:-10]), "truncated"),
        ("train-images-idx3-ubyte.gz", lambda raw: gzip.compress(raw + b"\0"), r"corrupt \(trailing bytes\)"),
        ("train-images-idx3-ubyte.gz", lambda raw: gzip.compress(raw)[:-30], "corrupt or truncated"),
        ("train-images-idx3-ubyte.gz", lambda raw: raw, "corrupt or truncated"),  # named .gz, not gzip
        ("train-images-idx3-ubyte.gz", lambda raw: gzip.compress(raw[:6]), "shorter than an IDX header"),
        ("train-images-idx3-ubyte.gz", lambda raw: gzip.compress(b"\0\0\x0d\x03" + raw[4:]), "magic number 0x00000d03"),
        ("train-labels-idx1-ubyte.gz", lambda raw: gzip.compress(b"\0\0\x08\x03" + raw[4:]), "magic number 0x00000803"),
    ],
)
def test_corrupt_files_are_value_errors_naming_the_file(fmnist, name, make_data, message):
    root, train = fmnist
    raw = idx_bytes(train) if "images" in name else idx_bytes(np.arange(12) % 10)
    path = corrupt(root, name, make_data(raw))
    with pytest.raises(ValueError, match=message) as error:
        load_from(root)
    assert str(path) in str(error.value)


def test_inconsistent_files(fmnist):
    root, train = fmnist
    corrupt(root, "train-labels-idx1-ubyte.gz", gzip.compress(idx_bytes(np.arange(11) % 10)))
    with pytest.raises(ValueError, match="has 12 images but train-labels-idx1-ubyte.gz has 11 labels"):
        load_from(root)
    corrupt(root, "train-labels-idx1-ubyte.gz", gzip.compress(idx_bytes(np.arange(12))))
    with pytest.raises(ValueError, match="has label 11"):
        load_from(root)
    write_split(root, "train", np.zeros((12, 32, 32)), np.zeros(12))
    with pytest.raises(ValueError, match=r"images of \(32, 32\) pixels"):
        load_from(root)


def require_installed(path, what):
    """Skip where the data is not installed, unless SKCAL_REQUIRE_DATA says it must be (CI after install_data.sh)."""
    if not path.exists():
        if os.environ.get("SKCAL_REQUIRE_DATA"):
            pytest.fail(f"{what} is not installed at {path}; run scripts/install_data.sh")
        pytest.skip(f"{what} is not installed at {path}; scripts/install_data.sh installs it")


def test_the_installed_debian_files():
    require_installed(FASHION_MNIST_DEBIAN_ROOT / "t10k-images-idx3-ubyte.gz", "Debian's dataset-fashion-mnist")
    fmnist = load_fashion_mnist(split="test", data_home=FASHION_MNIST_DEBIAN_ROOT.parent, download_if_missing=False)
    X, y, names = fmnist.data, fmnist.target, fmnist.target_names
    assert X.shape == (10_000, 1, 28, 28) and X.dtype == np.float32 and X.min() == 0.0 and X.max() == 1.0
    assert np.bincount(y).tolist() == [1000] * 10 and y[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    X, y = load_fashion_mnist(data_home="/usr/share/datasets", download_if_missing=False, return_X_y=True)
    assert X.shape == (60_000, 1, 28, 28) and np.bincount(y).tolist() == [6000] * 10
    assert y[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5] and names[y[0]] == "Ankle boot"
