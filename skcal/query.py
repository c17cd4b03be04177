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
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state

from ._data import move_to, n_samples
from .embedding import embeddings_and_logits, last_linear_layer
from .estimator import ContinualActiveClassifier
from .submodular import FacilityLocation, gaussian_similarity, maximize


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
        Also return the embeddings (see :mod:`skcal.embedding`).

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
            return score(torch.as_tensor(np.asarray(classifier.predict_proba(X_pool), dtype=np.float64)))
        except NotFittedError as error:
            raise NotFittedError(f"{strategy}: the classifier is not fitted; fit it before querying.") from error
    net = _network(classifier, strategy)
    return torch.cat(
        [score(torch.softmax(net.infer(X_batch).float(), dim=1)) for X_batch in _pool_batches(net, X_pool)]
    )


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
    n_instances = _check_request(X_pool, n_instances)
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
    n_instances = _check_request(X_pool, n_instances)
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
    n_instances = _check_request(X_pool, n_instances)
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
    n_instances = _check_request(X_pool, n_instances)
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
    n_instances = _check_request(X_pool, n_instances)
    if candidate_factor < 1:
        raise ValueError(f"candidate_factor must be at least 1, got {candidate_factor}.")
    probabilities, embeddings = pool_outputs(_network(classifier, "fass_sampling"), X_pool, embeddings=True)
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
    n_instances = _check_request(X_pool, n_instances)
    net = _network(classifier, "coreset_sampling")
    embeddings = pool_outputs(net, X_pool, embeddings=True)[1]
    labelled = net.labelled_history_.X if X_labelled is None else X_labelled
    distances = _squared_distances_to(embeddings, pool_outputs(net, labelled, embeddings=True)[1])
    chosen = []
    for _ in range(n_instances):
        pick = int(distances.argmax())
        chosen.append(pick)
        distances = torch.minimum(distances, (embeddings - embeddings[pick]).square().sum(dim=1))
        distances[pick] = -1.0
    return np.array(chosen)


def _gradient_factors(net: ContinualActiveClassifier, X_pool: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Factors of the last-layer loss gradients with hypothesised labels.

    For cross-entropy and a linear last layer, the gradient with respect to
    its weights for label ``y_hat = argmax p`` is the outer product
    ``(p - e_{y_hat}) z^T``; it is returned as the pair ``(p - e_{y_hat}, z)``
    so that no ``n x (K d)`` matrix is built.
    """
    probabilities, z = pool_outputs(net, X_pool, embeddings=True)
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
    n_instances = _check_request(X_pool, n_instances)
    residual, z = _gradient_factors(_network(classifier, "badge_sampling"), X_pool)
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
    n_instances = _check_request(X_pool, n_instances)
    if X_val is None or y_val is None:
        raise ValueError("glister_sampling needs a labelled validation set: pass X_val and y_val.")
    net = _network(classifier, "glister_sampling")
    layer = last_linear_layer(net.module_)
    if layer is None:
        raise TypeError("glister_sampling needs a module whose last layer is a torch.nn.Linear.")
    from ._validation import check_labels, encode_labels

    residual, z = _gradient_factors(net, X_pool)
    z_val = pool_outputs(net, X_val, embeddings=True)[1]
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


__all__ = [
    "badge_sampling",
    "coreset_sampling",
    "entropy",
    "entropy_sampling",
    "fass_sampling",
    "glister_sampling",
    "least_confidence_sampling",
    "margin_sampling",
    "pool_outputs",
    "random_sampling",
]
