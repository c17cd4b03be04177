"""Query strategies: which unlabelled points to label next, at pool scale.

Every strategy has modAL's calling convention,
``strategy(classifier, X_pool, n_instances=1, **kwargs) -> indices`` (a numpy
array of pool row indices, best first), so it drops into
``modAL.models.ActiveLearner(query_strategy=...)``, into
:class:`~skcal.modal.ContinualActiveLearner` and into
:class:`~skcal.simulation.ActiveLearningSimulator`. ``classifier`` is a
:class:`~skcal.ContinualActiveClassifier` or a modAL learner wrapping one; the
uncertainty strategies also accept any scikit-learn classifier with
``predict_proba``.

The pool is scored once, in batches of the estimator's batch size, in eval
mode without gradients; no strategy builds an ``n x n`` matrix of the pool.
Ties are broken towards the lower pool index.

The Bayesian strategies (:func:`bald_sampling`, :func:`batchbald_sampling`)
score the pool with MC dropout (:func:`mc_dropout_proba`): ``T`` stochastic
forward passes per batch with the dropout layers in training mode and every
other module in eval mode, seeded from ``random_state`` inside
:func:`torch.random.fork_rng` so that torch's global RNG is left as it was.

Every strategy checks its request and its data once, on entry: a pool (and
GLISTER's ``X_val``, core-set's ``X_labelled``) holding NaN or infinity is
refused as :meth:`~skcal.ContinualActiveClassifier.fit` refuses it, with a
``ValueError`` that names the offending rows, and every strategy returns
exactly ``n_instances`` distinct pool indices or raises.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from skorch.utils import is_dataset

from .estimator import ContinualActiveClassifier
from .submodular import FacilityLocation, gaussian_similarity, maximize
from .utils.data import move_to, n_rows, n_samples, to_storage
from .utils.data import n_samples as _n_points
from .utils.embedding import embeddings_and_logits, last_linear_layer
from .utils.validation import check_features, check_labels, encode_labels

_ROWS_SHOWN = 10  # how many offending row indices an error message lists
_FINITE_CHUNK = 65536  # rows per isfinite pass when locating non-finite rows (bounds the mask's memory)


def _check_request(X_pool: Any, n_instances: Any) -> int:
    if isinstance(n_instances, bool) or not isinstance(n_instances, (int, np.integer)):
        raise TypeError(f"n_instances must be an int, got {n_instances!r}.")
    n_pool = n_samples(X_pool)
    if n_pool == 0:
        raise ValueError("The pool is empty: there is nothing left to query.")
    if n_instances < 1:
        raise ValueError(f"n_instances must be at least 1, got {n_instances}.")
    if n_instances > n_pool:
        raise ValueError(f"n_instances={n_instances} is larger than the pool ({n_pool} points).")
    return int(n_instances)


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


def _check_data(X: Any, name: str, net: ContinualActiveClassifier | None = None) -> Any:
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


def _check_pool(classifier: Any, X_pool: Any, n_instances: Any) -> tuple[Any, int]:
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
    n_instances = _check_request(X_pool, n_instances)
    net = getattr(classifier, "estimator", classifier)
    if isinstance(net, ContinualActiveClassifier):
        fitted = getattr(net, "initialized_", False) and hasattr(net, "fitted_classes_")
        return _check_data(X_pool, "X_pool", net if fitted else None), n_instances
    if classifier is None:
        return _check_data(X_pool, "X_pool"), n_instances
    return X_pool, n_instances


def _check_outputs(values: torch.Tensor, strategy: str, name: str = "X_pool") -> torch.Tensor:
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


def _takes_random_state(strategy: Callable) -> bool:
    """Whether ``strategy`` accepts a ``random_state`` argument that is still free to set.

    True for strategies such as :func:`random_sampling` and
    :func:`badge_sampling`; False when ``strategy`` is a
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


def _network(classifier: Any, strategy: str) -> ContinualActiveClassifier:
    """Return the fitted ContinualActiveClassifier behind ``classifier`` (itself, or a learner's estimator)."""
    net = getattr(classifier, "estimator", classifier)
    if not isinstance(net, ContinualActiveClassifier):
        raise TypeError(f"{strategy} needs a ContinualActiveClassifier, got {type(net).__name__}.")
    if not getattr(net, "initialized_", False) or not hasattr(net, "fitted_classes_"):
        raise NotFittedError(f"{strategy}: the classifier is not fitted; fit it on a seed set before querying.")
    return net


def pool_outputs(net: ContinualActiveClassifier, X_pool: Any, embeddings: bool = False) -> tuple:
    """Class probabilities (and penultimate embeddings) for the whole pool, batch by batch.

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
    embeddings : torch.Tensor of shape (n_pool, n_dims) or None
        On the estimator's device.
    """
    probabilities, vectors = [], []
    for X_batch in _pool_batches(net, X_pool):
        if embeddings:
            z, logits = embeddings_and_logits(net.module_, X_batch)
            vectors.append(z)
        else:
            logits = net.infer(X_batch)
        probabilities.append(torch.softmax(logits.float(), dim=1))
    return torch.cat(probabilities), (torch.cat(vectors).float() if embeddings else None)


def _scored(
    net: ContinualActiveClassifier, X: Any, strategy: str, name: str = "X_pool"
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`pool_outputs` with embeddings, refusing non-finite outputs (a diverged model)."""
    probabilities, embeddings = pool_outputs(net, X, embeddings=True)
    _check_outputs(embeddings, strategy, name)
    return _check_outputs(probabilities, strategy, name), embeddings


def _embedded(net: ContinualActiveClassifier, X: Any, strategy: str, name: str = "X_pool") -> torch.Tensor:
    """Return the embeddings of ``X`` alone, refusing non-finite ones."""
    return _check_outputs(pool_outputs(net, X, embeddings=True)[1], strategy, name)


def _pool_batches(net: ContinualActiveClassifier, X_pool: Any) -> Any:
    """Yield the pool in prediction batches on the estimator's device, in eval mode without gradients."""
    net.module_.eval()
    with torch.no_grad():
        for X_batch, _ in net.get_iterator(net.get_dataset(X_pool), training=False):
            yield move_to(X_batch, net.device)


def _uncertainty(classifier: Any, X_pool: Any, score: Any, strategy: str) -> torch.Tensor:
    """``score(probabilities)`` for every pool point, reduced batch by batch (O(n_pool) memory)."""
    net = getattr(classifier, "estimator", classifier)
    if not isinstance(net, ContinualActiveClassifier):
        try:
            probabilities = torch.as_tensor(np.asarray(classifier.predict_proba(X_pool), dtype=np.float64))
        except NotFittedError as error:
            raise NotFittedError(f"{strategy}: the classifier is not fitted; fit it before querying.") from error
        return _check_outputs(score(_check_outputs(probabilities, strategy)), strategy)
    net = _network(classifier, strategy)
    scores = [score(torch.softmax(net.infer(X_batch).float(), dim=1)) for X_batch in _pool_batches(net, X_pool)]
    return _check_outputs(torch.cat(scores), strategy)  # NaN logits give NaN scores


def _margin(probabilities: torch.Tensor) -> torch.Tensor:
    top_two = probabilities.topk(2, dim=1).values
    return 1 - (top_two[:, 0] - top_two[:, 1])


def _least_confidence(probabilities: torch.Tensor) -> torch.Tensor:
    return 1 - probabilities.max(dim=1).values


def _top(scores: torch.Tensor, n_instances: int) -> np.ndarray:
    """Return the indices of the ``n_instances`` highest scores, highest first, ties to the lower index."""
    values = scores.double().cpu().numpy()
    chosen = np.arange(len(values))
    if n_instances < len(values):  # O(n) selection: the n-th largest value, then the ties lowest-index first
        threshold = np.partition(values, len(values) - n_instances)[len(values) - n_instances]
        above = np.flatnonzero(values > threshold)
        chosen = np.sort(np.concatenate([above, np.flatnonzero(values == threshold)[: n_instances - len(above)]]))
    return chosen[np.argsort(-values[chosen], kind="stable")]


def entropy(probabilities: torch.Tensor) -> torch.Tensor:
    """Entropy ``h(x) = -sum_k p_k log p_k`` of each row (section 3.1 of the paper)."""
    return -(probabilities * torch.log(probabilities.clamp_min(1e-12))).sum(dim=1)


def entropy_sampling(classifier: Any, X_pool: Any, n_instances: int = 1) -> np.ndarray:
    """Select the points whose predicted class distribution has the highest entropy.

    The acquisition function of the paper's main results (section 3.1).

    Parameters
    ----------
    classifier : ContinualActiveClassifier, modAL learner, or classifier with ``predict_proba``
    X_pool : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
    n_instances : int, default=1

    Returns
    -------
    ndarray of int
        Pool row indices, most uncertain first.
    """
    X_pool, n_instances = _check_pool(classifier, X_pool, n_instances)
    return _top(_uncertainty(classifier, X_pool, entropy, "entropy_sampling"), n_instances)


def margin_sampling(classifier: Any, X_pool: Any, n_instances: int = 1) -> np.ndarray:
    """Select the points with the smallest gap between the two most likely classes.

    Scores ``h(x) = 1 - (p_1 - p_2)`` with ``p_1 >= p_2`` the two highest
    probabilities (appendix B of the paper).

    Parameters
    ----------
    classifier : ContinualActiveClassifier, modAL learner, or classifier with ``predict_proba``
    X_pool : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
    n_instances : int, default=1

    Returns
    -------
    ndarray of int
    """
    X_pool, n_instances = _check_pool(classifier, X_pool, n_instances)
    return _top(_uncertainty(classifier, X_pool, _margin, "margin_sampling"), n_instances)


def least_confidence_sampling(classifier: Any, X_pool: Any, n_instances: int = 1) -> np.ndarray:
    """Select the points whose most likely class is least probable (``h(x) = 1 - max_k p_k``).

    Parameters
    ----------
    classifier : ContinualActiveClassifier, modAL learner, or classifier with ``predict_proba``
    X_pool : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
    n_instances : int, default=1

    Returns
    -------
    ndarray of int
    """
    X_pool, n_instances = _check_pool(classifier, X_pool, n_instances)
    return _top(_uncertainty(classifier, X_pool, _least_confidence, "least_confidence_sampling"), n_instances)


def random_sampling(classifier: Any, X_pool: Any, n_instances: int = 1, random_state: Any = None) -> np.ndarray:
    """Select points uniformly at random, without replacement (the passive baseline).

    Parameters
    ----------
    classifier : any
        Ignored.
    X_pool : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
    n_instances : int, default=1
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    ndarray of int
    """
    X_pool, n_instances = _check_pool(classifier, X_pool, n_instances)
    return check_random_state(random_state).choice(n_samples(X_pool), n_instances, replace=False)


def fass_sampling(
    classifier: Any, X_pool: Any, n_instances: int = 1, candidate_factor: float = 5.0, sigma: float | None = None
) -> np.ndarray:
    """FASS (Wei et al. 2015): uncertainty filter, then facility location on embeddings.

    The ``candidate_factor * n_instances`` points of highest entropy form the
    ground set ``A``; the selection greedily maximises the facility location
    function of equation (7) over ``A``, with
    ``w_ij = exp(-||z_i - z_j||^2 / (2 sigma^2))`` on penultimate embeddings.

    Parameters
    ----------
    classifier : ContinualActiveClassifier or a modAL learner wrapping one
    X_pool : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
    n_instances : int, default=1
    candidate_factor : float, default=5.0
        ``c > 1``: the uncertain candidate set is ``c * n_instances`` points.
    sigma : float or None, default=None
        Similarity bandwidth; None uses the median distance between candidates.

    Returns
    -------
    ndarray of int
        Pool row indices, in the greedy order.
    """
    X_pool, n_instances = _check_pool(classifier, X_pool, n_instances)
    if candidate_factor < 1:
        raise ValueError(f"candidate_factor must be at least 1, got {candidate_factor}.")
    probabilities, embeddings = _scored(_network(classifier, "fass_sampling"), X_pool, "fass_sampling")
    n_candidates = min(len(probabilities), int(np.ceil(candidate_factor * n_instances)))
    candidates = _top(entropy(probabilities), n_candidates)
    z = embeddings[torch.from_numpy(candidates).to(embeddings.device)]
    if sigma is None:
        distances = torch.cdist(z, z)
        sigma = float(distances[distances > 0].median()) if bool((distances > 0).any()) else 1.0
    chosen = maximize(FacilityLocation(gaussian_similarity(z, z, sigma)), n_instances)
    return candidates[chosen.numpy()]


def _squared_distances_to(vectors: torch.Tensor, centres: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """``min_c ||v - c||^2`` for every row of ``vectors``, chunked over the centres."""
    best = torch.full((len(vectors),), float("inf"), device=vectors.device)
    for start in range(0, len(centres), chunk):
        block = torch.cdist(vectors, centres[start : start + chunk]).square().min(dim=1).values
        best = torch.minimum(best, block)
    return best


def coreset_sampling(classifier: Any, X_pool: Any, n_instances: int = 1, X_labelled: Any = None) -> np.ndarray:
    """Core-set selection (Sener & Savarese 2018): greedy k-center on penultimate embeddings.

    Each pick is the pool point farthest from every labelled point and every
    earlier pick; one ``O(n_pool)`` vector of distances is kept up to date.

    Parameters
    ----------
    classifier : ContinualActiveClassifier or a modAL learner wrapping one
    X_pool : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
    n_instances : int, default=1
    X_labelled : optional
        The labelled set; by default the estimator's labelled history.

    Returns
    -------
    ndarray of int
        Pool row indices, in the greedy order.
    """
    X_pool, n_instances = _check_pool(classifier, X_pool, n_instances)
    net = _network(classifier, "coreset_sampling")
    labelled = net.labelled_history_.X if X_labelled is None else _check_data(X_labelled, "X_labelled", net)
    embeddings = _embedded(net, X_pool, "coreset_sampling")
    centres = _embedded(net, labelled, "coreset_sampling", "X_labelled")
    distances = _squared_distances_to(embeddings, centres)
    chosen = []
    for _ in range(n_instances):
        pick = int(distances.argmax())
        chosen.append(pick)
        distances = torch.minimum(distances, (embeddings - embeddings[pick]).square().sum(dim=1))
        distances[pick] = -1.0
    return np.array(chosen)


def _gradient_factors(net: ContinualActiveClassifier, X_pool: Any, strategy: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Factors of the last-layer loss gradients with hypothesised labels.

    For cross-entropy and a linear last layer, the gradient with respect to
    its weights for label ``y_hat = argmax p`` is the outer product
    ``(p - e_{y_hat}) z^T``; it is returned as the pair ``(p - e_{y_hat}, z)``
    so that no ``n x (K d)`` matrix is built.
    """
    probabilities, z = _scored(net, X_pool, strategy)
    residual = probabilities.clone()
    residual[torch.arange(len(residual)), probabilities.argmax(dim=1)] -= 1
    return residual, z


def badge_sampling(classifier: Any, X_pool: Any, n_instances: int = 1, random_state: Any = None) -> np.ndarray:
    """BADGE (Ash et al. 2020): k-means++ seeding on last-layer gradient embeddings.

    The gradient embedding of ``x`` is ``g_x = (p_x - e_{y_hat}) ⊗ z_x``. The
    first pick has the largest ``||g_x||``; each next one is drawn with
    probability proportional to its squared distance to the closest pick.
    Distances use ``<g_x, g_c> = <a_x, a_c> <z_x, z_c>`` and keep one
    ``O(n_pool)`` vector, so memory is ``O(n_pool (K + d))``.

    Parameters
    ----------
    classifier : ContinualActiveClassifier or a modAL learner wrapping one
    X_pool : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
    n_instances : int, default=1
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    ndarray of int
        Pool row indices, in the order drawn.
    """
    X_pool, n_instances = _check_pool(classifier, X_pool, n_instances)
    residual, z = _gradient_factors(_network(classifier, "badge_sampling"), X_pool, "badge_sampling")
    norms = (residual.square().sum(dim=1) * z.square().sum(dim=1)).double()  # ||g_x||^2
    rng = check_random_state(random_state)
    pick = int(norms.argmax())
    chosen = [pick]
    distances = torch.full_like(norms, float("inf"))
    for _ in range(n_instances - 1):
        to_pick = norms + norms[pick] - 2 * ((residual @ residual[pick]) * (z @ z[pick])).double()
        distances = torch.minimum(distances, to_pick.clamp_min(0))
        distances[chosen] = 0
        weights = distances.cpu().numpy()
        if weights.sum() <= 0:  # every point coincides with a pick: fall back to uniform
            weights = np.ones_like(weights)
            weights[chosen] = 0
        pick = int(rng.choice(len(weights), p=weights / weights.sum()))
        chosen.append(pick)
    return np.array(chosen)


def glister_sampling(
    classifier: Any, X_pool: Any, n_instances: int = 1, X_val: Any = None, y_val: Any = None, learning_rate: float = 0.1
) -> np.ndarray:
    """GLISTER-Active (Killamsetty et al. 2021): greedy validation-likelihood gain.

    With hypothesised labels ``y_hat = argmax p`` and the last linear layer
    ``W`` only, the gain of labelling ``x`` is the first-order (Taylor)
    change of the validation log-likelihood after a gradient step on ``x``:
    ``eta * <grad_W log p(y_hat|x), grad_W LL_V>``. Points are added greedily;
    after each pick ``W`` takes that step and the validation gradient is
    recomputed, as GLISTER's online approximation does.

    Parameters
    ----------
    classifier : ContinualActiveClassifier or a modAL learner wrapping one
        Its module must end with a ``torch.nn.Linear`` layer.
    X_pool : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
    n_instances : int, default=1
    X_val, y_val : labelled validation data
        A small held-out labelled set (required).
    learning_rate : float, default=0.1
        ``eta`` of the virtual steps.

    Returns
    -------
    ndarray of int
        Pool row indices, in the greedy order.
    """
    X_pool, n_instances = _check_pool(classifier, X_pool, n_instances)
    if X_val is None or y_val is None:
        raise ValueError("glister_sampling needs a labelled validation set: pass X_val and y_val.")
    net = _network(classifier, "glister_sampling")
    X_val = _check_data(X_val, "X_val", net)
    layer = last_linear_layer(net.module_)
    if layer is None:
        raise TypeError("glister_sampling needs a module whose last layer is a torch.nn.Linear.")

    residual, z = _gradient_factors(net, X_pool, "glister_sampling")
    z_val = _embedded(net, X_val, "glister_sampling", "X_val")
    y_val = encode_labels(check_labels(y_val, len(z_val)), net.classes_).to(z_val.device)
    weight = layer.weight.detach().float().clone()
    bias = layer.bias.detach().float().clone() if layer.bias is not None else torch.zeros(len(weight))
    bias = bias.to(weight.device)
    available = torch.ones(len(z), dtype=torch.bool, device=z.device)
    chosen = []
    for _ in range(n_instances):
        # gradient of the validation log-likelihood with respect to (W, b)
        val_residual = torch.softmax(z_val @ weight.T + bias, dim=1)
        val_residual[torch.arange(len(z_val)), y_val] -= 1  # p - e_y: the gradient of -LL
        grad_weight, grad_bias = -(val_residual.T @ z_val), -val_residual.sum(dim=0)
        # a step on x's log-likelihood moves (W, b) by -eta * (residual z^T, residual)
        gains = -((residual @ grad_weight) * z).sum(dim=1) - residual @ grad_bias
        gains[~available] = float("-inf")
        pick = int(gains.argmax())
        chosen.append(pick)
        available[pick] = False
        weight -= learning_rate * torch.outer(residual[pick], z[pick])
        bias -= learning_rate * residual[pick]
    return np.array(chosen)


# --- Bayesian acquisition: MC dropout, BALD, BatchBALD ------------------------------------------------

_JOINT_CHUNK = 1 << 22  # elements of one (configurations x candidates x classes) block in BatchBALD


def _check_positive_int(value: Any, name: str, minimum: int = 1, why: str = "") -> int:
    """Return ``value`` as an int, or raise ``TypeError`` (not an int) / ``ValueError`` (below ``minimum``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}{why}, got {value}.")
    return int(value)


def _is_dropout(module: torch.nn.Module) -> bool:
    """Whether ``module`` is a dropout layer.

    ``torch.nn.Dropout*``, ``AlphaDropout`` and ``FeatureAlphaDropout``, or a
    leaf module (one without submodules) whose class name contains
    ``"Dropout"``; a container named so (``MyDropoutNet``) is not a layer.
    """
    if isinstance(module, torch.nn.modules.dropout._DropoutNd):
        return True
    return "Dropout" in type(module).__name__ and next(module.children(), None) is None


@contextlib.contextmanager
def _mc_dropout_mode(module: torch.nn.Module, strategy: str) -> Iterator[None]:
    """Dropout layers in training mode, every other module (batch norm included) in eval mode.

    Every module's ``training`` flag is restored on exit, so scoring leaves
    the module as it found it (batch norm's running statistics are never
    updated: batch norm stays in eval mode throughout).
    """
    modules = list(module.modules())
    dropouts = [layer for layer in modules if _is_dropout(layer)]
    if not dropouts:
        raise TypeError(
            f"{strategy}: the module {type(module).__name__} has no dropout layer, so MC dropout would return "
            "the same prediction every time. Add a torch.nn.Dropout layer (e.g. skcal.models.MLP(dropout=0.2)); "
            "functional dropout (torch.nn.functional.dropout) is not detected."
        )
    modes = [layer.training for layer in modules]
    try:
        module.eval()
        for layer in dropouts:
            layer.training = True  # the layer alone, not recursively
        yield
    finally:
        for layer, mode in zip(modules, modes, strict=True):
            layer.training = mode


@contextlib.contextmanager
def _private_torch_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Seed torch's generators of ``device`` (and the CPU's) with ``seed``; restore them on exit.

    Dropout draws from torch's default generators; forking them keeps the
    user's global RNG streams exactly where they were.
    """
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        with torch.random.fork_rng(devices=[index], device_type="cuda"):
            torch.default_generator.manual_seed(seed)
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
            yield
    elif device.type == "cpu":
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            yield
    else:  # mps, xpu...: fork every device of that type
        with torch.random.fork_rng(device_type=device.type):
            torch.default_generator.manual_seed(seed)
            backend = getattr(torch, device.type, None)
            if backend is not None and hasattr(backend, "manual_seed"):
                backend.manual_seed(seed)
            yield


def _module_device(net: ContinualActiveClassifier) -> torch.device:
    parameter = next(net.module_.parameters(), None)
    return parameter.device if parameter is not None else torch.device(net.device or "cpu")


def _mc_dropout_pass(
    net: ContinualActiveClassifier,
    X: Any,
    n_draws: int,
    seed: int,
    consume: Callable[[torch.Tensor, int], None],
    strategy: str,
) -> None:
    """Score ``X`` batch by batch with ``n_draws`` dropout masks per batch; ``consume((T, b, K) probs, start)``."""
    device = _module_device(net)
    start = 0
    with _private_torch_rng(device, seed), _mc_dropout_mode(net.module_, strategy), torch.no_grad():
        for X_batch, _ in net.get_iterator(net.get_dataset(X), training=False):
            X_batch = move_to(X_batch, net.device)
            draws = torch.stack([torch.softmax(net.infer(X_batch).float(), dim=1) for _ in range(n_draws)])
            consume(draws, start)
            start += draws.shape[1]


def _torch_seed(rng: np.random.RandomState) -> int:
    return int(rng.randint(2**31 - 1))


def mc_dropout_proba(net: Any, X: Any, n_samples: int = 20, random_state: Any = None) -> np.ndarray:
    """Class probabilities from ``n_samples`` stochastic forward passes with dropout active (MC dropout).

    Gal & Ghahramani (2016): each pass samples a dropout mask, i.e. a network
    from the approximate posterior. Dropout layers run in training mode;
    every other module, batch norm included, runs in eval mode (running
    statistics are used and never updated), and every module's mode is
    restored afterwards. ``X`` is scored in batches of the estimator's
    prediction batch size, without gradients; beyond the returned array,
    memory is ``O(n_samples * batch_size * n_classes)``.

    Parameters
    ----------
    net : ContinualActiveClassifier or a modAL learner wrapping one
        A fitted estimator whose module has at least one dropout layer
        (``torch.nn.Dropout``, ``Dropout1d/2d/3d``, ``AlphaDropout``,
        ``FeatureAlphaDropout``, or any leaf module whose class name
        contains ``"Dropout"``).
    X : array-like, torch.Tensor, scipy.sparse matrix, dict of arrays or Dataset
        The points to score, checked as ``fit`` checks training data.
    n_samples : int, default=20
        Number of stochastic forward passes ``T``.
    random_state : int, RandomState instance or None, default=None
        Seeds the dropout masks. The masks come from torch's generators of
        the module's device, seeded from ``random_state`` inside
        :func:`torch.random.fork_rng`: torch's global RNG is neither read
        nor advanced. ``None`` draws the seed from numpy's global RNG
        (scikit-learn's convention), so ``np.random.seed`` makes it
        reproducible.

    Returns
    -------
    ndarray of float32, shape (n_samples, n_points, n_classes)
        ``p[t, i, k]``: probability of class ``classes_[k]`` for point ``i``
        under the ``t``-th dropout mask. Rows are ordered as ``X``; passes
        are in the order drawn.

    Raises
    ------
    TypeError
        ``n_samples`` not an int, a module without any dropout layer, or a
        classifier that is not a ContinualActiveClassifier.
    ValueError
        ``n_samples < 1``; ``X`` empty, non-finite (naming the rows) or of
        another feature shape than the training data.
    NotFittedError
        The estimator is not fitted.

    See Also
    --------
    mutual_information : BALD's score of these samples.
    """
    n_draws = _check_positive_int(n_samples, "n_samples")
    net = _network(net, "mc_dropout_proba")
    if _n_points(X) == 0:
        raise ValueError("X is empty: there is nothing to score.")
    X = _check_data(X, "X", net)
    rng = check_random_state(random_state)
    output = np.empty((n_draws, _n_points(X), len(net.classes_)), dtype=np.float32)

    def store(draws: torch.Tensor, start: int) -> None:
        output[:, start : start + draws.shape[1]] = draws.cpu().numpy()

    _mc_dropout_pass(net, X, n_draws, _torch_seed(rng), store, "mc_dropout_proba")
    _check_outputs(torch.from_numpy(output).transpose(0, 1), "mc_dropout_proba", "X")
    return output


def _entropy_last(probabilities: torch.Tensor) -> torch.Tensor:
    """Entropy over the last axis, with ``0 log 0 = 0``."""
    return -torch.special.xlogy(probabilities, probabilities).sum(dim=-1)


def _mutual_information(probabilities: torch.Tensor) -> torch.Tensor:
    """``H[mean_t p_t] - mean_t H[p_t]`` for ``(T, n, K)`` samples, in float64, clipped at 0."""
    probabilities = probabilities.double()
    predictive = _entropy_last(probabilities.mean(dim=0))
    expected = _entropy_last(probabilities).mean(dim=0)
    return (predictive - expected).clamp_min(0)


def _as_probability_samples(probabilities: Any) -> torch.Tensor:
    """Check a ``(T, n, K)`` array of probability samples and return it as a float64 tensor."""
    if isinstance(probabilities, torch.Tensor):
        tensor = probabilities.detach()
    else:
        try:
            tensor = torch.as_tensor(np.asarray(probabilities, dtype=np.float64))
        except (TypeError, ValueError) as error:
            raise TypeError(f"probabilities must be a numeric array, got {type(probabilities).__name__}.") from error
    if tensor.ndim != 3:
        raise ValueError(
            f"probabilities must have shape (n_samples, n_points, n_classes), got {tuple(tensor.shape)}: "
            "one row of class probabilities per point, per stochastic forward pass (see mc_dropout_proba)."
        )
    if 0 in tensor.shape:
        raise ValueError(f"probabilities has shape {tuple(tensor.shape)}: no samples, points or classes.")
    if not tensor.is_floating_point():
        tensor = tensor.double()
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError("probabilities contains NaN or infinity.")
    if bool((tensor < 0).any()) or bool((tensor.sum(dim=-1) - 1).abs().max() > 1e-3):
        raise ValueError("probabilities must be non-negative and sum to 1 over the classes (the last axis).")
    return tensor.double()


def mutual_information(probabilities: Any) -> np.ndarray:
    """BALD's score: mutual information between a point's label and the model parameters.

    ``I[y; w | x] = H[mean_t p_t(y|x)] - mean_t H[p_t(y|x)]`` (Houlsby et al.
    2011; Gal et al. 2017), from ``T`` probability samples such as those of
    :func:`mc_dropout_proba`. Natural logarithms (nats), ``0 log 0 = 0``,
    float64; values within rounding of 0 are clipped to 0.

    Parameters
    ----------
    probabilities : array-like or torch.Tensor of shape (n_samples, n_points, n_classes)
        Each ``probabilities[t, i]`` a distribution over the classes.

    Returns
    -------
    ndarray of float64, shape (n_points,)

    Raises
    ------
    ValueError
        Not 3-D, empty, non-finite, negative, or rows not summing to 1.
    """
    return _mutual_information(_as_probability_samples(probabilities)).cpu().numpy()


def _bald_pass(
    net: ContinualActiveClassifier, X_pool: Any, n_draws: int, seed: int, keep: int, strategy: str
) -> tuple[torch.Tensor, np.ndarray, torch.Tensor]:
    """BALD scores of the whole pool, and the MC samples of its ``keep`` best points.

    Returns ``(scores (n_pool,), kept pool indices (ascending), kept samples (T, keep, K))``;
    the best points are kept in a running buffer, so memory is
    ``O(n_pool + T * (keep + batch_size) * K)``.
    """
    scores: list[torch.Tensor] = []
    kept = {"index": np.zeros(0, dtype=np.int64), "scores": torch.zeros(0, dtype=torch.float64), "probs": None}

    def reduce(draws: torch.Tensor, start: int) -> None:
        batch_scores = _mutual_information(draws)
        scores.append(batch_scores)
        if not keep:
            return
        index = np.concatenate([kept["index"], np.arange(start, start + draws.shape[1])])
        both = torch.cat([kept["scores"].to(batch_scores.device), batch_scores])
        probs = draws if kept["probs"] is None else torch.cat([kept["probs"], draws], dim=1)
        if len(index) > keep:  # buffer and batch are in pool order, so ties still go to the lower index
            best = np.sort(_top(torch.nan_to_num(both, nan=-1.0), keep))
            rows = torch.from_numpy(best).to(both.device)
            index, both, probs = index[best], both[rows], probs[:, rows]
        kept.update(index=index, scores=both, probs=probs)

    _mc_dropout_pass(net, X_pool, n_draws, seed, reduce, strategy)
    return _check_outputs(torch.cat(scores), strategy), kept["index"], kept["probs"]


def _batchbald_greedy(
    probabilities: torch.Tensor, n_instances: int, n_configurations: int, rng: np.random.RandomState
) -> list[int]:
    """Greedy BatchBALD (Kirsch et al. 2019, algorithm 1) on ``(T, n, K)`` float64 samples.

    With ``y_B`` the labels of the points picked so far, candidate ``i`` scores
    ``E_{y_B}[H(y_i | y_B)] - E_w[H(y_i | w)]``, which is the joint mutual
    information ``I(y_B, y_i; w)`` minus a term common to every candidate.
    ``E_{y_B}`` runs over the ``K^|B|`` configurations of ``y_B`` exactly while
    they number at most ``n_configurations``; beyond that, over
    ``n_configurations`` configurations drawn from ``p(y_B)`` (ancestral
    sampling: each new pick's label is drawn given the configuration's earlier
    labels), as section 3.2 of the paper does. Each configuration keeps
    ``log p(y_B | w_t)`` for every sample ``t``, so memory is
    ``O(n_configurations * T)`` plus one chunk of
    ``n_configurations * candidates * K`` values.
    """
    n_draws, n_points, n_classes = probabilities.shape
    device = probabilities.device
    log_probs = torch.log(probabilities)
    expected_entropy = _entropy_last(probabilities).mean(dim=0)  # E_w H(y_i | w), shape (n,)
    log_joint = torch.zeros(1, n_draws, dtype=torch.float64, device=device)  # log p(y_B = c | w_t)
    weights = torch.ones(1, dtype=torch.float64, device=device)  # p(y_B = c), or 1/M when sampled
    exact = True
    available = torch.ones(n_points, dtype=torch.bool, device=device)
    chosen: list[int] = []
    for step in range(n_instances):
        posterior = torch.softmax(log_joint, dim=1)  # p(w_t | y_B = c), shape (C, T)
        chunk = max(1, _JOINT_CHUNK // (len(posterior) * n_classes))
        scores = torch.empty(n_points, dtype=torch.float64, device=device)
        for start in range(0, n_points, chunk):
            predictive = torch.einsum("ct,tik->cik", posterior, probabilities[:, start : start + chunk])
            scores[start : start + chunk] = weights @ _entropy_last(predictive)
        scores = scores - expected_entropy
        scores[~available] = float("-inf")
        pick = int(torch.argmax(scores))  # the first maximum: ties go to the lower index
        chosen.append(pick)
        available[pick] = False
        if step == n_instances - 1:
            break
        if exact and len(log_joint) * n_classes <= n_configurations:
            log_joint = (log_joint[:, None, :] + log_probs[:, pick, :].T[None]).reshape(-1, n_draws)
            weights = torch.exp(torch.logsumexp(log_joint, dim=1) - np.log(n_draws))
            possible = weights > 0  # drop configurations of probability 0 (underflowed probabilities)
            log_joint, weights = log_joint[possible], weights[possible]
            continue
        if exact:  # too many configurations: draw n_configurations of them from p(y_B), then extend by sampling
            p = weights.cpu().numpy()
            rows = rng.choice(len(p), size=n_configurations, p=p / p.sum())
            log_joint = log_joint[torch.from_numpy(rows).to(device)]
            weights = torch.full((n_configurations,), 1.0 / n_configurations, dtype=torch.float64, device=device)
            exact = False
        conditional = (torch.softmax(log_joint, dim=1) @ probabilities[:, pick, :]).cpu().numpy()  # p(y_pick | c)
        cumulative = np.cumsum(conditional, axis=1)
        draws = rng.random_sample(len(cumulative)) * cumulative[:, -1]
        labels = np.minimum((cumulative <= draws[:, None]).sum(axis=1), n_classes - 1)
        labels = torch.from_numpy(labels).to(device)
        log_joint = log_joint + log_probs[:, pick, labels].T
    return chosen


def batchbald_selection(
    probabilities: Any, n_instances: int = 1, n_configurations: int = 1000, random_state: Any = None
) -> np.ndarray:
    """BatchBALD's greedy batch on given probability samples (your own MC dropout, ensembles...).

    Picks points one at a time, each maximising the mutual information
    between the model parameters and the labels of the batch so far plus
    the candidate, ``I(y_1, ..., y_n; w)`` (Kirsch et al. 2019). The first
    pick is BALD's. The expectation over the batch's joint labels is exact
    while the ``K^(n-1)`` configurations number at most
    ``n_configurations``, and uses ``n_configurations`` configurations
    sampled from their predictive distribution beyond (the paper's
    section 3.2), so memory stays ``O(n_configurations * n_samples)`` plus a
    bounded working block, whatever the batch size.

    Parameters
    ----------
    probabilities : array-like or torch.Tensor of shape (n_samples, n_points, n_classes)
        Probability samples, e.g. from :func:`mc_dropout_proba`.
    n_instances : int, default=1
        Batch size.
    n_configurations : int, default=1000
        The most joint label configurations kept, exact or sampled.
    random_state : int, RandomState instance or None, default=None
        Seeds the sampled configurations (unused while the joint is exact).

    Returns
    -------
    ndarray of int
        Row indices of ``probabilities``' points, in the greedy order.

    Raises
    ------
    TypeError, ValueError
        Bad ``probabilities`` (as :func:`mutual_information`), ``n_instances``
        outside ``[1, n_points]`` or ``n_configurations < 1``.
    """
    samples = _as_probability_samples(probabilities)
    n_instances = _check_positive_int(n_instances, "n_instances")
    if n_instances > samples.shape[1]:
        raise ValueError(f"n_instances={n_instances} is larger than the number of points ({samples.shape[1]}).")
    n_configurations = _check_positive_int(n_configurations, "n_configurations")
    return np.array(_batchbald_greedy(samples, n_instances, n_configurations, check_random_state(random_state)))


def bald_sampling(
    classifier: Any, X_pool: Any, n_instances: int = 1, n_samples: int = 20, random_state: Any = None
) -> np.ndarray:
    """BALD (Houlsby et al. 2011; Gal et al. 2017): the points of highest mutual information under MC dropout.

    Each pool point scores ``H[mean_t p_t] - mean_t H[p_t]`` over
    ``n_samples`` dropout masks (:func:`mc_dropout_proba`,
    :func:`mutual_information`): high when the sampled networks are each
    confident but disagree, which prediction entropy alone cannot tell
    apart from noise every network sees. The pool is scored batch by batch
    without gradients and reduced as it goes (memory ``O(n_pool)``). The
    ``n_instances`` best are taken independently; see
    :func:`batchbald_sampling` for batches that avoid redundant points.

    Parameters
    ----------
    classifier : ContinualActiveClassifier or a modAL learner wrapping one
        Its module needs a dropout layer.
    X_pool : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
    n_instances : int, default=1
    n_samples : int, default=20
        Stochastic forward passes per point (at least 2).
    random_state : int, RandomState instance or None, default=None
        Seeds the dropout masks without touching torch's global RNG (see
        :func:`mc_dropout_proba`); the simulator passes its own.

    Returns
    -------
    ndarray of int
        Pool row indices, highest mutual information first.

    Raises
    ------
    TypeError
        A module without dropout; ``n_samples`` or ``n_instances`` not an int.
    ValueError
        ``n_samples < 2`` (one sample has no disagreement), a bad
        ``n_instances``, an empty or non-finite pool.
    """
    X_pool, n_instances = _check_pool(classifier, X_pool, n_instances)
    n_draws = _check_positive_int(n_samples, "n_samples", 2, " (a single pass has no disagreement to measure)")
    net = _network(classifier, "bald_sampling")
    seed = _torch_seed(check_random_state(random_state))
    scores, _, _ = _bald_pass(net, X_pool, n_draws, seed, 0, "bald_sampling")
    return _top(scores, n_instances)


def batchbald_sampling(
    classifier: Any,
    X_pool: Any,
    n_instances: int = 1,
    n_samples: int = 20,
    n_configurations: int = 1000,
    max_candidates: int = 1000,
    random_state: Any = None,
) -> np.ndarray:
    """BatchBALD (Kirsch et al. 2019): greedy joint mutual information of the batch under MC dropout.

    BALD scores points one by one, so a batch of near-duplicates can take
    every slot. BatchBALD adds points greedily, each maximising
    ``I(y_1, ..., y_n; w)`` jointly with the points already in the batch
    (:func:`batchbald_selection`), so a point whose information the batch
    already holds scores low. Its first pick is BALD's.

    Two bounds keep it at pool scale:

    * **Candidates.** The pool is scored once with BALD (batch by batch,
      MC dropout, no gradients), and only the ``max_candidates`` points of
      highest BALD score (at least ``n_instances``) enter the greedy
      selection, as is usual for BatchBALD on large pools; their MC samples
      are kept from the same pass. With ``n_pool <= max_candidates`` every
      point is a candidate.
    * **Configurations.** The joint of the batch's labels over ``K^(n-1)``
      configurations is computed exactly while it has at most
      ``n_configurations`` of them, and estimated from
      ``n_configurations`` configurations sampled from it beyond (the
      paper's section 3.2). Memory is ``O(n_configurations * n_samples)``
      plus ``O(n_samples * max_candidates * K)`` for the kept samples; each
      greedy step costs ``O(n_configurations * n_samples * max_candidates * K)``.

    Parameters
    ----------
    classifier : ContinualActiveClassifier or a modAL learner wrapping one
        Its module needs a dropout layer.
    X_pool : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
    n_instances : int, default=1
    n_samples : int, default=20
        Stochastic forward passes per point (at least 2).
    n_configurations : int, default=1000
        The most joint label configurations kept, exact or sampled.
    max_candidates : int, default=1000
        Pre-filter: BatchBALD runs on this many points of highest BALD
        score (raised to ``n_instances`` if smaller).
    random_state : int, RandomState instance or None, default=None
        Seeds the dropout masks (without touching torch's global RNG) and
        the sampled configurations; the simulator passes its own.

    Returns
    -------
    ndarray of int
        Pool row indices, in the greedy order.

    Raises
    ------
    TypeError
        A module without dropout; a count that is not an int.
    ValueError
        ``n_samples < 2``, ``n_configurations < 1``, ``max_candidates < 1``,
        a bad ``n_instances``, an empty or non-finite pool.
    """
    X_pool, n_instances = _check_pool(classifier, X_pool, n_instances)
    n_draws = _check_positive_int(n_samples, "n_samples", 2, " (a single pass has no disagreement to measure)")
    n_configurations = _check_positive_int(n_configurations, "n_configurations")
    max_candidates = _check_positive_int(max_candidates, "max_candidates")
    net = _network(classifier, "batchbald_sampling")
    rng = check_random_state(random_state)
    keep = max(max_candidates, n_instances)
    _, candidates, samples = _bald_pass(net, X_pool, n_draws, _torch_seed(rng), keep, "batchbald_sampling")
    picks = _batchbald_greedy(samples.double(), n_instances, n_configurations, rng)
    return candidates[np.array(picks)]


__all__ = [
    "badge_sampling",
    "bald_sampling",
    "batchbald_sampling",
    "batchbald_selection",
    "coreset_sampling",
    "entropy",
    "entropy_sampling",
    "fass_sampling",
    "glister_sampling",
    "least_confidence_sampling",
    "margin_sampling",
    "mc_dropout_proba",
    "mutual_information",
    "pool_outputs",
    "random_sampling",
]
