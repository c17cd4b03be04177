"""Load a built-in dataset or a user's file for the benchmark (:func:`load_benchmark_data`).

Every failure to find or read the data is a
:class:`~skcal.exceptions.BenchmarkInputError` that names the argument at
fault and, for the built-in data, says how to get it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import datasets
from ..exceptions import BenchmarkInputError
from .data import QUICK_SIZES, WORDNET_CATEGORIES, BenchmarkData, check_model, check_npz, read_input
from .networks import image_data, tabular_data, text_data


def load_benchmark_data(
    dataset: str,
    label_key: str | None = None,
    data_root: str | Path = "~/.medmnist",
    medmnist_flag: str = "dermamnist",
    model: str | None = None,
    quick: bool = False,
    embedding_cache: str | Path | None = None,
    device: str = "cpu",
) -> BenchmarkData:
    """Load a built-in dataset or a user file, with the network and training settings for it.

    Parameters
    ----------
    dataset : str
        ``"digits"`` (scikit-learn's 8x8 digits), ``"fashion-mnist"``
        (Zalando's 60,000 training images as the pool, the 10,000 test
        images as the test set; Debian's ``dataset-fashion-mnist``),
        ``"pbmc68k"`` (scanpy's 700 PBMCs, ``bulk_labels``, an ACTINN-shaped
        MLP), ``"sentiment"`` (Hutto & Gilbert's 23,320 human-rated
        sentences, positive or negative; all-MiniLM-L6-v2 sentence
        embeddings and an MLP), ``"wordnet"`` (the 95,882 noun and verb
        glosses of WordNet in their 41 lexicographer categories, on
        sentence embeddings; with ``quick``, 2000 noun glosses in 5
        categories on TF-IDF), ``"medmnist"`` (``medmnist_flag`` from
        ``data_root``, train and test pooled), or a path: ``.h5ad`` (needs
        ``label_key``; ACTINN MLP, sparse kept sparse), MedMNIST ``.npz``
        (train and test splits pooled), or ``.csv`` with ``text`` and
        ``label`` columns (TF-IDF, sparse, then an MLP).
    label_key : str, optional
        The ``obs`` column with labels, for ``.h5ad`` files.
    data_root : str or Path, default="~/.medmnist"
        Where ``medmnist`` finds ``<flag>.npz``.
    medmnist_flag : str, default="dermamnist"
        The MedMNIST dataset for ``"medmnist"`` (DermaMNIST is the paper's).
    model : str, optional
        A key of :data:`~skcal.bench.data.MODELS` that applies to the data
        (:data:`~skcal.bench.data.MODELS_BY_KIND`); by default ``cnn`` for images (``mlp``
        for Fashion-MNIST, which makes the full campaign feasible on a
        CPU), ``mlp`` otherwise.
    quick : bool, default=False
        Smaller variants for short runs: WordNet's 5-category noun task,
        and default subsamples (:data:`~skcal.bench.data.QUICK_SIZES`, :data:`~skcal.bench.data.MINILM_QUICK_SIZES`).
    embedding_cache : str or Path, optional
        Where sentence embeddings are cached
        (:func:`skcal.text_embedding.sentence_embeddings`; by default
        ``$SKCAL_DATA/embeddings``).
    device : str, default="cpu"
        Where sentence embeddings are computed.

    Returns
    -------
    BenchmarkData
        The data, the network and its training settings.

    Raises
    ------
    BenchmarkInputError
        For an unknown dataset name or file type, a model that does not
        apply, a missing or unreadable file (the message says how to get
        the built-in data), an ``.npz`` without MedMNIST's arrays or with
        arrays of the wrong shapes, an ``.h5ad`` without ``label_key`` or
        without that column, or an unknown or multi-label MedMNIST flag.
        ``parameter`` says which argument is at fault.
    """
    model = check_model(dataset, model)
    if dataset == "digits":
        X, y = datasets.load_digits_images(return_X_y=True)
        return image_data("digits", X, y, "scikit-learn digits (1797 8x8 images, 10 classes)", model)
    if dataset == "fashion-mnist":
        (X, y), (X_test, y_test) = read_input(
            dataset,
            "Fashion-MNIST",
            lambda: [
                datasets.load_fashion_mnist(split=split, download_if_missing=False, return_X_y=True)
                for split in ("train", "test")
            ],
        )
        return image_data(
            "fashion-mnist",
            X,
            y,
            f"Fashion-MNIST ({len(y)} training images as the pool, {len(y_test)} test images, 10 classes)",
            model,
            X_test,
            y_test,
            sizes=QUICK_SIZES["fashion-mnist"] if quick else (None, None),
        )
    if dataset == "pbmc68k":
        X, y = read_input(dataset, "scanpy's pbmc68k_reduced", lambda: datasets.load_pbmc68k(return_X_y=True))
        return tabular_data("pbmc68k", X, y, "scanpy pbmc68k_reduced (700 cells, 765 genes, 10 types), ACTINN MLP")
    if dataset == "medmnist":
        return _medmnist_data(data_root, medmnist_flag, model)
    if dataset == "sentiment":
        texts, y = read_input(
            dataset,
            "the VADER sentiment sentences",
            lambda: datasets.load_sentiment_sentences(download_if_missing=False, return_X_y=True),
        )
        description = f"VADER human-rated sentences ({len(y)}, positive/negative)"
        sizes = QUICK_SIZES["sentiment"] if quick else (None, None)
        return text_data("sentiment", texts, y, description, model, "embeddings", quick, sizes, embedding_cache, device)
    if dataset == "wordnet":
        if quick:
            texts, y = read_input(
                dataset,
                "the WordNet glosses",
                lambda: datasets.load_wordnet_glosses(
                    categories=WORDNET_CATEGORIES, max_per_category=400, random_state=0, return_X_y=True
                ),
            )
            description = f"WordNet noun glosses ({len(y)}, 5 categories)"
            return text_data("wordnet", texts, y, description, model, "tfidf", quick, (None, None))
        texts, y = read_input(
            dataset,
            "the WordNet glosses",
            lambda: datasets.load_wordnet_glosses(pos=datasets.WORDNET_FULL_POS, return_X_y=True),
        )
        description = f"WordNet noun and verb glosses ({len(y)}, {len(np.unique(y))} lexicographer categories)"
        return text_data(
            "wordnet", texts, y, description, model, "embeddings", quick, (None, None), embedding_cache, device
        )
    path = Path(dataset)
    suffix = path.suffix.lower()
    if suffix == ".h5ad" and not label_key:
        raise BenchmarkInputError("label_key", "An .h5ad dataset needs --label-key, the obs column with the labels.")
    if not path.exists():
        raise BenchmarkInputError("dataset", f"No such file: {path}.")
    if not path.is_file():
        raise BenchmarkInputError("dataset", f"{path} is not a file.")
    if suffix == ".h5ad":
        X, y = _read_anndata(path, label_key)
        return tabular_data(path.stem, X, y, f"{path.name} ({X.shape[0]} cells, {X.shape[1]} genes), ACTINN MLP")
    if suffix == ".npz":
        check_npz(path)
        X, y = read_input(
            dataset,
            path.name,
            lambda: _train_and_test(lambda split: datasets.load_medmnist_npz(path, split, return_X_y=True)),
        )
        return image_data(path.stem, X, y, f"{path.name} ({len(y)} images {X.shape[1:]})", model)
    texts, y = read_input(dataset, path.name, lambda: datasets.load_text_csv(path, return_X_y=True))
    if not any(text.strip() for text in texts):
        raise BenchmarkInputError("dataset", f"{path.name}: every text is empty.")
    return text_data(path.stem, texts, y, f"{path.name} ({len(y)} texts)", model, "tfidf", quick, (None, None))


def _read_anndata(path: Path, label_key: str) -> tuple[Any, np.ndarray]:
    """Read an ``.h5ad`` file; a broken file blames ``dataset``, a bad label column ``label_key``."""
    try:
        import anndata
    except ImportError as error:
        raise BenchmarkInputError("dataset", f".h5ad files need the anndata package: {error}.") from None
    adata = read_input(str(path), f"{path.name} as an AnnData .h5ad file", lambda: anndata.read_h5ad(path))
    if label_key not in adata.obs:
        raise BenchmarkInputError(
            "label_key", f"{path.name} has no obs column {label_key!r}; its columns are {list(adata.obs.columns)}."
        )
    unlabelled = int(adata.obs[label_key].isna().sum())
    if unlabelled:
        raise BenchmarkInputError("label_key", f"{unlabelled} cells of {path.name} have no {label_key!r} label.")
    return read_input(str(path), path.name, lambda: datasets.load_anndata(adata, label_key, return_X_y=True))


def _medmnist_data(data_root: str | Path, flag: str, model: str = "cnn") -> BenchmarkData:
    """Check the flag and the file under ``data_root``, then load through the ``medmnist`` package."""
    try:
        from medmnist import INFO
    except ImportError as error:
        raise BenchmarkInputError("dataset", f"'medmnist' needs the medmnist package: {error}.") from None
    if flag not in INFO:
        raise BenchmarkInputError("medmnist_flag", f"Unknown MedMNIST flag {flag!r}; choose from {sorted(INFO)}.")
    task = INFO[flag]["task"]
    if not task.startswith(("multi-class", "binary", "ordinal")):
        raise BenchmarkInputError("medmnist_flag", f"{flag} is a {task} task; skcal needs one label per image.")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise BenchmarkInputError("data_root", f"{root} is not a folder; it should hold {flag}.npz.")
    path = root / f"{flag}.npz"
    if not path.is_file():
        raise BenchmarkInputError(
            "data_root", f"No {flag}.npz in {root}; download it with the medmnist package where a network is available."
        )
    check_npz(path, parameter="data_root")
    # data_root is the folder of <flag>.npz itself (medmnist's own layout), which load_medmnist's
    # data_home (a cache with a medmnist/ subfolder) does not name: read the file checked above
    X, y = read_input(
        "medmnist",
        path.name,
        lambda: _train_and_test(lambda split: datasets.load_medmnist_npz(path, split, return_X_y=True)),
    )
    return image_data(flag, X, y, f"MedMNIST {flag} ({len(y)} images {X.shape[1:]})", model)


def _train_and_test(load: Callable[[str], tuple]) -> tuple[np.ndarray, np.ndarray]:
    """Pool a MedMNIST dataset's train and test splits (each benchmark seed splits them anew)."""
    parts = [load(split) for split in ("train", "test")]
    return np.concatenate([part[0] for part in parts]), np.concatenate([part[1] for part in parts])
