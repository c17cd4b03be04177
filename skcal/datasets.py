"""Loaders for real datasets, in the formats their fields use.

Every loader returns features and labels ready for
:class:`~skcal.ContinualActiveClassifier`: numpy or scipy.sparse features,
numpy labels. Nothing here downloads anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

MEDMNIST_SPLITS = ("train", "val", "test")


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """Load scikit-learn's digits as images: ``X`` of shape (1797, 1, 8, 8) in [0, 1], ``y`` in 0-9.

    Returns
    -------
    X : ndarray of float32, shape (1797, 1, 8, 8)
    y : ndarray of int, shape (1797,)
    """
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), y


def load_anndata(
    path_or_adata: Any,
    label_key: str,
    layer: str | None = None,
    normalize: bool = False,
    target_sum: float = 1e4,
) -> tuple[Any, np.ndarray]:
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

    Returns
    -------
    X : ndarray or scipy.sparse.csr_matrix of float32, shape (n_cells, n_genes)
    y : ndarray of str, shape (n_cells,)

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
    else:
        adata = path_or_adata
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
    return X, labels.astype(str).to_numpy()


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


def load_pbmc68k() -> tuple[np.ndarray, np.ndarray]:
    """Load the 700 PBMC cells (765 genes, 10 types in ``bulk_labels``) that ship with scanpy.

    Returns
    -------
    X : ndarray of float32, shape (700, 765)
        scanpy's preprocessed (log-normalised, scaled) expression.
    y : ndarray of str, shape (700,)
    """
    import scanpy

    return load_anndata(scanpy.datasets.pbmc68k_reduced(), "bulk_labels")


def load_medmnist_npz(path: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Load one split of a MedMNIST ``.npz`` file (keys ``<split>_images``, ``<split>_labels``).

    Parameters
    ----------
    path : str or Path
        The file, as the ``medmnist`` package downloads it (e.g. ``dermamnist.npz``).
    split : {"train", "val", "test"}, default="train"

    Returns
    -------
    X : ndarray of float32, shape (n, channels, size, size), in [0, 1]
    y : ndarray of int, shape (n,)

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
    return _medmnist_arrays(images, labels, path.name)


def _medmnist_arrays(images: np.ndarray, labels: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """MedMNIST's uint8 images (n, h, w[, c]) and labels (n, 1) as float32 (n, c, h, w) in [0, 1] and int64 (n,)."""
    if labels.ndim == 2 and labels.shape[1] != 1:
        raise ValueError(f"{name} has multi-label targets {labels.shape}; skcal needs one label per image.")
    images = images.astype(np.float32) / 255.0
    images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(images), labels.reshape(-1).astype(np.int64)


def load_medmnist(
    flag: str, split: str = "train", root: str | Path = "~/.medmnist", size: int = 28, download: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Load a MedMNIST dataset through the ``medmnist`` package's own classes and files.

    Parameters
    ----------
    flag : str
        The dataset, e.g. ``"dermamnist"`` (the paper's) or ``"pathmnist"``.
    split : {"train", "val", "test"}, default="train"
    root : str or Path, default="~/.medmnist"
        Where ``<flag>.npz`` (``<flag>_<size>.npz`` for larger sizes) lives.
    size : {28, 64, 128, 224}, default=28
    download : bool, default=False
        Let ``medmnist`` download the file if it is missing (needs network).

    Returns
    -------
    X : ndarray of float32, shape (n, channels, size, size), in [0, 1]
    y : ndarray of int, shape (n,)

    Raises
    ------
    ValueError
        An unknown or multi-label flag, or a bad split.
    FileNotFoundError
        The file is missing and ``download`` is False.
    """
    import medmnist
    from medmnist import INFO

    if flag not in INFO:
        raise ValueError(f"Unknown MedMNIST flag {flag!r}; choose from {sorted(INFO)}.")
    if not INFO[flag]["task"].startswith(("multi-class", "binary", "ordinal")):
        raise ValueError(f"{flag} is a {INFO[flag]['task']} task; skcal needs one label per image.")
    if split not in MEDMNIST_SPLITS:
        raise ValueError(f"split must be one of {MEDMNIST_SPLITS}, got {split!r}.")
    root = Path(root).expanduser()
    expected = root / (f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz")
    if not download and not expected.exists():
        raise FileNotFoundError(f"No MedMNIST file at {expected}; pass download=True where a network is available.")
    root.mkdir(parents=True, exist_ok=True)
    dataset = getattr(medmnist, INFO[flag]["python_class"])(
        split=split, root=str(root), size=None if size == 28 else size, download=download
    )
    return _medmnist_arrays(dataset.imgs, dataset.labels, expected.name)


def load_text_csv(path: str | Path, text_column: str = "text", label_column: str = "label") -> tuple[list, np.ndarray]:
    """Load texts and labels from a CSV file with a text column and a label column.

    Parameters
    ----------
    path : str or Path
    text_column, label_column : str

    Returns
    -------
    texts : list of str
    y : ndarray of str

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
    return frame[text_column].fillna("").astype(str).tolist(), frame[label_column].astype(str).to_numpy()


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


def load_wordnet_glosses(
    path: str | Path = "/usr/share/wordnet",
    pos: str = "noun",
    categories: list[str] | None = None,
    max_per_category: int | None = None,
    random_state: Any = None,
) -> tuple[list, np.ndarray]:
    """Load WordNet glosses labelled by their lexicographer category: a real text task, offline.

    Reads WordNet's ``data.<pos>`` file (Debian's ``wordnet-base``; NLTK ships the
    same files). Each synset gives one example: the definition part of its
    gloss (before the usage examples) and its lexicographer file, e.g.
    ``noun.animal``.

    Parameters
    ----------
    path : str or Path, default="/usr/share/wordnet"
        The folder holding ``data.noun`` etc.
    pos : {"noun", "verb", "adj", "adv"}, default="noun"
    categories : list of str, optional
        Keep only these lexicographer files (e.g. ``["noun.animal", "noun.food"]``).
    max_per_category : int, optional
        Keep at most this many glosses per category, drawn at random.
    random_state : int, RandomState instance or None, default=None
        For ``max_per_category``.

    Returns
    -------
    texts : list of str
    y : ndarray of str

    Raises
    ------
    FileNotFoundError
        If the data file is missing (``apt-get install wordnet-base``).
    ValueError
        For an unknown ``pos`` or category.
    """
    from sklearn.utils import check_random_state

    if pos not in WORDNET_POS:
        raise ValueError(f"pos must be one of {WORDNET_POS}, got {pos!r}.")
    unknown = sorted(set(categories or ()) - set(WORDNET_LEXNAMES))
    if unknown:
        raise ValueError(f"Unknown WordNet categories {unknown}; they are named like {WORDNET_LEXNAMES[3:6]}.")
    data_file = Path(path) / f"data.{pos}"
    if not data_file.exists():
        raise FileNotFoundError(f"No WordNet data at {data_file}; on Debian: apt-get install wordnet-base.")
    texts, labels = [], []
    with open(data_file, encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("  ") or " | " not in line:  # the licence header
                continue
            fields, gloss = line.split(" | ", 1)
            label = WORDNET_LEXNAMES[int(fields.split()[1])]
            if categories and label not in categories:
                continue
            texts.append(gloss.split('; "')[0].strip())
            labels.append(label)
    labels = np.array(labels)
    if max_per_category is not None:
        rng = check_random_state(random_state)
        keep = np.sort(
            np.concatenate(
                [rng.permutation(np.flatnonzero(labels == label))[:max_per_category] for label in np.unique(labels)]
            )
        )
        texts, labels = [texts[i] for i in keep], labels[keep]
    return texts, labels
