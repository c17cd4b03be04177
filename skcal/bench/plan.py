"""The campaigns of one dataset, sized before any training: pools, test sets, seed sets and rounds.

:func:`plan_benchmark` checks a dataset and the campaign settings together
and returns a :class:`BenchmarkPlan`; :func:`campaign_split` draws one
seed's pool and test set, stratified by class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from ..exceptions import BenchmarkInputError
from ..utils.data import n_samples
from ..utils.params import Interval, validate_params
from .arguments import POSITIVE_INTEGER, TEST_FRACTION, check_arguments, check_input
from .data import BenchmarkData


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


@validate_params(
    {
        "seed": [Interval(Integral, 0, None, closed="left")],
        "pool_size": [POSITIVE_INTEGER, None],
        "test_size": [POSITIVE_INTEGER, TEST_FRACTION, None],
    }
)
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
        The dataset, its network and training settings (:func:`load_benchmark_data`).
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


def _check_sizes_fit(data: BenchmarkData, pool_size: Any, test_size: Any) -> None:
    """Reject subsample sizes (checked counts or fractions) that the data cannot hold, or that miss a class."""
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
        The dataset, its network and training settings (:func:`load_benchmark_data`).
    methods : sequence of str
        The methods compared.
    budgets : sequence of float
        Labelled fractions of the pool at which results are reported.
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
        The campaigns' sizes.

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
    check_input("pool_size", pool_size, [POSITIVE_INTEGER, None])
    check_input("test_size", test_size, [POSITIVE_INTEGER, TEST_FRACTION, None])
    _check_sizes_fit(data, pool_size, test_size)
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
