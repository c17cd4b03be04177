"""Image loaders: scikit-learn's digits, MedMNIST (its package or a ``.npz`` file) and Fashion-MNIST's IDX files."""

from __future__ import annotations

import gzip
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._bunch import _DEPRECATED, _REMOVED_IN, _deprecated_location, _result
from ._download import _download
from ._home import get_data_home

MEDMNIST_SPLITS = ("train", "val", "test")


DIGITS_DESCR = """\
scikit-learn's optical recognition of handwritten digits, as images
--------------------------------------------------------------------

1797 images of 8x8 pixels (grey levels 0-16, scaled to [0, 1]) in 10 classes,
the digits 0-9, about 180 each; the UCI data set that ``sklearn.datasets.load_digits``
bundles. ``data`` has shape (1797, 1, 8, 8), as convolutional networks take it.
"""


def load_digits_images(*, return_X_y: bool = False) -> Bunch | tuple[np.ndarray, np.ndarray]:
    """Load scikit-learn's digits as images: ``data`` of shape (1797, 1, 8, 8) in [0, 1], ``target`` in 0-9.

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``data`` (ndarray of float32, shape (1797, 1, 8, 8)), ``target``
        (ndarray of int, shape (1797,)), ``target_names`` (0-9), ``DESCR``.
    (data, target) : tuple
        With ``return_X_y=True``.
    """
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return _result(
        return_X_y,
        "load_digits_images",
        (X, y),
        "X, y",
        data=X,
        target=y,
        target_names=np.arange(10),
        DESCR=DIGITS_DESCR,
    )


def load_medmnist_npz(
    path: str | Path, split: str = "train", *, return_X_y: bool = False
) -> Bunch | tuple[np.ndarray, np.ndarray]:
    """Load one split of a MedMNIST ``.npz`` file (keys ``<split>_images``, ``<split>_labels``).

    Parameters
    ----------
    path : str or Path
        The file, as the ``medmnist`` package downloads it (e.g. ``dermamnist.npz``).
    split : {"train", "val", "test"}, default="train"
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``data`` (ndarray of float32, shape (n, channels, size, size), in
        [0, 1]), ``target`` (ndarray of int64, shape (n,)), ``target_names``
        (the labels present, sorted), ``DESCR``.
    (data, target) : tuple
        With ``return_X_y=True``.

    Raises
    ------
    FileNotFoundError, KeyError, ValueError
        Missing file, missing keys (the message lists the file's keys), or
        multi-label targets.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No MedMNIST file at {path}.")
    if split not in MEDMNIST_SPLITS:
        raise ValueError(f"split must be one of {MEDMNIST_SPLITS}, got {split!r}.")
    with np.load(path) as data:
        keys = [f"{split}_images", f"{split}_labels"]
        missing = [key for key in keys if key not in data]
        if missing:
            raise KeyError(f"{path.name} lacks {missing}; it has {sorted(data.keys())}.")
        images, labels = data[keys[0]], data[keys[1]]
    X, y = _medmnist_arrays(images, labels, path.name)
    description = f"The {split} split of {path.name}: {len(y)} images {X.shape[1:]}, labels {np.unique(y).tolist()}.\n"
    return _result(
        return_X_y,
        "load_medmnist_npz",
        (X, y),
        "X, y",
        data=X,
        target=y,
        target_names=np.unique(y),
        DESCR=description,
    )


def _medmnist_arrays(images: np.ndarray, labels: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """MedMNIST's uint8 images (n, h, w[, c]) and labels (n, 1) as float32 (n, c, h, w) in [0, 1] and int64 (n,)."""
    if labels.ndim == 2 and labels.shape[1] != 1:
        raise ValueError(f"{name} has multi-label targets {labels.shape}; skcal needs one label per image.")
    images = images.astype(np.float32) / 255.0
    images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(images), labels.reshape(-1).astype(np.int64)


#: Where the ``medmnist`` package keeps its files by default; looked in after the data cache.
MEDMNIST_PACKAGE_ROOT = Path("~/.medmnist")


def load_medmnist(
    flag: str,
    split: str = "train",
    root: str | Path | None = _DEPRECATED,
    size: int = 28,
    download: bool | str = _DEPRECATED,
    *,
    data_home: str | Path | None = None,
    download_if_missing: bool = True,
    return_X_y: bool = False,
) -> Bunch | tuple[np.ndarray, np.ndarray]:
    """Load a MedMNIST dataset through the ``medmnist`` package's own classes and files.

    Parameters
    ----------
    flag : str
        The dataset, e.g. ``"dermamnist"`` (the paper's) or ``"pathmnist"``.
    split : {"train", "val", "test"}, default="train"
    root : str or Path, optional
        Deprecated, use ``data_home``: the folder holding ``<flag>.npz`` itself.
    size : {28, 64, 128, 224}, default=28
    download : bool, optional
        Deprecated, use ``download_if_missing``.
    data_home : str or Path, optional
        The data cache; the file is ``data_home/medmnist/<flag>.npz``
        (``<flag>_<size>.npz`` for larger sizes). By default the first of
        ``get_data_home() / "medmnist"`` and ``~/.medmnist`` (the
        ``medmnist`` package's own folder) that has it.
    download_if_missing : bool, default=True
        Let ``medmnist`` download a missing file (needs network) into
        ``data_home/medmnist``; False raises instead.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``data`` (ndarray of float32, shape (n, channels, size, size), in
        [0, 1]), ``target`` (ndarray of int64, shape (n,)),
        ``target_names`` (MedMNIST's name of each label), ``DESCR``.
    (data, target) : tuple
        With ``return_X_y=True``.

    Raises
    ------
    ValueError
        An unknown or multi-label flag, or a bad split.
    FileNotFoundError
        The file is missing and ``download_if_missing`` is False.
    """
    import medmnist
    from medmnist import INFO

    folder = _deprecated_location(
        root,
        "root",
        "load_medmnist",
        data_home,
        "pass data_home=, the data cache whose medmnist/ folder holds the file.",
    )
    if not (isinstance(download, str) and download == _DEPRECATED):
        warnings.warn(
            f"load_medmnist(download=...) is deprecated and stops working in skcal {_REMOVED_IN}; "
            "pass download_if_missing=.",
            FutureWarning,
            stacklevel=2,
        )
        download_if_missing = bool(download)
    elif folder is not None:
        download_if_missing = False  # as the deprecated form did by default
    if flag not in INFO:
        raise ValueError(f"Unknown MedMNIST flag {flag!r}; choose from {sorted(INFO)}.")
    if not INFO[flag]["task"].startswith(("multi-class", "binary", "ordinal")):
        raise ValueError(f"{flag} is a {INFO[flag]['task']} task; skcal needs one label per image.")
    if split not in MEDMNIST_SPLITS:
        raise ValueError(f"split must be one of {MEDMNIST_SPLITS}, got {split!r}.")
    name = f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"
    if folder is not None:
        folders = [folder]
    elif data_home is not None:
        folders = [get_data_home(data_home) / "medmnist"]
    else:
        folders = [get_data_home() / "medmnist", MEDMNIST_PACKAGE_ROOT.expanduser()]
    folder = next((candidate for candidate in folders if (candidate / name).exists()), folders[0])
    missing = not (folder / name).exists()
    where = " or ".join(str(candidate) for candidate in folders)
    if missing and not download_if_missing:
        raise FileNotFoundError(
            f"No MedMNIST file {name} in {where}; pass download_if_missing=True where a network is available."
        )
    folder.mkdir(parents=True, exist_ok=True)
    try:
        # download=True only for a missing file: medmnist also re-downloads a file whose MD5 is not the published one
        dataset = getattr(medmnist, INFO[flag]["python_class"])(
            split=split, root=str(folder), size=None if size == 28 else size, download=missing
        )
    except RuntimeError as error:
        if not missing:
            raise
        raise FileNotFoundError(
            f"No MedMNIST file {name} in {where}, and medmnist could not download it: {error}"
        ) from None
    X, y = _medmnist_arrays(dataset.imgs, dataset.labels, name)
    label_names = INFO[flag]["label"]
    description = f"MedMNIST {flag} ({size}x{size}), {split} split: {INFO[flag]['description']}\n"
    return _result(
        return_X_y,
        "load_medmnist",
        (X, y),
        "X, y",
        data=X,
        target=y,
        target_names=np.array([label_names[str(label)] for label in range(len(label_names))]),
        DESCR=description,
    )


#: Where Debian's ``dataset-fashion-mnist`` package puts the four files.
FASHION_MNIST_DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")
#: Fashion-MNIST's labels 0-9, as Zalando names them.
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_MNIST_SPLITS = {"train": "train", "test": "t10k"}
#: Where Zalando publishes the files (its repository, then the mirror torchvision uses), tried in order.
FASHION_MNIST_URLS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)
#: The MD5 of each published file, from Zalando's README (Debian recompresses them: its files differ).
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
_FASHION_MNIST_HELP = (
    "Get the four files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
    "t10k-labels-idx1-ubyte.gz) with download_if_missing=True, with Debian's package (apt-get install "
    f"dataset-fashion-mnist, which puts them in {FASHION_MNIST_DEBIAN_ROOT}), or from Zalando's repository "
    "(github.com/zalandoresearch/fashion-mnist, folder data/fashion) into the fashion-mnist folder of the "
    "data_home= you pass."
)
FASHION_MNIST_DESCR = """\
Fashion-MNIST
-------------

Zalando's article images (Xiao, Rasul and Vollgraf, 2017): 60,000 training and
10,000 test greyscale images of 28x28 pixels in 10 balanced classes (T-shirt/top,
Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot), a
drop-in replacement for MNIST. MIT licence. ``data`` has shape (n, 1, 28, 28),
scaled to [0, 1].
"""


def load_fashion_mnist(
    root: str | Path | None = _DEPRECATED,
    split: str = "train",
    *,
    data_home: str | Path | None = None,
    download_if_missing: bool = True,
    return_X_y: bool = False,
) -> Bunch | tuple[np.ndarray, np.ndarray]:
    """Load one split of Fashion-MNIST from the IDX files Zalando publishes.

    Reads ``<prefix>-images-idx3-ubyte.gz`` and ``<prefix>-labels-idx1-ubyte.gz``
    (``prefix`` is ``train`` or ``t10k``; the same names without ``.gz`` are
    read too) and checks their magic numbers, dimensions and sizes.

    Parameters
    ----------
    root : str or Path, optional
        Deprecated, use ``data_home``: the folder holding the files itself.
    split : {"train", "test"}, default="train"
        60,000 or 10,000 images.
    data_home : str or Path, optional
        The data cache; the files are read from ``data_home/fashion-mnist``
        (``data_home="/usr/share/datasets"`` reads Debian's). By default the
        first of ``get_data_home() / "fashion-mnist"`` and
        ``/usr/share/datasets/fashion-mnist`` (Debian's
        ``dataset-fashion-mnist``) that has them.
    download_if_missing : bool, default=True
        Download the split's two files from Zalando's repository into
        ``data_home/fashion-mnist`` if they are missing (checked against
        their published MD5); False raises instead.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``data`` (ndarray of float32, shape (n, 1, 28, 28), scaled to [0, 1]),
        ``target`` (ndarray of int64, shape (n,), labels 0-9),
        ``target_names`` (the name of each label,
        :data:`FASHION_MNIST_CLASSES`), ``DESCR``.
    (data, target) : tuple
        With ``return_X_y=True``.

    Raises
    ------
    FileNotFoundError
        If the files are missing and cannot be downloaded; the message says
        how to get them.
    ValueError
        For a bad ``split``, or a corrupt or truncated file (the message names it).
    """
    folder = _deprecated_location(
        root,
        "root",
        "load_fashion_mnist",
        data_home,
        "pass data_home=, the data cache whose fashion-mnist/ folder holds the files.",
    )
    if split not in FASHION_MNIST_SPLITS:
        raise ValueError(f"split must be one of {tuple(FASHION_MNIST_SPLITS)}, got {split!r}.")
    prefix = FASHION_MNIST_SPLITS[split]
    names = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    if folder is not None:
        folders, download_if_missing = [folder], False  # the deprecated form never downloaded
    elif data_home is not None:
        folders = [get_data_home(data_home) / "fashion-mnist"]
    else:
        folders = [get_data_home() / "fashion-mnist", FASHION_MNIST_DEBIAN_ROOT]
    for candidate in folders:
        files = [_idx_file(candidate, name) for name in names]
        if all(files):
            break
    else:
        where = " or ".join(str(candidate) for candidate in folders)
        missing = f"No Fashion-MNIST {split} files ({names[0]}[.gz], {names[1]}[.gz]) in {where}."
        if not download_if_missing:
            raise FileNotFoundError(f"{missing} {_FASHION_MNIST_HELP}")
        try:
            files = [
                _idx_file(folders[0], name)
                or _download(
                    [base + f"{name}.gz" for base in FASHION_MNIST_URLS],
                    folders[0] / f"{name}.gz",
                    "md5",
                    FASHION_MNIST_MD5[f"{name}.gz"],
                )
                for name in names
            ]
        except FileNotFoundError as error:
            raise FileNotFoundError(f"{missing} {error}. {_FASHION_MNIST_HELP}") from None
    images, labels = _read_idx(files[0], 3), _read_idx(files[1], 1)
    if images.shape[1:] != (28, 28):
        raise ValueError(f"{files[0]} holds images of {images.shape[1:]} pixels; Fashion-MNIST's are 28x28.")
    if len(images) != len(labels):
        raise ValueError(f"{files[0].name} has {len(images)} images but {files[1].name} has {len(labels)} labels.")
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise ValueError(f"{files[1]} has label {labels.max()}; Fashion-MNIST's are 0-9.")
    X = (images.astype(np.float32) / np.float32(255.0))[:, None]
    y = labels.astype(np.int64)
    return _result(
        return_X_y,
        "load_fashion_mnist",
        (X, y, FASHION_MNIST_CLASSES),
        "X, y, class_names",
        data=X,
        target=y,
        target_names=np.array(FASHION_MNIST_CLASSES),
        DESCR=FASHION_MNIST_DESCR,
    )


def _idx_file(folder: Path, name: str) -> Path | None:
    """``folder/name.gz`` or ``folder/name``, whichever exists first; None if neither does."""
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes with ``ndim`` dimensions (gzip-compressed if its name ends in .gz).

    Checks the magic number (0x0000080<ndim>) and that the data is exactly as
    long as the dimensions say; anything else is a ValueError naming the file.
    """
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as stream:
            data = stream.read()
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{path} is corrupt or truncated: {error}") from None
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path} is truncated: {len(data)} bytes, shorter than an IDX header ({header}).")
    magic = int.from_bytes(data[:4], "big")
    if magic != 0x800 + ndim:
        raise ValueError(
            f"{path} is not an IDX file of unsigned bytes with {ndim} dimension(s): magic number 0x{magic:08x}, "
            f"expected 0x{0x800 + ndim:08x}."
        )
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "corrupt (trailing bytes)"
        raise ValueError(f"{path} is {problem}: {len(data)} bytes where dimensions {shape} need {expected}.")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
