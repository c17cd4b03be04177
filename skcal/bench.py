"""The paper's experiment: every method, the same AL campaign, speedup against standard AL.

Protocol (``shared/reference/protocol.md``, the CAL reference code): the seed
round and ``retrain``/``warmstart`` rounds train until the training accuracy
reaches 0.99 (at most ``max_epochs`` epochs); CAL rounds train a fixed
``round_epochs`` epochs over the new points with replay. Queries use entropy
sampling. For every seed, all methods start from the same random seed set and
train/test split. Speedup at a labelled fraction is the cumulative training
time of ``retrain`` divided by the method's, measured in the same run (and
the same ratio of samples backpropagated, which machine noise cannot touch).
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
from ._data import select_rows
from .estimator import ContinualActiveClassifier
from .models import ACTINN, MLP, SmallCNN
from .query import entropy_sampling
from .replay import REPLAY_STRATEGIES
from .simulation import ActiveLearningSimulator

#: How the paper's tables name each method.
DISPLAY_NAMES = {
    "retrain": "AL",
    "warmstart": "AL w/ WS",
    "finetune": "Fine-tune",
    "er": "CAL-ER",
    "mir": "CAL-MIR",
    "der": "CAL-DER",
    "sd": "CAL-SD",
    "sds2": "CAL-SDS2",
}
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


def load_benchmark_data(
    dataset: str, label_key: str | None = None, data_root: str = "~/.medmnist", medmnist_flag: str = "dermamnist"
) -> BenchmarkData:
    """Load a built-in dataset (``digits``, ``pbmc68k``) or a user file.

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
    data_root : str, default="~/.medmnist"
        Where ``medmnist`` finds ``<flag>.npz``.
    medmnist_flag : str, default="dermamnist"
        The MedMNIST dataset for ``"medmnist"`` (DermaMNIST is the paper's).

    Returns
    -------
    BenchmarkData

    Raises
    ------
    ValueError
        For an unknown dataset name or file type, or ``.h5ad`` without ``label_key``.
    """
    if dataset == "digits":
        X, y = datasets.load_digits_images()
        return _image_data("digits", X, y, "scikit-learn digits (1797 8x8 images, 10 classes), small CNN")
    if dataset == "pbmc68k":
        X, y = datasets.load_pbmc68k()
        return _tabular_data("pbmc68k", X, y, "scanpy pbmc68k_reduced (700 cells, 765 genes, 10 types), ACTINN MLP")
    if dataset == "medmnist":
        X, y = _train_and_test(lambda split: datasets.load_medmnist(medmnist_flag, split, root=data_root))
        return _image_data(medmnist_flag, X, y, f"MedMNIST {medmnist_flag} ({len(y)} images {X.shape[1:]}), small CNN")
    if dataset == "wordnet":
        texts, y = datasets.load_wordnet_glosses(categories=WORDNET_CATEGORIES, max_per_category=400, random_state=0)
        return _text_data("wordnet", texts, y, f"WordNet noun glosses ({len(y)}, 5 categories), TF-IDF + MLP")
    path = Path(dataset)
    if path.suffix not in USER_SUFFIXES:
        raise ValueError(
            f"Unknown dataset {dataset!r}: use one of {BUILTIN_DATASETS} or a file ending in {USER_SUFFIXES}."
        )
    if path.suffix == ".h5ad":
        if not label_key:
            raise ValueError("An .h5ad dataset needs --label-key, the obs column with the labels.")
        X, y = datasets.load_anndata(path, label_key)
        return _tabular_data(path.stem, X, y, f"{path.name} ({X.shape[0]} cells, {X.shape[1]} genes), ACTINN MLP")
    if path.suffix == ".npz":
        X, y = _train_and_test(lambda split: datasets.load_medmnist_npz(path, split))
        return _image_data(path.stem, X, y, f"{path.name} ({len(y)} images {X.shape[1:]}), small CNN")
    texts, y = datasets.load_text_csv(path)
    return _text_data(path.stem, texts, y, f"{path.name} ({len(y)} texts), TF-IDF + MLP")


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
    """Reject unknown methods and budgets outside (0, 1] or not reachable by the rounds.

    Raises
    ------
    ValueError
        With a message naming the bad value.
    """
    unknown = [method for method in methods if method not in REPLAY_STRATEGIES]
    if unknown:
        raise ValueError(f"Unknown method(s) {unknown}; choose from {list(REPLAY_STRATEGIES)}.")
    if "retrain" not in methods:
        raise ValueError("Speedups are measured against 'retrain'; include it in the methods.")
    if not budgets:
        raise ValueError("Give at least one budget.")
    for name, value in [("initial", initial), ("query", query)] + [("budget", budget) for budget in budgets]:
        if not 0 < value <= 1:
            raise ValueError(f"{name} {value} is outside (0, 1]; budgets are fractions of the pool.")
    if min(budgets) < initial:
        raise ValueError(f"Budget {min(budgets)} is below the seed set's fraction {initial}.")


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
    ValueError
        For bad methods or budgets (:func:`check_arguments`), or budgets larger than the pool allows.
    """
    budgets = sorted(budgets)
    check_arguments(methods, budgets, initial, query)
    n_pool = len(data.y) - int(np.ceil(test_size * len(data.y)))
    initial_count, step = max(1, round(initial * n_pool)), max(1, round(query * n_pool))
    budget_rounds = {budget: max(0, round((budget * n_pool - initial_count) / step)) for budget in budgets}
    if initial_count + max(budget_rounds.values()) * step > n_pool:
        raise ValueError(f"Budget {max(budgets)} asks for more labels than the pool of {n_pool} holds.")
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
                initial_size=initial_count,
                query_size=step,
                n_rounds=max(budget_rounds.values()),
                random_state=seed,
                track_forgetting=True,
            ).fit(X_pool, y_pool, eval_set=eval_set)
            for record in simulator.rounds_:
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
            [DISPLAY_NAMES.get(method, method)]
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
