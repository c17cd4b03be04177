"""Benchmark datasets: which exist, the networks each kind of data takes, what a loaded one holds.

:class:`BenchmarkData` is a dataset ready for :func:`~skcal.bench.run_benchmark`
(:func:`~skcal.bench.load_benchmark_data` loads one, :mod:`skcal.bench.networks`
gives it its network). :func:`check_model` and :func:`check_npz` check a
user's choice of network and a user's ``.npz`` file before anything is
loaded; :func:`read_input` turns any failure of a reader into a
:class:`~skcal.exceptions.BenchmarkInputError` that blames ``dataset``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import BenchmarkInputError
from ..utils.params import StrOptions
from .arguments import check_input

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
    check_input("model", model, [StrOptions(set(MODELS)), None])
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


def read_input(dataset: str, what: str, load: Callable[[], Any]) -> Any:
    """Run a loader; any failure to read the user's data becomes a :class:`BenchmarkInputError`."""
    try:
        return load()
    except BenchmarkInputError:
        raise
    except ImportError as error:
        raise BenchmarkInputError("dataset", f"{dataset!r} needs a package that is missing: {error}.") from None
    except Exception as error:  # a file of the wrong kind can fail in any reader's own way
        raise BenchmarkInputError("dataset", f"cannot read {what}: {describe_error(error)}") from None


def describe_error(error: BaseException) -> str:
    """``KeyError('x')`` reads as ``'x'``; keep the message, name the type."""
    message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return f"{message} ({type(error).__name__})" if message else type(error).__name__


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
        raise fail(f"cannot read the arrays: {describe_error(error)}") from None
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
