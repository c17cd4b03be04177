"""Diversity-aware selection on penultimate embeddings: FASS, core-set, BADGE and GLISTER.

Each needs a fitted :class:`~skcal.ContinualActiveClassifier` (or a modAL
learner wrapping one): the pool is embedded once, batch by batch (see
:mod:`skcal.utils.embedding`), and the batch is built greedily without any
``n_pool x n_pool`` matrix.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state

from ..estimator import ContinualActiveClassifier
from ..submodular import FacilityLocation, gaussian_similarity, maximize
from ..utils.embedding import last_linear_layer
from ..utils.params import Interval, validate_params
from ..utils.validation import check_labels, encode_labels
from ._pool import check_data, check_outputs, check_pool, fitted_network, pool_outputs, top_k
from .uncertainty import entropy


def _scored(
    net: ContinualActiveClassifier, X: Any, strategy: str, name: str = "X_pool"
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`~skcal.query.pool_outputs` with embeddings, refusing non-finite outputs (a diverged model)."""
    probabilities, embeddings = pool_outputs(net, X, embeddings=True)
    check_outputs(embeddings, strategy, name)
    return check_outputs(probabilities, strategy, name), embeddings


def _embedded(net: ContinualActiveClassifier, X: Any, strategy: str, name: str = "X_pool") -> torch.Tensor:
    """Return the embeddings of ``X`` alone, refusing non-finite ones."""
    return check_outputs(pool_outputs(net, X, embeddings=True)[1], strategy, name)


@validate_params(
    {
        "candidate_factor": [Interval(Real, 1, None, closed="left")],
        "sigma": [Interval(Real, 0, None, closed="neither"), None],
    }
)
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
        The network whose outputs score the pool.
    X_pool : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
        The unlabelled pool.
    n_instances : int, default=1
        Points to select.
    candidate_factor : float, default=5.0
        ``c >= 1``: the uncertain candidate set is ``c * n_instances`` points.
    sigma : float or None, default=None
        Similarity bandwidth (positive); None uses the median distance between candidates.

    Returns
    -------
    ndarray of int
        Pool row indices, in the greedy order.
    """
    X_pool, n_instances = check_pool(classifier, X_pool, n_instances)
    probabilities, embeddings = _scored(fitted_network(classifier, "fass_sampling"), X_pool, "fass_sampling")
    n_candidates = min(len(probabilities), int(np.ceil(candidate_factor * n_instances)))
    candidates = top_k(entropy(probabilities), n_candidates)
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
        The network whose outputs score the pool.
    X_pool : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
        The unlabelled pool.
    n_instances : int, default=1
        Points to select.
    X_labelled : optional
        The labelled set; by default the estimator's labelled history.

    Returns
    -------
    ndarray of int
        Pool row indices, in the greedy order.
    """
    X_pool, n_instances = check_pool(classifier, X_pool, n_instances)
    net = fitted_network(classifier, "coreset_sampling")
    labelled = net.labelled_history_.X if X_labelled is None else check_data(X_labelled, "X_labelled", net)
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


@validate_params({"random_state": ["random_state"]})
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
        The network whose outputs score the pool.
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
    residual, z = _gradient_factors(fitted_network(classifier, "badge_sampling"), X_pool, "badge_sampling")
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


@validate_params({"learning_rate": [Interval(Real, 0, None, closed="left")]})
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
        The unlabelled pool.
    n_instances : int, default=1
        Points to select.
    X_val, y_val : labelled validation data
        A small held-out labelled set (required).
    learning_rate : float, default=0.1
        ``eta`` of the virtual steps (non-negative).

    Returns
    -------
    ndarray of int
        Pool row indices, in the greedy order.
    """
    X_pool, n_instances = check_pool(classifier, X_pool, n_instances)
    if X_val is None or y_val is None:
        raise ValueError("glister_sampling needs a labelled validation set: pass X_val and y_val.")
    net = fitted_network(classifier, "glister_sampling")
    X_val = check_data(X_val, "X_val", net)
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
