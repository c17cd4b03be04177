"""The paper's experiment: every method, the same AL campaign, speedup against standard AL.

The protocol is described in ``docs/protocol.md``: the seed round and
``retrain``/``warmstart`` rounds train until the training accuracy reaches
0.99 (at most ``max_epochs`` epochs); CAL rounds train a fixed
``round_epochs`` epochs over the new points with replay. Queries use entropy
sampling. For every seed, all methods start from the same random seed set and
train/test split. Speedup at a labelled fraction is the cumulative training
time of ``retrain`` divided by the method's, measured in the same run (and
the same ratio of samples backpropagated, which machine noise cannot touch).

Every input is checked before any training (:func:`check_arguments`,
:func:`check_device`, :func:`load_benchmark_data`, :func:`plan_benchmark`,
:func:`prepare_output`); a bad one raises :class:`BenchmarkInputError`, which
names the argument at fault.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from . import datasets
from ._data import n_samples, select_rows
from .estimator import ContinualActiveClassifier
from .models import ACTINN, MLP, SmallCNN
from .query import entropy_sampling
from .replay import REPLAY_STRATEGIES, display_name
from .simulation import ActiveLearningSimulator

BUILTIN_DATASETS = ("digits", "pbmc68k", "wordnet", "medmnist")
WORDNET_CATEGORIES = ["noun.animal", "noun.artifact", "noun.food", "noun.plant", "noun.person"]
USER_SUFFIXES = (".h5ad", ".npz", ".csv")


@dataclass
class BenchmarkData:
    """A dataset ready for the benchmark, with the network and training settings for it.

    Attributes
    ----------
    name : str
        Short name, used for output folders.
    X, y : Any, ndarray
        All data; each seed splits it into pool and test set.
    estimator_params : dict
        :class:`~skcal.ContinualActiveClassifier` parameters (module, optimiser, epochs).
    description : str
        One line for the report.
    """

    name: str
    X: Any
    y: np.ndarray
    estimator_params: dict
    description: str


def _training(lr: float, optimizer: Any, batch_size: int, max_epochs: int, round_epochs: int, **extra: Any) -> dict:
    return dict(
        lr=lr,
        optimizer=optimizer,
        batch_size=batch_size,
        replay_size=batch_size,
        max_epochs=max_epochs,
        train_accuracy_stop=0.99,
        round_epochs=round_epochs,
        verbose=0,
        **extra,
    )


def _image_data(name: str, X: np.ndarray, y: np.ndarray, description: str) -> BenchmarkData:
    params = dict(module=SmallCNN, module__in_channels=X.shape[1], module__n_classes=len(np.unique(y)))
    params.update(_training(0.05, torch.optim.SGD, 32, 60, 10, optimizer__momentum=0.9))
    return BenchmarkData(name, X, y, params, description)


def _tabular_data(name: str, X: Any, y: np.ndarray, description: str) -> BenchmarkData:
    params = dict(module=ACTINN, module__n_features=X.shape[1], module__n_classes=len(np.unique(y)))
    params.update(_training(1e-3, torch.optim.Adam, 32, 100, 10))
    return BenchmarkData(name, X, y, params, description)


class BenchmarkInputError(ValueError):
    """A benchmark input that cannot be used, found before any training.

    Parameters
    ----------
    parameter : str
        The argument at fault, as the functions of this module name it
        (``"dataset"``, ``"label_key"``, ``"data_root"``, ``"medmnist_flag"``,
        ``"methods"``, ``"budgets"``, ``"initial"``, ``"query"``, ``"seeds"``,
        ``"device"``, ``"out"``); ``skcal bench`` reports it as the flag
        ``--<parameter>`` with dashes.
    message : str
        What is wrong, and what would be right.

    Attributes
    ----------
    parameter : str
        As passed.
    """

    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter


#: The arrays ``skcal bench`` reads from a MedMNIST-format ``.npz`` (train and test are pooled).
NPZ_ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")


def load_benchmark_data(
    dataset: str,
    label_key: str | None = None,
    data_root: str | Path = "~/.medmnist",
    medmnist_flag: str = "dermamnist",
) -> BenchmarkData:
    """Load a built-in dataset (``digits``, ``pbmc68k``, ``wordnet``, ``medmnist``) or a user file.

    Parameters
    ----------
    dataset : str
        ``"digits"`` (scikit-learn's 8x8 digits, a small CNN), ``"pbmc68k"``
        (scanpy's 700 PBMCs, ``bulk_labels``, an ACTINN-shaped MLP),
        ``"wordnet"`` (2000 WordNet noun glosses in 5 lexicographer
        categories, from Debian's ``wordnet-base``; TF-IDF, sparse, MLP),
        ``"medmnist"`` (``medmnist_flag`` from ``data_root``, train and test
        pooled; small CNN), or a
        path: ``.h5ad`` (needs ``label_key``; ACTINN MLP, sparse kept
        sparse), MedMNIST ``.npz`` (train and test splits pooled; small
        CNN), or ``.csv`` with ``text`` and ``label`` columns (TF-IDF,
        sparse, then an MLP).
    label_key : str, optional
        The ``obs`` column with labels, for ``.h5ad`` files.
    data_root : str or Path, default="~/.medmnist"
        Where ``medmnist`` finds ``<flag>.npz``.
    medmnist_flag : str, default="dermamnist"
        The MedMNIST dataset for ``"medmnist"`` (DermaMNIST is the paper's).

    Returns
    -------
    BenchmarkData

    Raises
    ------
    BenchmarkInputError
        For an unknown dataset name or file type, a missing or unreadable
        file, an ``.npz`` without MedMNIST's arrays or with arrays of the
        wrong shapes, an ``.h5ad`` without ``label_key`` or without that
        column, or an unknown or multi-label MedMNIST flag. ``parameter``
        says which argument is at fault.
    """
    if dataset == "digits":
        X, y = datasets.load_digits_images()
        return _image_data("digits", X, y, "scikit-learn digits (1797 8x8 images, 10 classes), small CNN")
    if dataset == "pbmc68k":
        X, y = _read(dataset, "scanpy's pbmc68k_reduced", datasets.load_pbmc68k)
        return _tabular_data("pbmc68k", X, y, "scanpy pbmc68k_reduced (700 cells, 765 genes, 10 types), ACTINN MLP")
    if dataset == "medmnist":
        return _medmnist_data(data_root, medmnist_flag)
    if dataset == "wordnet":
        texts, y = _read(
            dataset,
            "the WordNet glosses",
            lambda: datasets.load_wordnet_glosses(categories=WORDNET_CATEGORIES, max_per_category=400, random_state=0),
        )
        return _text_data("wordnet", texts, y, f"WordNet noun glosses ({len(y)}, 5 categories), TF-IDF + MLP")
    path = Path(dataset)
    suffix = path.suffix.lower()
    if suffix not in USER_SUFFIXES:
        raise BenchmarkInputError(
            "dataset",
            f"Unknown dataset {dataset!r}: use one of {BUILTIN_DATASETS} or a file ending in {USER_SUFFIXES}.",
        )
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
        return _image_data(path.stem, X, y, f"{path.name} ({len(y)} images {X.shape[1:]}), small CNN")
    texts, y = _read(dataset, path.name, lambda: datasets.load_text_csv(path))
    if not any(text.strip() for text in texts):
        raise BenchmarkInputError("dataset", f"{path.name}: every text is empty.")
    return _text_data(path.stem, texts, y, f"{path.name} ({len(y)} texts), TF-IDF + MLP")


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


def _medmnist_data(data_root: str | Path, flag: str) -> BenchmarkData:
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
    return _image_data(flag, X, y, f"MedMNIST {flag} ({len(y)} images {X.shape[1:]}), small CNN")


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


def _text_data(name: str, texts: list, y: np.ndarray, description: str) -> BenchmarkData:
    from sklearn.feature_extraction.text import TfidfVectorizer

    X = TfidfVectorizer(max_features=5000, sublinear_tf=True).fit_transform(texts).astype(np.float32)
    params = dict(module=MLP, module__n_features=X.shape[1], module__n_classes=len(np.unique(y)))
    params.update(_training(1e-3, torch.optim.Adam, 32, 100, 10))
    return BenchmarkData(name, X, y, params, description)


@dataclass
class BenchmarkResult:
    """Everything a benchmark run measured.

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
    """

    data: BenchmarkData
    methods: list
    budgets: list
    rounds: list = field(default_factory=list)
    budget_rounds: dict = field(default_factory=dict)
    final_entropy: dict = field(default_factory=dict)


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
        Points in each seed's pool (the rest is the test set).
    initial_count : int
        Seed-set size.
    query_count : int
        Labels per round.
    budget_rounds : dict
        Budget to the round that reports it.
    """

    n_pool: int
    initial_count: int
    query_count: int
    budget_rounds: dict


def plan_benchmark(
    data: BenchmarkData,
    methods: Sequence[str],
    budgets: Sequence[float],
    initial: float = 0.05,
    query: float = 0.05,
    test_size: float = 0.25,
) -> BenchmarkPlan:
    """Check a dataset and the campaign settings together, and size the campaigns; trains nothing.

    Parameters
    ----------
    data : BenchmarkData
    methods : sequence of str
    budgets : sequence of float
    initial, query : float, default=0.05
        Seed-set size and labels per round, as fractions of the pool.
    test_size : float, default=0.25
        Held-out fraction.

    Returns
    -------
    BenchmarkPlan

    Raises
    ------
    BenchmarkInputError
        Everything :func:`check_arguments` rejects; a dataset with fewer
        than two classes, features that are not finite, or classes too
        small for a stratified pool/test split (``parameter="dataset"``);
        two budgets reported by the same round, or budgets asking for more
        labels than the pool holds (``parameter="budgets"``).
    """
    budgets = sorted(budgets)
    check_arguments(methods, budgets, initial, query)
    labels = np.asarray(data.y)
    n_total = len(labels)
    n_rows = n_samples(data.X)
    if n_rows != n_total:
        raise BenchmarkInputError("dataset", f"{data.name}: {n_rows} samples but {n_total} labels.")
    classes = np.unique(labels)
    if len(classes) < 2:
        raise BenchmarkInputError(
            "dataset", f"{data.name} has {len(classes)} class(es); a classifier needs at least 2."
        )
    values = data.X.data if hasattr(data.X, "tocsr") else np.asarray(data.X)
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise BenchmarkInputError("dataset", f"{data.name}: the features contain NaN or infinity.")
    try:
        train_test_split(np.arange(n_total), test_size=test_size, stratify=labels, random_state=0)
    except ValueError as error:
        raise BenchmarkInputError(
            "dataset",
            f"{data.name} ({n_total} samples, {len(classes)} classes) cannot be split into a stratified pool and "
            f"a {test_size:.0%} test set: {error}",
        ) from None
    n_pool = n_total - int(np.ceil(test_size * n_total))
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
    return BenchmarkPlan(n_pool, initial_count, step, budget_rounds)


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
    import tempfile

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


def run_benchmark(
    data: BenchmarkData,
    methods: Sequence[str],
    budgets: Sequence[float],
    seeds: int = 3,
    initial: float = 0.05,
    query: float = 0.05,
    test_size: float = 0.25,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> BenchmarkResult:
    """Run the AL campaign for every seed and method.

    Parameters
    ----------
    data : BenchmarkData
    methods : sequence of str
        Replay aliases; must include ``"retrain"``.
    budgets : sequence of float
        Labelled fractions of the pool to report at; the campaign runs to the largest.
    seeds : int, default=3
    initial, query : float, default=0.05
        Seed-set size and labels per round, as fractions of the pool.
    test_size : float, default=0.25
        Held-out fraction, split off (stratified) per seed.
    device : str, default="cpu"
    progress : callable, optional
        Called with a short description after each finished campaign.

    Returns
    -------
    BenchmarkResult

    Raises
    ------
    BenchmarkInputError
        Before any training: bad methods, budgets, data (:func:`plan_benchmark`),
        device (:func:`check_device`) or ``seeds``.
    """
    budgets = sorted(budgets)
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise BenchmarkInputError("seeds", f"seeds must be a positive integer, got {seeds!r}.")
    check_device(device)
    plan = plan_benchmark(data, methods, budgets, initial, query, test_size)
    budget_rounds = plan.budget_rounds
    result = BenchmarkResult(data, list(methods), budgets, budget_rounds=budget_rounds)
    _warm_up(data, device)
    for seed in range(seeds):
        pool, test = train_test_split(np.arange(len(data.y)), test_size=test_size, stratify=data.y, random_state=seed)
        X_pool, y_pool = select_rows(data.X, pool), data.y[pool]
        eval_set = (select_rows(data.X, test), data.y[test])
        for method in methods:
            simulator = ActiveLearningSimulator(
                ContinualActiveClassifier(**data.estimator_params, replay=method, device=device, random_state=seed),
                entropy_sampling,
                initial_size=plan.initial_count,
                query_size=plan.query_count,
                n_rounds=max(budget_rounds.values()),
                random_state=seed,
                track_forgetting=True,
            ).fit(X_pool, y_pool, eval_set=eval_set)
            for record in simulator.records_:
                result.rounds.append({"dataset": data.name, "seed": seed, "method": method, **record})
            if seed == 0:
                probabilities = simulator.predict_proba(eval_set[0])
                result.final_entropy[method] = -(probabilities * np.log(probabilities + 1e-12)).sum(axis=1)
            if progress:
                progress(f"{data.name} seed {seed} {method}")
    return result


def _warm_up(data: BenchmarkData, device: str) -> None:
    """Train briefly once so that the first timed round is not charged for torch's start-up."""
    rows = np.arange(min(64, len(data.y)))
    params = {**data.estimator_params, "max_epochs": 2, "train_accuracy_stop": None}
    net = ContinualActiveClassifier(**params, replay="er", device=device, random_state=0)
    net.partial_fit(select_rows(data.X, rows), data.y[rows], classes=np.unique(data.y))
    net.partial_fit(select_rows(data.X, rows), data.y[rows])


def at_budget(result: BenchmarkResult, budget: float) -> list:
    """Return the records, one per campaign, of the round reporting ``budget``."""
    return [record for record in result.rounds if record["round"] == result.budget_rounds[budget]]


def summarize(result: BenchmarkResult) -> list:
    """Per method and budget: accuracy mean and std over seeds, and speedups against retrain.

    Returns
    -------
    list of dict
        Keys ``method``, ``budget``, ``labelled_fraction`` (the actual one),
        ``accuracy_mean``, ``accuracy_std``, ``balanced_accuracy_mean``,
        ``balanced_accuracy_std`` (mean per-class recall), ``train_seconds``,
        ``time_speedup``, ``samples_speedup``, ``n_seeds``.
    """
    rows = []
    for budget in result.budgets:
        records = at_budget(result, budget)
        by_method = {method: [r for r in records if r["method"] == method] for method in result.methods}
        reference = by_method["retrain"]
        reference_seconds = np.mean([r["cumulative_train_seconds"] for r in reference])
        reference_samples = np.mean([r["cumulative_samples_backpropagated"] for r in reference])
        for method, chosen in by_method.items():
            accuracy = np.array([r["accuracy"] for r in chosen])
            balanced = np.array([r["balanced_accuracy"] for r in chosen])
            seconds = np.mean([r["cumulative_train_seconds"] for r in chosen])
            samples = np.mean([r["cumulative_samples_backpropagated"] for r in chosen])
            rows.append(
                {
                    "method": method,
                    "budget": budget,
                    "labelled_fraction": float(np.mean([r["labelled_fraction"] for r in chosen])),
                    "accuracy_mean": float(accuracy.mean()),
                    "accuracy_std": float(accuracy.std(ddof=1)) if len(accuracy) > 1 else 0.0,
                    "balanced_accuracy_mean": float(balanced.mean()),
                    "balanced_accuracy_std": float(balanced.std(ddof=1)) if len(balanced) > 1 else 0.0,
                    "train_seconds": float(seconds),
                    "time_speedup": float(reference_seconds / seconds),
                    "samples_speedup": float(reference_samples / samples),
                    "n_seeds": len(chosen),
                }
            )
    return rows


def _percent(row: dict, metric: str) -> str:
    """``mean ± std`` in percent; the mean alone from a single seed, which has no spread."""
    mean = f"{100 * row[f'{metric}_mean']:.1f}"
    return mean if row["n_seeds"] < 2 else f"{mean} ± {100 * row[f'{metric}_std']:.1f}"


def format_table(summary: list, markdown: bool = False) -> str:
    """Format the paper's appendix-A table: accuracy (mean ± std, %) and speedups per budget.

    Balanced accuracy (mean per-class recall, mean ± std) follows accuracy:
    on imbalanced data such as cell atlases the two tell different stories.
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
    if markdown:
        return "\n".join(
            ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
            + ["| " + " | ".join(line) + " |" for line in lines]
        )
    widths = [max(len(str(item)) for item in column) for column in zip(headers, *lines, strict=True)]
    return "\n".join(
        "  ".join(str(item).ljust(width) for item, width in zip(line, widths, strict=True))
        for line in [headers, *lines]
    )


def write_results(result: BenchmarkResult, out: str | Path, command: str = "") -> dict:
    """Write rounds (CSV, JSON), the summary (JSON), the tables and the plots under ``out``.

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
    paths["rounds_json"].write_text(json.dumps(result.rounds, indent=1))
    meta = {
        "dataset": result.data.description,
        "command": command,
        "methods": result.methods,
        "budgets": result.budgets,
        "budget_rounds": {str(b): r for b, r in result.budget_rounds.items()},
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    paths["summary"].write_text(json.dumps({**meta, "table": summary}, indent=1))
    paths["table"] = out / "table.txt"
    paths["table"].write_text(format_table(summary) + "\n")
    paths["table_md"] = out / "table.md"
    paths["table_md"].write_text(format_table(summary, markdown=True) + "\n")
    paths.update(plots.write_all(result, summary, out))
    return paths
