"""Bayesian acquisition: MC dropout, BALD and BatchBALD.

:func:`mc_dropout_proba` scores points with ``T`` stochastic forward passes
per batch, the dropout layers in training mode and every other module in
eval mode, seeded from ``random_state`` inside
:func:`torch.random.fork_rng` so that torch's global RNG is left as it was.
:func:`bald_sampling` ranks the pool by mutual information
(:func:`mutual_information`); :func:`batchbald_sampling` builds its batch
greedily on the joint mutual information (:func:`batchbald_selection`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from numbers import Integral
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state

from ..estimator import ContinualActiveClassifier
from ..utils.data import move_to
from ..utils.data import n_samples as _n_points
from ..utils.params import Interval, validate_params
from ._pool import check_count, check_data, check_outputs, check_pool, fitted_network, top_k

_JOINT_CHUNK = 1 << 22  # elements of one (configurations x candidates x classes) block in BatchBALD
_SINGLE_PASS = " (a single pass has no disagreement to measure)"
_POSITIVE_INT = [Interval(Integral, 1, None, closed="left")]


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


@validate_params({"random_state": ["random_state"]})
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
    n_draws = check_count(n_samples, "n_samples")
    net = fitted_network(net, "mc_dropout_proba")
    if _n_points(X) == 0:
        raise ValueError("X is empty: there is nothing to score.")
    X = check_data(X, "X", net)
    rng = check_random_state(random_state)
    output = np.empty((n_draws, _n_points(X), len(net.classes_)), dtype=np.float32)

    def store(draws: torch.Tensor, start: int) -> None:
        output[:, start : start + draws.shape[1]] = draws.cpu().numpy()

    _mc_dropout_pass(net, X, n_draws, _torch_seed(rng), store, "mc_dropout_proba")
    check_outputs(torch.from_numpy(output).transpose(0, 1), "mc_dropout_proba", "X")
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
    """Return BALD's score: mutual information between a point's label and the model parameters.

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
        The score of each point, in nats.

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
            best = np.sort(top_k(torch.nan_to_num(both, nan=-1.0), keep))
            rows = torch.from_numpy(best).to(both.device)
            index, both, probs = index[best], both[rows], probs[:, rows]
        kept.update(index=index, scores=both, probs=probs)

    _mc_dropout_pass(net, X_pool, n_draws, seed, reduce, strategy)
    return check_outputs(torch.cat(scores), strategy), kept["index"], kept["probs"]


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


@validate_params({"n_configurations": _POSITIVE_INT, "random_state": ["random_state"]})
def batchbald_selection(
    probabilities: Any, n_instances: int = 1, n_configurations: int = 1000, random_state: Any = None
) -> np.ndarray:
    """Select BatchBALD's greedy batch on given probability samples (your own MC dropout, ensembles...).

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
    n_instances = check_count(n_instances, "n_instances")
    if n_instances > samples.shape[1]:
        raise ValueError(f"n_instances={n_instances} is larger than the number of points ({samples.shape[1]}).")
    rng = check_random_state(random_state)
    return np.array(_batchbald_greedy(samples, n_instances, int(n_configurations), rng))


@validate_params({"random_state": ["random_state"]})
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
        The unlabelled pool.
    n_instances : int, default=1
        Points to select.
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
    X_pool, n_instances = check_pool(classifier, X_pool, n_instances)
    n_draws = check_count(n_samples, "n_samples", 2, _SINGLE_PASS)
    net = fitted_network(classifier, "bald_sampling")
    seed = _torch_seed(check_random_state(random_state))
    scores, _, _ = _bald_pass(net, X_pool, n_draws, seed, 0, "bald_sampling")
    return top_k(scores, n_instances)


@validate_params({"n_configurations": _POSITIVE_INT, "max_candidates": _POSITIVE_INT, "random_state": ["random_state"]})
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
        The unlabelled pool.
    n_instances : int, default=1
        Points to select.
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
    X_pool, n_instances = check_pool(classifier, X_pool, n_instances)
    n_draws = check_count(n_samples, "n_samples", 2, _SINGLE_PASS)
    net = fitted_network(classifier, "batchbald_sampling")
    rng = check_random_state(random_state)
    keep = max(int(max_candidates), n_instances)
    _, candidates, samples = _bald_pass(net, X_pool, n_draws, _torch_seed(rng), keep, "batchbald_sampling")
    picks = _batchbald_greedy(samples.double(), n_instances, int(n_configurations), rng)
    return candidates[np.array(picks)]
