"""What every query strategy shares: the entry checks, the batched pool outputs and the top-k ranking.

A strategy checks its request and its pool once, on entry (:func:`check_pool`),
scores the pool batch by batch in eval mode without gradients
(:func:`pool_batches`, :func:`pool_outputs`), refuses non-finite outputs
(:func:`check_outputs`) and ranks the scores (:func:`top_k`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from numbers import Integral
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.exceptions import NotFittedError
from skorch.utils import is_dataset

from ..estimator import ContinualActiveClassifier
from ..utils.data import move_to, n_rows, n_samples, to_storage
from ..utils.embedding import embeddings_and_logits
from ..utils.params import Interval, InvalidParameterError, is_satisfied
from ..utils.validation import check_features

_ROWS_SHOWN = 10  # how many offending row indices an error message lists
_FINITE_CHUNK = 65536  # rows per isfinite pass when locating non-finite rows (bounds the mask's memory)
_AN_INTEGER = [Interval(Integral, None, None, closed="neither")]


def check_count(value: Any, name: str, minimum: int = 1, why: str = "") -> int:
    """Check a count (``n_instances``, ``n_samples``) and return it as an int.

    The two counts every strategy takes keep their two messages, ``must be
    an int`` and ``must be at least N``, which callers match; the other
    parameters are declared with :func:`skcal.utils.params.validate_params`.

    Parameters
    ----------
    value : object
    name : str
        The parameter's name, as the message shows it.
    minimum : int, default=1
    why : str, default=""
        Appended to the range message (``" (a single pass has no disagreement to measure)"``).

    Returns
    -------
    int

    Raises
    ------
    InvalidParameterError
        A ``TypeError`` and ``ValueError``: not an integer (booleans are not), or below ``minimum``.
    """
    if not is_satisfied(_AN_INTEGER, value):
        raise InvalidParameterError(f"{name} must be an int, got {value!r}.")
    if value < minimum:
        raise InvalidParameterError(f"{name} must be at least {minimum}{why}, got {value}.")
    return int(value)


def check_request(X_pool: Any, n_instances: Any) -> int:
    """Check ``n_instances`` against the pool: an int in ``[1, n_pool]``, the pool not empty."""
    n_instances = check_count(n_instances, "n_instances")
    n_pool = n_samples(X_pool)
    if n_pool == 0:
        raise ValueError("The pool is empty: there is nothing left to query.")
    if n_instances > n_pool:
        raise ValueError(f"n_instances={n_instances} is larger than the pool ({n_pool} points).")
    return n_instances


def _row_list(rows: np.ndarray) -> str:
    """``[3, 17, 40]``, or the first ``_ROWS_SHOWN`` indices followed by ``...``."""
    shown = ", ".join(str(row) for row in rows[:_ROWS_SHOWN].tolist())
    return f"[{shown}{', ...' if len(rows) > _ROWS_SHOWN else ''}]"


def _non_finite_rows(X: Any) -> tuple[np.ndarray, list]:
    """Rows of ``X`` (in storage form, as ``fit`` stores it) holding NaN or infinity, and the dict keys concerned.

    Returns empty results when ``X`` cannot be read row by row (the caller
    then reports the structural error instead).
    """
    try:
        data = to_storage(X)
        n_total = n_rows(data)
        arrays = list(data.items()) if isinstance(data, dict) else [(None, data)]
        bad = np.zeros(n_total, dtype=bool)
        keys = []
        for key, values in arrays:
            if sp.issparse(values):  # CSR: map the non-finite stored entries to their rows
                entries = np.flatnonzero(~np.isfinite(values.data))
                hits = np.searchsorted(values.indptr, entries, side="right") - 1
            elif values.ndim >= 1 and values.is_floating_point() and len(values) == n_total:
                flags = np.zeros(n_total, dtype=bool)
                for start in range(0, n_total, _FINITE_CHUNK):
                    block = values[start : start + _FINITE_CHUNK]
                    flags[start : start + len(block)] = ~torch.isfinite(block.reshape(len(block), -1)).all(dim=1).cpu()
                hits = np.flatnonzero(flags)
            else:  # integer and boolean arrays (token ids, masks) are finite by construction
                continue
            if len(hits):
                bad[hits] = True
                keys.append(key)
        return np.flatnonzero(bad), keys
    except (TypeError, ValueError, IndexError):
        return np.zeros(0, dtype=np.int64), []


def check_data(X: Any, name: str, net: ContinualActiveClassifier | None = None) -> Any:
    """Validate ``X`` as ``fit`` validates training data, naming the rows that hold NaN or infinity.

    Parameters
    ----------
    X : array-like, torch.Tensor, scipy.sparse matrix, dict of arrays or Dataset
        The pool, a validation set or a labelled set.
    name : str
        How the error messages call ``X`` (``"X_pool"``, ``"X_val"``...).
    net : ContinualActiveClassifier, optional
        A fitted estimator: ``X`` must then have its training data's feature shape.

    Returns
    -------
    Features or Dataset
        ``X`` in skcal's storage form (no copy for float32 data), ready to be
        scored; a torch ``Dataset`` is returned as is, like ``predict_proba`` does.

    Raises
    ------
    ValueError
        NaN or infinity (with the offending row indices and, for a dict, keys),
        an empty or 1-D ``X``, or a feature shape the estimator was not trained on.
    TypeError
        A container or dtype skcal cannot use.
    """
    if is_dataset(X):
        return X
    history = getattr(net, "labelled_history_", None) if net is not None else None
    expected_shape = history.feature_shape if history is not None and len(history) else None
    try:
        return check_features(X, expected_shape, expected_sparse=None)
    except ValueError as error:  # only now look for the rows: no second pass over valid data
        rows, keys = _non_finite_rows(X)
        if not len(rows):
            raise
        where = name + "".join(f"[{key!r}]" for key in keys if key is not None)
        raise ValueError(
            f"{where} contains NaN or infinity in {len(rows)} of {n_samples(X)} rows: {_row_list(rows)}. "
            "ContinualActiveClassifier.fit refuses such points, so they cannot be scored or labelled; "
            "drop or impute those rows first."
        ) from error


def check_pool(classifier: Any, X_pool: Any, n_instances: Any) -> tuple[Any, int]:
    """Check a strategy's request, then its pool: the one entry check of every strategy.

    The pool is validated like ``fit``'s training data whenever the classifier
    is (or a learner wraps) a :class:`~skcal.ContinualActiveClassifier`, and
    for ``random_sampling`` without a classifier; other scikit-learn
    classifiers keep their own input rules (some predict on missing values).

    Returns
    -------
    X_pool : Features, Dataset or the input
        The validated pool in storage form, or ``X_pool`` unchanged for other classifiers.
    n_instances : int
    """
    n_instances = check_request(X_pool, n_instances)
    net = getattr(classifier, "estimator", classifier)
    if isinstance(net, ContinualActiveClassifier):
        fitted = getattr(net, "initialized_", False) and hasattr(net, "fitted_classes_")
        return check_data(X_pool, "X_pool", net if fitted else None), n_instances
    if classifier is None:
        return check_data(X_pool, "X_pool"), n_instances
    return X_pool, n_instances


def check_outputs(values: torch.Tensor, strategy: str, name: str = "X_pool") -> torch.Tensor:
    """Refuse non-finite scores, probabilities or embeddings (rows of ``values``), naming the rows.

    They come from a diverged model (or a third-party classifier's
    ``predict_proba``); ranking them would return fewer, or repeated, indices.
    """
    finite = torch.isfinite(values.reshape(len(values), -1)).all(dim=1)
    if not bool(finite.all()):
        rows = torch.nonzero(~finite).flatten().cpu().numpy()
        raise ValueError(
            f"{strategy}: the classifier's outputs are NaN or infinity for {len(rows)} of {len(values)} "
            f"{name} rows: {_row_list(rows)}. On finite inputs this means the model has diverged "
            "(check its weights, learning rate and the last round's loss); no selection was made."
        )
    return values


def takes_random_state(strategy: Callable) -> bool:
    """Whether ``strategy`` accepts a ``random_state`` argument that is still free to set.

    True for strategies such as :func:`~skcal.query.random_sampling` and
    :func:`~skcal.query.badge_sampling`; False when ``strategy`` is a
    :func:`functools.partial` that already fixes ``random_state`` (the user's
    seed wins), and when the signature cannot be inspected or has no
    parameter of that name.

    Parameters
    ----------
    strategy : callable
        A query strategy.

    Returns
    -------
    bool
    """
    if isinstance(strategy, functools.partial) and "random_state" in strategy.keywords:
        return False
    try:
        parameters = inspect.signature(strategy).parameters
    except (TypeError, ValueError):
        return False
    parameter = parameters.get("random_state")
    return parameter is not None and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)


def fitted_network(classifier: Any, strategy: str) -> ContinualActiveClassifier:
    """Return the fitted ContinualActiveClassifier behind ``classifier`` (itself, or a learner's estimator)."""
    net = getattr(classifier, "estimator", classifier)
    if not isinstance(net, ContinualActiveClassifier):
        raise TypeError(f"{strategy} needs a ContinualActiveClassifier, got {type(net).__name__}.")
    if not getattr(net, "initialized_", False) or not hasattr(net, "fitted_classes_"):
        raise NotFittedError(f"{strategy}: the classifier is not fitted; fit it on a seed set before querying.")
    return net


def pool_batches(net: ContinualActiveClassifier, X_pool: Any) -> Iterator[Any]:
    """Yield the pool in prediction batches on the estimator's device, in eval mode without gradients."""
    net.module_.eval()
    with torch.no_grad():
        for X_batch, _ in net.get_iterator(net.get_dataset(X_pool), training=False):
            yield move_to(X_batch, net.device)


def pool_outputs(net: ContinualActiveClassifier, X_pool: Any, embeddings: bool = False) -> tuple:
    """Return class probabilities (and penultimate embeddings) for the whole pool, batch by batch.

    Parameters
    ----------
    net : ContinualActiveClassifier
        A fitted estimator.
    X_pool : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
        The pool.
    embeddings : bool, default=False
        Also return the embeddings (see :mod:`skcal.utils.embedding`).

    Returns
    -------
    probabilities : torch.Tensor of shape (n_pool, n_classes)
        The softmax of the logits, on the estimator's device.
    embeddings : torch.Tensor of shape (n_pool, n_dims) or None
        On the estimator's device; None unless ``embeddings=True``.
    """
    probabilities, vectors = [], []
    for X_batch in pool_batches(net, X_pool):
        if embeddings:
            z, logits = embeddings_and_logits(net.module_, X_batch)
            vectors.append(z)
        else:
            logits = net.infer(X_batch)
        probabilities.append(torch.softmax(logits.float(), dim=1))
    return torch.cat(probabilities), (torch.cat(vectors).float() if embeddings else None)


def top_k(scores: torch.Tensor, k: int) -> np.ndarray:
    """Return the indices of the ``k`` highest scores, highest first, ties to the lower index."""
    values = scores.double().cpu().numpy()
    chosen = np.arange(len(values))
    if k < len(values):  # O(n) selection: the k-th largest value, then the ties lowest-index first
        threshold = np.partition(values, len(values) - k)[len(values) - k]
        above = np.flatnonzero(values > threshold)
        chosen = np.sort(np.concatenate([above, np.flatnonzero(values == threshold)[: k - len(above)]]))
    return chosen[np.argsort(-values[chosen], kind="stable")]
