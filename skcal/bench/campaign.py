"""One campaign: one method's simulated AL run for one seed of one dataset, and the data it draws from.

A campaign's result depends only on the campaign and its data: the seed
set, the queries and every round's training are seeded from the campaign's
seed, so it does not matter which process trains it or what that process
trained before (:mod:`skcal.bench.runners` trains them here or on a Dask
cluster). :func:`campaign_data` gathers the rows a run's campaigns use,
once; :func:`run_campaign` trains one campaign.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from skorch.callbacks import Callback

from ..estimator import ContinualActiveClassifier
from ..simulation import ActiveLearningSimulator
from ..utils.data import select_rows
from .methods import method_label, method_settings
from .plan import campaign_split

if TYPE_CHECKING:
    from .data import BenchmarkData
    from .plan import BenchmarkPlan


@dataclass
class RowSource:
    """Features and labels of a dataset, addressed by the dataset's row numbers.

    Attributes
    ----------
    X : Any
        Features of all rows, or only of the rows in ``rows`` (in that order).
    y : ndarray
        Labels of all rows.
    rows : ndarray of int, optional
        The sorted row numbers of the rows of ``X``; None if ``X`` has every row.
    """

    X: Any
    y: np.ndarray
    rows: np.ndarray | None = None

    def take(self, wanted: np.ndarray) -> tuple[Any, np.ndarray]:
        """Return the features and labels of the rows ``wanted``, in that order."""
        positions = wanted if self.rows is None else np.searchsorted(self.rows, wanted)
        return select_rows(self.X, positions), np.asarray(self.y)[wanted]


@dataclass
class CampaignData:
    """The pools and test sets of a run's campaigns: sent to a cluster once, shared by every campaign.

    Attributes
    ----------
    pool, test : RowSource
        Where pools and test sets are drawn from (the same object when the
        dataset has no fixed test split).
    splits : dict
        Seed to ``(pool_rows, test_rows)``, row numbers of ``pool`` and ``test``.
    """

    pool: RowSource
    test: RowSource
    splits: dict = field(default_factory=dict)

    def split(self, seed: int) -> tuple:
        """Return one seed's ``X_pool, y_pool, X_test, y_test``."""
        pool_rows, test_rows = self.splits[seed]
        return (*self.pool.take(pool_rows), *self.test.take(test_rows))


@dataclass(frozen=True, eq=False)
class Campaign:
    """One method's AL campaign for one seed of one dataset: everything needed to train it but the data.

    Attributes
    ----------
    dataset : str
    method : str
        A replay alias (:data:`skcal.replay.REPLAY_STRATEGIES`) or a baseline (:data:`~skcal.bench.methods.BASELINES`).
    seed : int
        Seeds the seed set, the queries and every round's training.
    estimator_params : dict
        :class:`~skcal.ContinualActiveClassifier` parameters.
    classes : ndarray
        Every label of the dataset.
    query_strategy : callable
        A strategy of :mod:`skcal.query`.
    initial_count, query_count, n_rounds : int
        Seed-set size, labels per round and query rounds after the seed round.
    device : str, default="cpu"
    keep_entropy : bool, default=False
        Also return the final model's prediction entropies on the test set.
    """

    dataset: str
    method: str
    seed: int
    estimator_params: dict
    classes: np.ndarray
    query_strategy: Callable
    initial_count: int
    query_count: int
    n_rounds: int
    device: str = "cpu"
    keep_entropy: bool = False

    @property
    def description(self) -> str:
        """``<dataset> <method's display name> seed <seed>``, as the progress bars show it."""
        return f"{self.dataset} {method_label(self.method)} seed {self.seed}"


def jsonable(value: Any) -> Any:
    """Return a JSON-ready copy: classes and functions by qualified name, numpy values as Python ones."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (type, Callable)) and hasattr(value, "__qualname__"):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


class _RoundDone(Callback):
    """Call ``advance()`` at the end of every round (skorch's ``on_train_end``); drives a progress bar."""

    def __init__(self, advance: Callable[[], None]):
        self.advance = advance

    def on_train_end(self, net: Any, **kwargs: Any) -> None:
        self.advance()


def run_campaign(campaign: Campaign, split: tuple, advance: Callable[[], None] | None = None) -> dict:
    """Train one campaign in this process; return it as :class:`~skcal.bench.store.CampaignStore` stores it.

    Parameters
    ----------
    campaign : Campaign
    split : tuple
        ``X_pool, y_pool, X_test, y_test`` (:meth:`CampaignData.split`).
    advance : callable, optional
        Called at the end of every round.

    Returns
    -------
    dict
        ``dataset``, ``method``, ``seed``, ``records`` (the simulator's, one
        per round, with the training and query times measured here),
        ``final_entropy`` (or None), ``written``, ``host``,
        ``torch_threads`` (torch's CPU threads in the process that trained
        it) and ``seconds`` (the whole campaign, queries and evaluation
        included).
    """
    X_pool, y_pool, X_test, y_test = split
    started = time.perf_counter()
    replay, method_params = method_settings(campaign.method)
    params = dict(campaign.estimator_params, **method_params, classes=campaign.classes)
    if advance is not None:
        params["callbacks"] = [*(params.get("callbacks") or []), ("bench_progress", _RoundDone(advance))]
    estimator = ContinualActiveClassifier(
        **params, replay=replay, device=campaign.device, random_state=campaign.seed
    )
    simulator = ActiveLearningSimulator(
        estimator,
        campaign.query_strategy,
        initial_size=campaign.initial_count,
        query_size=campaign.query_count,
        n_rounds=campaign.n_rounds,
        random_state=campaign.seed,
        track_forgetting=True,
    ).fit(X_pool, y_pool, eval_set=(X_test, y_test))
    entropy = None
    if campaign.keep_entropy:
        probabilities = simulator.predict_proba(X_test)
        entropy = -(probabilities * np.log(probabilities + 1e-12)).sum(axis=1)
    return {
        "dataset": campaign.dataset,
        "method": campaign.method,
        "seed": campaign.seed,
        "records": jsonable(simulator.records_),
        "final_entropy": None if entropy is None else entropy.tolist(),
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        "host": socket.gethostname(),
        "torch_threads": torch.get_num_threads(),
        "seconds": time.perf_counter() - started,
    }


def warm_up(campaign: Campaign, split: tuple) -> None:
    """Train briefly once so that the first timed round is not charged for torch's start-up."""
    X, y = split[0], split[1]
    rows = np.arange(min(64, len(y)))
    params = {**campaign.estimator_params, "max_epochs": 2, "train_accuracy_stop": None}
    params.pop("callbacks", None)  # a throwaway run: the campaign's own callbacks need not see it
    net = ContinualActiveClassifier(**params, replay="er", device=campaign.device, random_state=0)
    net.partial_fit(select_rows(X, rows), y[rows], classes=campaign.classes)
    net.partial_fit(select_rows(X, rows), y[rows])


def campaign_line(campaign: Campaign, result: dict) -> str:
    """One line on a finished campaign: final accuracy, training time, wall time and where it ran."""
    last = result["records"][-1]
    where = f", on {result['worker']}" if result.get("worker") else ""
    return (
        f"{campaign.description}: accuracy {100 * last['accuracy']:.1f}% at {last['labelled_fraction']:.0%} "
        f"labelled, {last['cumulative_train_seconds']:.1f} s training ({result['seconds']:.1f} s in all{where})"
    )


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
