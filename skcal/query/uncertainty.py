"""Uncertainty sampling (entropy, margin, least confidence) and the random baseline.

Each uncertainty strategy scores every pool point from its class
probabilities, batch by batch (memory ``O(n_pool)``), and takes the
``n_instances`` highest scores. They accept a
:class:`~skcal.ContinualActiveClassifier`, a modAL learner wrapping one, or
any scikit-learn classifier with ``predict_proba``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state

from ..estimator import ContinualActiveClassifier
from ..utils.data import n_samples
from ..utils.params import validate_params
from ._pool import check_outputs, check_pool, fitted_network, pool_batches, top_k


def entropy(probabilities: torch.Tensor) -> torch.Tensor:
    """Return the entropy ``h(x) = -sum_k p_k log p_k`` of each row (section 3.1 of the paper).

    Parameters
    ----------
    probabilities : torch.Tensor of shape (n_points, n_classes)
        Each row a distribution over the classes.

    Returns
    -------
    torch.Tensor of shape (n_points,)
        The entropy of each row, in nats.
    """
    return -(probabilities * torch.log(probabilities.clamp_min(1e-12))).sum(dim=1)


def margin(probabilities: torch.Tensor) -> torch.Tensor:
    """Margin score ``1 - (p_1 - p_2)`` of each row, ``p_1 >= p_2`` its two highest probabilities."""
    top_two = probabilities.topk(2, dim=1).values
    return 1 - (top_two[:, 0] - top_two[:, 1])


def least_confidence(probabilities: torch.Tensor) -> torch.Tensor:
    """Least-confidence score ``1 - max_k p_k`` of each row."""
    return 1 - probabilities.max(dim=1).values


def _pool_scores(
    classifier: Any, X_pool: Any, score: Callable[[torch.Tensor], torch.Tensor], strategy: str
) -> torch.Tensor:
    """``score(probabilities)`` for every pool point, reduced batch by batch (O(n_pool) memory)."""
    net = getattr(classifier, "estimator", classifier)
    if not isinstance(net, ContinualActiveClassifier):
        try:
            probabilities = torch.as_tensor(np.asarray(classifier.predict_proba(X_pool), dtype=np.float64))
        except NotFittedError as error:
            raise NotFittedError(f"{strategy}: the classifier is not fitted; fit it before querying.") from error
        return check_outputs(score(check_outputs(probabilities, strategy)), strategy)
    net = fitted_network(classifier, strategy)
    scores = [score(torch.softmax(net.infer(X_batch).float(), dim=1)) for X_batch in pool_batches(net, X_pool)]
    return check_outputs(torch.cat(scores), strategy)  # NaN logits give NaN scores


def entropy_sampling(classifier: Any, X_pool: Any, n_instances: int = 1) -> np.ndarray:
    """Select the points whose predicted class distribution has the highest entropy.

    The acquisition function of the paper's main results (section 3.1).

    Parameters
    ----------
    classifier : ContinualActiveClassifier, modAL learner, or classifier with ``predict_proba``
        The model whose predictions score the pool.
    X_pool : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
        The unlabelled pool.
    n_instances : int, default=1
        Points to select.

    Returns
    -------
    ndarray of int
        Pool row indices, most uncertain first.
    """
    X_pool, n_instances = check_pool(classifier, X_pool, n_instances)
    return top_k(_pool_scores(classifier, X_pool, entropy, "entropy_sampling"), n_instances)


def margin_sampling(classifier: Any, X_pool: Any, n_instances: int = 1) -> np.ndarray:
    """Select the points with the smallest gap between the two most likely classes.

    Scores ``h(x) = 1 - (p_1 - p_2)`` with ``p_1 >= p_2`` the two highest
    probabilities (appendix B of the paper).

    Parameters
    ----------
    classifier : ContinualActiveClassifier, modAL learner, or classifier with ``predict_proba``
        The model whose predictions score the pool.
    X_pool : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
        The unlabelled pool.
    n_instances : int, default=1
        Points to select.

    Returns
    -------
    ndarray of int
        Pool row indices, most uncertain first.
    """
    X_pool, n_instances = check_pool(classifier, X_pool, n_instances)
    return top_k(_pool_scores(classifier, X_pool, margin, "margin_sampling"), n_instances)


def least_confidence_sampling(classifier: Any, X_pool: Any, n_instances: int = 1) -> np.ndarray:
    """Select the points whose most likely class is least probable (``h(x) = 1 - max_k p_k``).

    Parameters
    ----------
    classifier : ContinualActiveClassifier, modAL learner, or classifier with ``predict_proba``
        The model whose predictions score the pool.
    X_pool : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
        The unlabelled pool.
    n_instances : int, default=1
        Points to select.

    Returns
    -------
    ndarray of int
        Pool row indices, most uncertain first.
    """
    X_pool, n_instances = check_pool(classifier, X_pool, n_instances)
    return top_k(_pool_scores(classifier, X_pool, least_confidence, "least_confidence_sampling"), n_instances)


@validate_params({"random_state": ["random_state"]})
def random_sampling(classifier: Any, X_pool: Any, n_instances: int = 1, random_state: Any = None) -> np.ndarray:
    """Select points uniformly at random, without replacement (the passive baseline).

    Parameters
    ----------
    classifier : any
        Ignored.
    X_pool : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
        The unlabelled pool.
    n_instances : int, default=1
        Points to select.
    random_state : int, RandomState instance or None, default=None
        Seeds the random choices.

    Returns
    -------
    ndarray of int
        Pool row indices, in the order drawn.
    """
    X_pool, n_instances = check_pool(classifier, X_pool, n_instances)
    return check_random_state(random_state).choice(n_samples(X_pool), n_instances, replace=False)
