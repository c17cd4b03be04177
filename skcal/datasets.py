"""Loaders for real datasets, in scikit-learn's form.

Every loader returns a :class:`~sklearn.utils.Bunch` with ``data`` (numpy
or scipy.sparse features, or a list of texts), ``target`` (numpy labels),
``target_names``, ``DESCR`` and the dataset's own extra fields; with
``return_X_y=True``, the tuple ``(data, target)``. Both are ready for
:class:`~skcal.ContinualActiveClassifier`.

Loaders of a named dataset kept in files take ``data_home``, the data cache
(:func:`get_data_home`: ``$SKCAL_DATA``, else ``~/.cache/skcal``): each
looks in its own folder under it (``fashion-mnist``, ``medmnist``,
``wordnet``; the vaderSentiment sdist lies in ``data_home`` itself), then
where a Debian or Python package installs the files, and, where the files
can be fetched, downloads them there unless ``download_if_missing=False``
(the download is checked against its published checksum).
``scripts/install_data.sh`` installs everything in advance. Loaders of
data bundled with a Python package (:func:`load_digits_images`,
:func:`load_pbmc68k`) have nothing to find; loaders of a file of your own
(:func:`load_anndata`, :func:`load_medmnist_npz`, :func:`load_text_csv`)
take that file.

Deprecated until skcal 0.3: unpacking or indexing a loader's result as the
tuple it returned before (``X, y, names = load_fashion_mnist()``), and the
folder arguments ``root=`` (:func:`load_fashion_mnist`,
:func:`load_medmnist`) and ``path=`` (:func:`load_wordnet_glosses`,
:func:`load_sentiment_sentences`), which named the dataset's own folder or
file. Both still work, with a ``FutureWarning``.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import http.client
import io
import logging
import os
import struct
import tarfile
import tempfile
import urllib.request
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils import Bunch

logger = logging.getLogger(__name__)

MEDMNIST_SPLITS = ("train", "val", "test")
#: The release in which the deprecated call forms stop working.
_REMOVED_IN = "0.3"
#: The default of a deprecated argument: anything else passed means the caller used it.
_DEPRECATED = "deprecated"
#: Seconds a download may wait for the server before it fails.
DOWNLOAD_TIMEOUT = 60.0


def get_data_home(data_home: str | Path | None = None) -> Path:
    """Return the data cache folder: ``data_home`` if given, else ``$SKCAL_DATA`` if set, else ``~/.cache/skcal``.

    ``scripts/install_data.sh`` downloads into it; the loaders look there
    first, each in its own subfolder. The folder is not created.

    Parameters
    ----------
    data_home : str or Path, optional
        A folder to use instead of the default; ``~`` is expanded.

    Returns
    -------
    Path
        The folder (which may not exist).
    """
    if data_home is not None:
        return Path(data_home).expanduser()
    return Path(os.environ.get("SKCAL_DATA") or "~/.cache/skcal").expanduser()


class _TupleCompatibleBunch(Bunch):
    """A Bunch that also unpacks and indexes as the tuple its loader returned before, with a FutureWarning.

    Nothing iterated over a loader's result as a dict before it was a
    Bunch, so iterating yields the old tuple's items (``X, y = load_...()``)
    and an integer index picks one (``load_...()[1]``). ``keys()``,
    ``items()``, ``dict(bunch)`` and attribute access are a plain Bunch's.
    """

    def __init__(self, loader: str, legacy: tuple, legacy_names: str, **fields: Any):
        super().__init__(**fields)
        self.__dict__["_legacy"] = (loader, legacy, legacy_names)

    def _legacy_tuple(self, stacklevel: int) -> tuple:
        loader, legacy, names = self.__dict__["_legacy"]
        warnings.warn(
            f"{loader}() returns a Bunch: unpacking or indexing it as the tuple ({names}) is deprecated and stops "
            f"working in skcal {_REMOVED_IN}; use its fields (.data, .target, ...) or return_X_y=True.",
            FutureWarning,
            stacklevel=stacklevel + 1,
        )
        return legacy

    def __iter__(self):
        if "_legacy" not in self.__dict__:  # unpickled: a plain Bunch
            return super().__iter__()
        return iter(self._legacy_tuple(stacklevel=2))

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and "_legacy" in self.__dict__:
            return self._legacy_tuple(stacklevel=2)[key]
        return super().__getitem__(key)


def _result(
    return_X_y: bool, loader: str, legacy: tuple, legacy_names: str, **fields: Any
) -> Bunch | tuple[Any, np.ndarray]:
    """Return ``(data, target)`` with ``return_X_y``, else the Bunch of ``fields`` (unpacking as ``legacy``)."""
    if return_X_y:
        return fields["data"], fields["target"]
    return _TupleCompatibleBunch(loader, legacy, legacy_names, **fields)


def _deprecated_location(value: Any, name: str, loader: str, data_home: Any, replacement: str) -> Path | None:
    """Return the folder or file a deprecated ``root=``/``path=`` named (None if not given), with a FutureWarning."""
    if isinstance(value, str) and value == _DEPRECATED:
        return None
    if data_home is not None:
        raise ValueError(f"{loader}() takes data_home= or the deprecated {name}=, not both.")
    warnings.warn(
        f"{loader}({name}=...) is deprecated and stops working in skcal {_REMOVED_IN}; {replacement}",
        FutureWarning,
        stacklevel=3,
    )
    return None if value is None else Path(value).expanduser()


def _download(urls: Sequence[str], destination: Path, algorithm: str, digest: str) -> Path:
    """Download the first of ``urls`` that answers with the right checksum to ``destination``, atomically.

    Raises
    ------
    FileNotFoundError
        If none did; the message gives each URL's error.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        handle, partial = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
        checksum = hashlib.new(algorithm)
        logger.info("downloading %s to %s", url, destination)
        try:
            with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
                while chunk := response.read(1 << 20):
                    checksum.update(chunk)
                    out.write(chunk)
        except (OSError, ValueError, http.client.HTTPException) as error:  # URLError is an OSError
            failures.append(f"{url}: {error}")
            os.unlink(partial)
            continue
        if checksum.hexdigest() != digest:
            failures.append(f"{url}: {algorithm} {checksum.hexdigest()}, expected {digest}")
            os.unlink(partial)
            continue
        os.replace(partial, destination)
        return destination
    raise FileNotFoundError(f"Could not download {destination.name}: " + "; ".join(failures))


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


def load_anndata(
    path_or_adata: Any,
    label_key: str,
    layer: str | None = None,
    normalize: bool = False,
    target_sum: float = 1e4,
    *,
    return_X_y: bool = False,
) -> Bunch | tuple[Any, np.ndarray]:
    """Load features and cell labels from an AnnData object or ``.h5ad`` file.

    Sparse matrices stay sparse (CSR); nothing is densified. With
    ``normalize=True`` raw counts get the paper's preprocessing for
    single-cell data, through scanpy: library-size normalisation
    (``scanpy.pp.normalize_total``) then ``log1p``, on a copy of the matrix.

    Parameters
    ----------
    path_or_adata : str, Path or anndata.AnnData
        An ``.h5ad`` file or an AnnData object.
    label_key : str
        The ``obs`` column with the labels (e.g. cell type).
    layer : str, optional
        Use ``adata.layers[layer]`` instead of ``adata.X``.
    normalize : bool, default=False
        Scale each cell's counts to ``target_sum``, then take ``log1p``.
        Leave it off for data that is already normalised (check
        ``adata.uns.get("log1p")``).
    target_sum : float, default=1e4
        Counts per cell after normalisation.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``data`` (ndarray or scipy.sparse.csr_matrix of float32, shape
        (n_cells, n_genes)), ``target`` (ndarray of str, shape (n_cells,)),
        ``target_names`` (the labels, sorted), ``feature_names`` (the genes,
        ``var_names``), ``obs`` (a copy of the cells' metadata, a
        DataFrame), ``DESCR``.
    (data, target) : tuple
        With ``return_X_y=True``.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    KeyError
        If ``label_key`` or ``layer`` is missing; the message lists what exists.
    ValueError
        If some cells have no label, or ``normalize`` is asked of negative values
        (already scaled data).
    """
    import anndata

    if isinstance(path_or_adata, (str, Path)):
        path = Path(path_or_adata)
        if not path.exists():
            raise FileNotFoundError(f"No AnnData file at {path}.")
        adata = anndata.read_h5ad(path)
        source = path.name
    else:
        adata = path_or_adata
        source = "an AnnData object"
    if label_key not in adata.obs:
        raise KeyError(f"obs has no column {label_key!r}; its columns are {list(adata.obs.columns)}.")
    if layer is not None and layer not in adata.layers:
        raise KeyError(f"adata has no layer {layer!r}; its layers are {list(adata.layers)}.")
    labels = adata.obs[label_key]
    if labels.isna().any():
        raise ValueError(f"{int(labels.isna().sum())} cells have no {label_key!r} label.")
    X = adata.layers[layer] if layer is not None else adata.X
    X = _float32_matrix(X)
    if normalize:
        X = _float32_matrix(_normalize_counts(X, target_sum))
    y = labels.astype(str).to_numpy()
    matrix = f"layer {layer!r}" if layer is not None else "X"
    description = (
        f"{source}: {X.shape[0]} cells x {X.shape[1]} genes ({matrix}"
        f"{f', library-size normalised to {target_sum:g} then log1p' if normalize else ''}), "
        f"labels from obs[{label_key!r}] ({len(np.unique(y))} classes).\n"
    )
    return _result(
        return_X_y,
        "load_anndata",
        (X, y),
        "X, y",
        data=X,
        target=y,
        target_names=np.unique(y),
        feature_names=np.asarray(adata.var_names, dtype=str),
        obs=adata.obs.copy(),
        DESCR=description,
    )


def _float32_matrix(X: Any) -> Any:
    """``X`` as CSR float32 if sparse, else a float32 ndarray (no copy when it already is one)."""
    return sp.csr_matrix(X, dtype=np.float32) if sp.issparse(X) else np.asarray(X, dtype=np.float32)


def _normalize_counts(X: Any, target_sum: float) -> Any:
    """Library-size normalisation and log1p through scanpy, on a copy; sparse stays sparse."""
    import anndata
    import scanpy

    if (X.data if sp.issparse(X) else X).min(initial=0) < 0:
        raise ValueError("normalize=True needs non-negative counts; this matrix has negative values (already scaled?).")
    counts = anndata.AnnData(X.copy())
    scanpy.pp.normalize_total(counts, target_sum=target_sum)
    scanpy.pp.log1p(counts)
    return counts.X


PBMC68K_DESCR = """\
scanpy's pbmc68k_reduced
------------------------

700 peripheral blood mononuclear cells from 10x Genomics' 68k PBMC data set
(Zheng et al., 2017), 765 highly variable genes, log-normalised and scaled
by scanpy, and the 10 cell types of ``obs["bulk_labels"]``. It ships with
scanpy (``scanpy.datasets.pbmc68k_reduced``).
"""


def load_pbmc68k(*, return_X_y: bool = False) -> Bunch | tuple[np.ndarray, np.ndarray]:
    """Load the 700 PBMC cells (765 genes, 10 types in ``bulk_labels``) that ship with scanpy.

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        :func:`load_anndata`'s fields: ``data`` (ndarray of float32, shape
        (700, 765), scanpy's preprocessed expression), ``target`` (ndarray of
        str, shape (700,)), ``target_names``, ``feature_names``, ``obs``,
        ``DESCR``.
    (data, target) : tuple
        With ``return_X_y=True``.
    """
    import scanpy

    bunch = load_anndata(scanpy.datasets.pbmc68k_reduced(), "bulk_labels")
    bunch.DESCR = PBMC68K_DESCR
    return _result(return_X_y, "load_pbmc68k", (bunch.data, bunch.target), "X, y", **bunch)


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


def load_text_csv(
    path: str | Path, text_column: str = "text", label_column: str = "label", *, return_X_y: bool = False
) -> Bunch | tuple[list, np.ndarray]:
    """Load texts and labels from a CSV file with a text column and a label column.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    text_column : str, default="text"
        The column of texts.
    label_column : str, default="label"
        The column of labels.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``data`` (list of str, an empty cell as ``""``), ``target`` (ndarray
        of str), ``target_names`` (the labels, sorted), ``frame`` (the whole
        file, a DataFrame), ``DESCR``.
    (data, target) : tuple
        With ``return_X_y=True``.

    Raises
    ------
    FileNotFoundError, KeyError, ValueError
        Missing file, missing columns (the message lists the header), or empty labels.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No CSV file at {path}.")
    frame = pd.read_csv(path)
    missing = [column for column in (text_column, label_column) if column not in frame]
    if missing:
        raise KeyError(f"{path.name} lacks column(s) {missing}; its columns are {list(frame.columns)}.")
    if frame[label_column].isna().any():
        raise ValueError(f"{int(frame[label_column].isna().sum())} rows of {path.name} have no label.")
    texts = frame[text_column].fillna("").astype(str).tolist()
    y = frame[label_column].astype(str).to_numpy()
    description = f"{path.name}: {len(texts)} texts ({text_column!r}), labels {label_column!r} ({len(np.unique(y))}).\n"
    return _result(
        return_X_y,
        "load_text_csv",
        (texts, y),
        "texts, y",
        data=texts,
        target=y,
        target_names=np.unique(y),
        frame=frame,
        DESCR=description,
    )


#: WordNet 3.0's lexicographer files, by number (``lexnames(5WN)``); Debian's wordnet-base omits the file.
WORDNET_LEXNAMES = (
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
)
WORDNET_POS = ("noun", "verb", "adj", "adv")
#: The parts of speech whose lexicographer files are semantic classes: 82,115 noun and 13,767 verb
#: synsets of WordNet 3.0 in 26 + 15 = 41 categories (adjectives and adverbs have only 3 files).
WORDNET_FULL_POS = ("noun", "verb")


#: Where Debian's ``wordnet-base`` package puts WordNet's ``data.<pos>`` files; looked in after the data cache.
WORDNET_DEBIAN_ROOT = Path("/usr/share/wordnet")


def load_wordnet_glosses(
    path: str | Path | None = _DEPRECATED,
    pos: str | Sequence[str] = "noun",
    categories: list[str] | None = None,
    max_per_category: int | None = None,
    random_state: Any = None,
    *,
    data_home: str | Path | None = None,
    return_X_y: bool = False,
) -> Bunch | tuple[list, np.ndarray]:
    """Load WordNet glosses labelled by their lexicographer category: a real text task, offline.

    Reads WordNet's ``data.<pos>`` files (Debian's ``wordnet-base``; NLTK ships the
    same files). Each synset gives one example: the definition part of its
    gloss (before the usage examples) and its lexicographer file, e.g.
    ``noun.animal``. ``pos=WORDNET_FULL_POS`` (``("noun", "verb")``) gives the
    whole task: 95,882 glosses in 41 categories on WordNet 3.0.

    Parameters
    ----------
    path : str or Path, optional
        Deprecated, use ``data_home``: the folder holding ``data.noun`` etc. itself.
    pos : {"noun", "verb", "adj", "adv"} or sequence of them, default="noun"
        One part of speech, or several read one after the other in the given
        order (e.g. ``("noun", "verb")``).
    categories : list of str, optional
        Keep only these lexicographer files (e.g. ``["noun.animal", "noun.food"]``).
    max_per_category : int, optional
        Keep at most this many glosses per category, drawn at random.
    random_state : int, RandomState instance or None, default=None
        For ``max_per_category``.
    data_home : str or Path, optional
        The data cache; the files are read from ``data_home/wordnet``
        (``data_home="/usr/share"`` reads Debian's). By default the first of
        ``get_data_home() / "wordnet"`` and ``/usr/share/wordnet`` that has
        them.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``data`` (list of str, the glosses), ``target`` (ndarray of str, the
        lexicographer category of each), ``target_names`` (the categories
        present, sorted), ``pos`` (ndarray of str, the part of speech of
        each), ``DESCR``.
    (data, target) : tuple
        With ``return_X_y=True``.

    Raises
    ------
    FileNotFoundError
        If a data file is missing (``apt-get install wordnet-base``).
    ValueError
        For an unknown ``pos`` or category, or a record without a valid
        lexicographer file number (the message names the file and line).
    """
    from sklearn.utils import check_random_state

    folder = _deprecated_location(
        path,
        "path",
        "load_wordnet_glosses",
        data_home,
        "pass data_home=, the data cache whose wordnet/ folder holds the files (data_home='/usr/share' for Debian's).",
    )
    parts = (pos,) if isinstance(pos, str) else tuple(pos)
    if not parts or any(part not in WORDNET_POS for part in parts) or len(set(parts)) != len(parts):
        raise ValueError(f"pos must be one of {WORDNET_POS} or a sequence of distinct ones, got {pos!r}.")
    unknown = sorted(set(categories or ()) - set(WORDNET_LEXNAMES))
    if unknown:
        raise ValueError(f"Unknown WordNet categories {unknown}; they are named like {WORDNET_LEXNAMES[3:6]}.")
    if folder is not None:
        folders = [folder]
    elif data_home is not None:
        folders = [get_data_home(data_home) / "wordnet"]
    else:
        folders = [get_data_home() / "wordnet", WORDNET_DEBIAN_ROOT]
    names = [f"data.{part}" for part in parts]
    folder = next((candidate for candidate in folders if all((candidate / n).exists() for n in names)), None)
    if folder is None:
        missing = [str(candidate / name) for candidate in folders for name in names if not (candidate / name).exists()]
        raise FileNotFoundError(
            f"No WordNet data at {' or '.join(missing)}; on Debian: apt-get install wordnet-base "
            f"(or put WordNet 3.0's dict/ files in {folders[0]})."
        )
    texts, labels, parts_of_speech = [], [], []
    for part, name in zip(parts, names, strict=True):
        read = len(labels)
        _read_wordnet_data(folder / name, categories, texts, labels)
        parts_of_speech += [part] * (len(labels) - read)
    labels, parts_of_speech = np.array(labels, dtype=str), np.array(parts_of_speech, dtype=str)
    if max_per_category is not None and len(labels):
        rng = check_random_state(random_state)
        keep = np.sort(
            np.concatenate(
                [rng.permutation(np.flatnonzero(labels == label))[:max_per_category] for label in np.unique(labels)]
            )
        )
        texts, labels, parts_of_speech = [texts[i] for i in keep], labels[keep], parts_of_speech[keep]
    description = (
        f"WordNet glosses from {folder} ({', '.join(names)}): {len(texts)} definitions labelled by their "
        f"lexicographer file, {len(np.unique(labels))} categories. WordNet 3.0, Princeton University (WordNet "
        "licence).\n"
    )
    return _result(
        return_X_y,
        "load_wordnet_glosses",
        (texts, labels),
        "texts, y",
        data=texts,
        target=labels,
        target_names=np.unique(labels),
        pos=parts_of_speech,
        DESCR=description,
    )


def _read_wordnet_data(data_file: Path, categories: list[str] | None, texts: list, labels: list) -> None:
    """Append the glosses and lexicographer categories of one ``data.<pos>`` file to ``texts`` and ``labels``."""
    with open(data_file, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if line.startswith("  ") or " | " not in line:  # the licence header
                continue
            fields, gloss = line.split(" | ", 1)
            fields = fields.split()
            if len(fields) < 2 or not fields[1].isdigit() or int(fields[1]) >= len(WORDNET_LEXNAMES):
                raise ValueError(f"{data_file}, line {number}: no valid lexicographer file number: {line[:60]!r}")
            label = WORDNET_LEXNAMES[int(fields[1])]
            if categories and label not in categories:
                continue
            texts.append(gloss.split('; "')[0].strip())
            labels.append(label)


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


#: The sentence sets of Hutto & Gilbert (2014), by the name ``load_sentiment_sentences`` takes.
SENTIMENT_SOURCES = {
    "amazon": "amazonReviewSnippets",
    "movies": "movieReviewSnippets",
    "tweets": "tweets",
    "nyt": "nytEditorialSnippets",
}
VADER_SDIST = "vaderSentiment-3.3.2.tar.gz"
#: Where PyPI serves the sdist (its stable address for source files), and the file's SHA-256.
VADER_URLS = (f"https://files.pythonhosted.org/packages/source/v/vaderSentiment/{VADER_SDIST}",)
VADER_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
_VADER_TARBALL = "hutto_ICWSM_2014.tar.gz"
#: What ``data_home`` may hold, looked for in this order: the sdist, the inner tarball, either extracted.
_VADER_FORMS = (VADER_SDIST, _VADER_TARBALL, "hutto_ICWSM_2014", VADER_SDIST.removesuffix(".tar.gz"))
_VADER_PIP = "pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d {folder}"
SENTIMENT_DESCR = """\
Hutto & Gilbert's human-rated sentences (VADER, ICWSM 2014)
-----------------------------------------------------------

Amazon review snippets (3,708), movie review snippets (10,605), tweets (4,200)
and New York Times editorial snippets (5,190), each rated by about 20 people
from -4 (most negative) to 4. A sentence is positive (1) if its mean rating is
above 0 and negative (0) below; the sentences rated exactly 0 are dropped,
which leaves 23,320 (10,849 negative, 12,471 positive). MIT licence; from the
vaderSentiment 3.3.2 source distribution.
"""


def load_sentiment_sentences(
    path: str | Path | None = _DEPRECATED,
    sources: str | Sequence[str] = tuple(SENTIMENT_SOURCES),
    min_abs_rating: float = 0.0,
    *,
    data_home: str | Path | None = None,
    download_if_missing: bool = True,
    return_X_y: bool = False,
) -> Bunch | tuple[list, np.ndarray]:
    """Load the human-rated sentences of Hutto & Gilbert (2014) as a binary polarity task.

    The VADER paper's ground truth: Amazon review snippets (3,708), movie
    review snippets (10,605), tweets (4,200) and New York Times editorial
    snippets (5,190), each with the mean rating of about 20 people, from -4
    to 4. It ships (MIT licence) inside the ``vaderSentiment==3.3.2`` source
    distribution as ``additional_resources/hutto_ICWSM_2014.tar.gz``; nothing
    is extracted to disk. A sentence is positive (1) if its mean rating is
    above 0 and negative (0) if below; sentences rated exactly 0 are dropped,
    which leaves 23,320. HTML entities (``&amp;``, and the NYT snippets'
    ``&amp;amp;``) are decoded.

    Parameters
    ----------
    path : str or Path, optional
        Deprecated, use ``data_home``: the sdist, the inner
        ``hutto_ICWSM_2014.tar.gz``, or a folder holding either or the
        extracted ``*_GroundTruth.txt`` files.
    sources : str or sequence of {"amazon", "movies", "tweets", "nyt"}, default=all four
        Which sets to load, concatenated in this order.
    min_abs_rating : float, default=0.0
        Keep only sentences whose mean rating is further than this from 0
        (e.g. 0.5 drops the nearly neutral ones).
    data_home : str or Path, optional
        The data cache (:func:`get_data_home` by default), which holds the
        sdist (``vaderSentiment-3.3.2.tar.gz``, where
        ``scripts/install_data.sh`` downloads it), the inner
        ``hutto_ICWSM_2014.tar.gz``, or either extracted
        (``vaderSentiment-3.3.2``, ``hutto_ICWSM_2014``).
    download_if_missing : bool, default=True
        Download the sdist from PyPI into ``data_home`` if none of them is
        there (checked against its SHA-256); False raises instead.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``data`` (list of str), ``target`` (ndarray of int64, shape (n,): 1
        positive, 0 negative), ``target_names`` (``["negative",
        "positive"]``), ``source`` (ndarray of str: the set each sentence
        comes from, ``"amazon"``, ...), ``rating`` (ndarray of float64: the
        mean human rating), ``DESCR``.
    (data, target) : tuple
        With ``return_X_y=True``.

    Raises
    ------
    FileNotFoundError
        If the data is missing and cannot be downloaded; the message gives
        the ``pip download`` command.
    ValueError
        For an unknown source, or a file not in the published format (the
        message names the file and the line).
    """
    location = _deprecated_location(
        path,
        "path",
        "load_sentiment_sentences",
        data_home,
        f"pass data_home=, the folder that holds {VADER_SDIST}, {_VADER_TARBALL} or its extracted folder.",
    )
    chosen = (sources,) if isinstance(sources, str) else tuple(sources)
    unknown = sorted(set(chosen) - set(SENTIMENT_SOURCES))
    if unknown or not chosen:
        raise ValueError(f"sources must be a non-empty subset of {tuple(SENTIMENT_SOURCES)}, got {sources!r}.")
    if min_abs_rating < 0:
        raise ValueError(f"min_abs_rating must be >= 0, got {min_abs_rating}.")
    if location is None:
        home = get_data_home(data_home)
        location = next(
            (home / name for name in _VADER_FORMS if (home / name).exists()),
            home / VADER_SDIST,
        )
        if not location.exists() and download_if_missing:
            try:
                _download(VADER_URLS, location, "sha256", VADER_SHA256)
            except FileNotFoundError as error:
                raise FileNotFoundError(
                    f"No VADER sentiment data in {home}. {error}. {_vader_help(location)}"
                ) from None
    if not location.exists():
        raise FileNotFoundError(f"No VADER sentiment data at {location}. {_vader_help(location)}")
    files = {f"{SENTIMENT_SOURCES[name]}_GroundTruth.txt": name for name in dict.fromkeys(chosen)}
    contents = _vader_files(location, list(files))
    texts, labels, origin, ratings = [], [], [], []
    for file_name, name in files.items():
        for text, rating in _parse_ground_truth(contents[file_name], file_name):
            if abs(rating) > min_abs_rating:
                texts.append(text)
                labels.append(int(rating > 0))
                origin.append(name)
                ratings.append(rating)
    y = np.array(labels, dtype=np.int64)
    source, rating = np.array(origin, dtype=str), np.array(ratings, dtype=np.float64)
    return _result(
        return_X_y,
        "load_sentiment_sentences",
        (texts, y, source, rating),
        "texts, y, source, rating",
        data=texts,
        target=y,
        target_names=np.array(["negative", "positive"]),
        source=source,
        rating=rating,
        DESCR=SENTIMENT_DESCR,
    )


def _vader_help(location: Path) -> str:
    """How to get the VADER data into the folder of ``location``."""
    folder = location.parent if location.suffix == ".gz" else location
    return (
        f"Get the vaderSentiment sdist (MIT) that carries it with download_if_missing=True, with "
        f"`{_VADER_PIP.format(folder=folder)}` (or run scripts/install_data.sh), or pass data_home= to the folder "
        f"holding {VADER_SDIST}, {_VADER_TARBALL} or its extracted folder."
    )


def _vader_files(path: Path, names: list[str]) -> dict[str, bytes]:
    """Read the ground-truth files ``names`` from an sdist, the inner tarball or a folder."""
    if path.is_dir():
        for folder in (path, path / "hutto_ICWSM_2014", path / "additional_resources" / "hutto_ICWSM_2014"):
            if all((folder / name).is_file() for name in names):
                return {name: (folder / name).read_bytes() for name in names}
        for tarball in (path / VADER_SDIST, path / _VADER_TARBALL, path / "additional_resources" / _VADER_TARBALL):
            if tarball.is_file():
                return _vader_files(tarball, names)
        raise FileNotFoundError(f"{path} has none of {names} (nor {VADER_SDIST} or {_VADER_TARBALL}).")
    try:
        with tarfile.open(path, "r:*") as archive:
            return _vader_members(archive, names, str(path))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{path} is not a readable tarball: {error}") from None


def _vader_members(archive: tarfile.TarFile, names: list[str], where: str) -> dict[str, bytes]:
    """Read ``names`` from ``archive`` (by base name), looking inside a nested ``hutto_ICWSM_2014.tar.gz`` too."""
    members = {member.name.rsplit("/", 1)[-1]: member for member in archive.getmembers() if member.isfile()}
    if all(name in members for name in names):
        return {name: _read_member(archive, members[name], where) for name in names}
    if _VADER_TARBALL in members:
        inner = _read_member(archive, members[_VADER_TARBALL], where)
        with tarfile.open(fileobj=io.BytesIO(inner), mode="r:*") as nested:
            return _vader_members(nested, names, f"{where}:{members[_VADER_TARBALL].name}")
    missing = [name for name in names if name not in members]
    raise ValueError(f"{where} has neither {missing} nor {_VADER_TARBALL}; is it the vaderSentiment 3.3.2 sdist?")


def _read_member(archive: tarfile.TarFile, member: tarfile.TarInfo, where: str) -> bytes:
    """Read one regular file of a tarball."""
    stream = archive.extractfile(member)
    if stream is None:
        raise ValueError(f"{where}: {member.name} is not a regular file.")
    with stream:
        return stream.read()


def _parse_ground_truth(data: bytes, name: str) -> list[tuple[str, float]]:
    """Parse a ``*_GroundTruth.txt`` file: one ``ID<TAB>MEAN-RATING<TAB>TEXT`` line per sentence."""
    try:
        lines = data.decode("utf-8").split("\n")
    except UnicodeDecodeError as error:
        raise ValueError(f"{name} is not UTF-8 text: {error}") from None
    rows = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t", 2)
        try:
            rating = float(fields[1]) if len(fields) == 3 else float("nan")
        except ValueError:
            rating = float("nan")
        if not -4.0 <= rating <= 4.0 or not fields[2].strip():
            raise ValueError(f"{name}, line {number}: expected ID<TAB>rating in [-4, 4]<TAB>text, got {line[:80]!r}.")
        rows.append((_unescape(fields[2].strip()), rating))
    return rows


def _unescape(text: str) -> str:
    """Decode HTML entities, twice escaped ones too (``&amp;amp;`` in the NYT snippets)."""
    for _ in range(3):
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = decoded
    return text
