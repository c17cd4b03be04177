"""Loaders for real datasets, in the formats their fields use.

Every loader returns features and labels ready for
:class:`~skcal.ContinualActiveClassifier`: numpy or scipy.sparse features,
numpy labels. Nothing here downloads anything: files that do not come with a
Python or Debian package are looked up in the data cache, :func:`get_data_home`
(``$SKCAL_DATA``, else ``~/.cache/skcal``), where ``scripts/install_data.sh``
puts them.
"""

from __future__ import annotations

import gzip
import html
import io
import os
import struct
import tarfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

MEDMNIST_SPLITS = ("train", "val", "test")


def get_data_home() -> Path:
    """Return the data cache folder: ``$SKCAL_DATA`` if set, else ``~/.cache/skcal``.

    ``scripts/install_data.sh`` downloads into it; the loaders look there
    first. The folder is not created.

    Returns
    -------
    Path
    """
    return Path(os.environ.get("SKCAL_DATA") or "~/.cache/skcal").expanduser()


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
#: The parts of speech whose lexicographer files are semantic classes: 82,115 noun and 13,767 verb
#: synsets of WordNet 3.0 in 26 + 15 = 41 categories (adjectives and adverbs have only 3 files).
WORDNET_FULL_POS = ("noun", "verb")


def load_wordnet_glosses(
    path: str | Path = "/usr/share/wordnet",
    pos: str | Sequence[str] = "noun",
    categories: list[str] | None = None,
    max_per_category: int | None = None,
    random_state: Any = None,
) -> tuple[list, np.ndarray]:
    """Load WordNet glosses labelled by their lexicographer category: a real text task, offline.

    Reads WordNet's ``data.<pos>`` files (Debian's ``wordnet-base``; NLTK ships the
    same files). Each synset gives one example: the definition part of its
    gloss (before the usage examples) and its lexicographer file, e.g.
    ``noun.animal``. ``pos=WORDNET_FULL_POS`` (``("noun", "verb")``) gives the
    whole task: 95,882 glosses in 41 categories on WordNet 3.0.

    Parameters
    ----------
    path : str or Path, default="/usr/share/wordnet"
        The folder holding ``data.noun`` etc.
    pos : {"noun", "verb", "adj", "adv"} or sequence of them, default="noun"
        One part of speech, or several read one after the other in the given
        order (e.g. ``("noun", "verb")``).
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
        If a data file is missing (``apt-get install wordnet-base``).
    ValueError
        For an unknown ``pos`` or category, or a record without a valid
        lexicographer file number (the message names the file and line).
    """
    from sklearn.utils import check_random_state

    parts = (pos,) if isinstance(pos, str) else tuple(pos)
    if not parts or any(part not in WORDNET_POS for part in parts) or len(set(parts)) != len(parts):
        raise ValueError(f"pos must be one of {WORDNET_POS} or a sequence of distinct ones, got {pos!r}.")
    unknown = sorted(set(categories or ()) - set(WORDNET_LEXNAMES))
    if unknown:
        raise ValueError(f"Unknown WordNet categories {unknown}; they are named like {WORDNET_LEXNAMES[3:6]}.")
    data_files = [Path(path) / f"data.{part}" for part in parts]
    for data_file in data_files:
        if not data_file.exists():
            raise FileNotFoundError(f"No WordNet data at {data_file}; on Debian: apt-get install wordnet-base.")
    texts, labels = [], []
    for data_file in data_files:
        _read_wordnet_data(data_file, categories, texts, labels)
    labels = np.array(labels)
    if max_per_category is not None and len(labels):
        rng = check_random_state(random_state)
        keep = np.sort(
            np.concatenate(
                [rng.permutation(np.flatnonzero(labels == label))[:max_per_category] for label in np.unique(labels)]
            )
        )
        texts, labels = [texts[i] for i in keep], labels[keep]
    return texts, labels


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
_FASHION_MNIST_HELP = (
    "Get the four files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
    "t10k-labels-idx1-ubyte.gz) with Debian's package (apt-get install dataset-fashion-mnist, which puts them in "
    f"{FASHION_MNIST_DEBIAN_ROOT}), or from Zalando's repository (github.com/zalandoresearch/fashion-mnist, "
    "folder data/fashion) into a folder passed as root=."
)


def load_fashion_mnist(
    root: str | Path | None = None, split: str = "train"
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Load one split of Fashion-MNIST from the IDX files Zalando publishes.

    Reads ``<prefix>-images-idx3-ubyte.gz`` and ``<prefix>-labels-idx1-ubyte.gz``
    (``prefix`` is ``train`` or ``t10k``; the same names without ``.gz`` are
    read too) and checks their magic numbers, dimensions and sizes.

    Parameters
    ----------
    root : str or Path, optional
        The folder with the files. By default the first of
        ``get_data_home() / "fashion-mnist"`` and
        ``/usr/share/datasets/fashion-mnist`` (Debian's
        ``dataset-fashion-mnist``) that has them.
    split : {"train", "test"}, default="train"
        60,000 or 10,000 images.

    Returns
    -------
    X : ndarray of float32, shape (n, 1, 28, 28)
        The images scaled to [0, 1].
    y : ndarray of int64, shape (n,)
        Labels 0-9.
    class_names : tuple of str
        ``FASHION_MNIST_CLASSES``: the name of each label.

    Raises
    ------
    FileNotFoundError
        If the files are missing; the message says how to get them.
    ValueError
        For a bad ``split``, or a corrupt or truncated file (the message names it).
    """
    if split not in FASHION_MNIST_SPLITS:
        raise ValueError(f"split must be one of {tuple(FASHION_MNIST_SPLITS)}, got {split!r}.")
    prefix = FASHION_MNIST_SPLITS[split]
    names = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    roots = [Path(root).expanduser()] if root is not None else [get_data_home() / "fashion-mnist"]
    if root is None:
        roots.append(FASHION_MNIST_DEBIAN_ROOT)
    for folder in roots:
        files = [_idx_file(folder, name) for name in names]
        if all(files):
            break
    else:
        where = " or ".join(str(folder) for folder in roots)
        raise FileNotFoundError(
            f"No Fashion-MNIST {split} files ({names[0]}[.gz], {names[1]}[.gz]) in {where}. " + _FASHION_MNIST_HELP
        )
    images, labels = _read_idx(files[0], 3), _read_idx(files[1], 1)
    if images.shape[1:] != (28, 28):
        raise ValueError(f"{files[0]} holds images of {images.shape[1:]} pixels; Fashion-MNIST's are 28x28.")
    if len(images) != len(labels):
        raise ValueError(f"{files[0].name} has {len(images)} images but {files[1].name} has {len(labels)} labels.")
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise ValueError(f"{files[1]} has label {labels.max()}; Fashion-MNIST's are 0-9.")
    X = (images.astype(np.float32) / np.float32(255.0))[:, None]
    return X, labels.astype(np.int64), FASHION_MNIST_CLASSES


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
_VADER_TARBALL = "hutto_ICWSM_2014.tar.gz"
_VADER_PIP = "pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d {folder}"


def load_sentiment_sentences(
    path: str | Path | None = None,
    sources: str | Sequence[str] = tuple(SENTIMENT_SOURCES),
    min_abs_rating: float = 0.0,
) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
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
        The sdist (``vaderSentiment-3.3.2.tar.gz``), the inner
        ``hutto_ICWSM_2014.tar.gz``, or a folder holding the extracted
        ``*_GroundTruth.txt`` files (or one of the two tarballs, or the
        extracted sdist). By default ``get_data_home() / VADER_SDIST``, where
        ``scripts/install_data.sh`` downloads it.
    sources : str or sequence of {"amazon", "movies", "tweets", "nyt"}, default=all four
        Which sets to load, concatenated in this order.
    min_abs_rating : float, default=0.0
        Keep only sentences whose mean rating is further than this from 0
        (e.g. 0.5 drops the nearly neutral ones).

    Returns
    -------
    texts : list of str
    y : ndarray of int64, shape (n,)
        1 for positive, 0 for negative.
    source : ndarray of str, shape (n,)
        The set each sentence comes from (``"amazon"``, ...).
    rating : ndarray of float64, shape (n,)
        The mean human rating.

    Raises
    ------
    FileNotFoundError
        If the data is missing; the message gives the ``pip download`` command.
    ValueError
        For an unknown source, or a file not in the published format (the
        message names the file and the line).
    """
    chosen = (sources,) if isinstance(sources, str) else tuple(sources)
    unknown = sorted(set(chosen) - set(SENTIMENT_SOURCES))
    if unknown or not chosen:
        raise ValueError(f"sources must be a non-empty subset of {tuple(SENTIMENT_SOURCES)}, got {sources!r}.")
    if min_abs_rating < 0:
        raise ValueError(f"min_abs_rating must be >= 0, got {min_abs_rating}.")
    if path is None:
        home = get_data_home()
        path = next(
            (home / name for name in (VADER_SDIST, _VADER_TARBALL, "hutto_ICWSM_2014") if (home / name).exists()),
            home / VADER_SDIST,
        )
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"No VADER sentiment data at {path}. Get the vaderSentiment sdist (MIT) that carries it with "
            f"`{_VADER_PIP.format(folder=path.parent if path.suffix == '.gz' else path)}` "
            f"(or run scripts/install_data.sh), or pass path= to the sdist, to {_VADER_TARBALL} or to its "
            "extracted folder."
        )
    files = {f"{SENTIMENT_SOURCES[name]}_GroundTruth.txt": name for name in dict.fromkeys(chosen)}
    contents = _vader_files(path, list(files))
    texts, labels, origin, ratings = [], [], [], []
    for file_name, name in files.items():
        for text, rating in _parse_ground_truth(contents[file_name], file_name):
            if abs(rating) > min_abs_rating:
                texts.append(text)
                labels.append(int(rating > 0))
                origin.append(name)
                ratings.append(rating)
    return texts, np.array(labels, dtype=np.int64), np.array(origin, dtype=str), np.array(ratings, dtype=np.float64)


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
