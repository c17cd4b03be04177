"""Monotone submodular set functions and their greedy maximisation, in torch.

The objective of CAL-SDS2 (equation (6) of the paper) and of the FASS query
strategy (equation (7)) is a sum of

* a **facility location** function ``F(S) = sum_{i in A} max_{j in S} w_ij``
  over a ground set ``A``, with non-negative similarities ``w``, and
* a **concave over modular** function ``lambda * log(1 + sum_{j in S} h_j)``
  with non-negative weights ``h`` (model uncertainty).

Each function here evaluates the marginal gains of many candidates in one
batched tensor operation, on the device of its data. :func:`lazy_greedy`
(Minoux's accelerated greedy) returns the same set as the plain
:func:`greedy`, with far fewer gain evaluations; both carry the
``1 - 1/e`` approximation guarantee for monotone submodular functions.
:func:`maximize` picks whichever is faster for the problem's size.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch


class SubmodularFunction(Protocol):
    """What the greedy algorithms need from a set function.

    ``state`` summarises the selected set so far; gains are evaluated for a
    batch of candidate indices at once.
    """

    n_candidates: int

    def empty_state(self) -> Any:
        """State of the empty set."""

    def gains(self, state: Any, candidates: torch.Tensor | None) -> torch.Tensor:
        """Marginal gain of adding each of ``candidates`` (all if None) to the set ``state`` describes."""

    def add(self, state: Any, candidate: int) -> Any:
        """State after adding ``candidate``."""

    def value(self, selected: torch.Tensor) -> float:
        """Return the function value of the set ``selected``."""


class FacilityLocation:
    """Facility location ``F(S) = sum_{i in A} max_{j in S} w_ij`` (equation (7) of the paper).

    Parameters
    ----------
    similarity : torch.Tensor of shape (n_ground, n_candidates)
        Non-negative similarities ``w_ij`` between ground-set points ``i``
        and candidates ``j``.
    """

    def __init__(self, similarity: torch.Tensor):
        if similarity.ndim != 2:
            raise ValueError(f"similarity must be a 2-D matrix, got shape {tuple(similarity.shape)}.")
        if bool((similarity < 0).any()):
            raise ValueError("Facility location needs non-negative similarities.")
        self.similarity = similarity
        self.n_candidates = similarity.shape[1]

    def empty_state(self) -> torch.Tensor:
        """Coverage ``max_{j in S} w_ij`` of each ground-set point: zero for the empty set."""
        return torch.zeros(self.similarity.shape[0], dtype=self.similarity.dtype, device=self.similarity.device)

    def gains(self, state: torch.Tensor, candidates: torch.Tensor | None) -> torch.Tensor:
        """Return ``sum_i max(0, w_ij - coverage_i)`` for every candidate ``j`` (all if None)."""
        columns = self.similarity if candidates is None else self.similarity[:, candidates]
        return (columns - state[:, None]).clamp_min(0).sum(dim=0)

    def add(self, state: torch.Tensor, candidate: int) -> torch.Tensor:
        """Raise each ground point's coverage to its similarity with ``candidate``."""
        return torch.maximum(state, self.similarity[:, candidate])

    def value(self, selected: torch.Tensor) -> float:
        """Return ``F(selected)``."""
        if len(selected) == 0:
            return 0.0
        return float(self.similarity[:, selected].max(dim=1).values.sum())


class ConcaveOverModular:
    """Concave over modular ``scale * log(1 + sum_{j in S} weights_j)`` (second term of equation (6)).

    Parameters
    ----------
    weights : torch.Tensor of shape (n_candidates,)
        Non-negative modular weights, e.g. uncertainties ``h(x_j)``.
    scale : float, default=1.0
        The factor ``lambda``.
    """

    def __init__(self, weights: torch.Tensor, scale: float = 1.0):
        if weights.ndim != 1:
            raise ValueError(f"weights must be 1-D, got shape {tuple(weights.shape)}.")
        if bool((weights < 0).any()) or scale < 0:
            raise ValueError("Concave over modular needs non-negative weights and scale.")
        self.weights = weights
        self.scale = scale
        self.n_candidates = len(weights)

    def empty_state(self) -> torch.Tensor:
        """Modular total ``sum_{j in S} weights_j``: zero for the empty set."""
        return torch.zeros((), dtype=self.weights.dtype, device=self.weights.device)

    def gains(self, state: torch.Tensor, candidates: torch.Tensor | None) -> torch.Tensor:
        """Return ``scale * (log(1 + total + w_j) - log(1 + total))`` for every candidate (all if None)."""
        weights = self.weights if candidates is None else self.weights[candidates]
        return self.scale * (torch.log1p(state + weights) - torch.log1p(state))

    def add(self, state: torch.Tensor, candidate: int) -> torch.Tensor:
        """Add ``candidate``'s weight to the total."""
        return state + self.weights[candidate]

    def value(self, selected: torch.Tensor) -> float:
        """Return ``scale * log(1 + sum of selected weights)``."""
        return float(self.scale * torch.log1p(self.weights[selected].sum()))


class SumOfFunctions:
    """The sum of submodular functions over the same candidates (again submodular).

    Parameters
    ----------
    *functions : SubmodularFunction
        The terms; all must have the same ``n_candidates``.
    """

    def __init__(self, *functions: SubmodularFunction):
        sizes = {function.n_candidates for function in functions}
        if len(sizes) != 1:
            raise ValueError(f"The functions have different numbers of candidates: {sorted(sizes)}.")
        self.functions = functions
        self.n_candidates = sizes.pop()

    def empty_state(self) -> tuple:
        """One state per term."""
        return tuple(function.empty_state() for function in self.functions)

    def gains(self, state: tuple, candidates: torch.Tensor | None) -> torch.Tensor:
        """Sum of the terms' gains."""
        return sum(function.gains(part, candidates) for function, part in zip(self.functions, state, strict=True))

    def add(self, state: tuple, candidate: int) -> tuple:
        """Add ``candidate`` to every term's state."""
        return tuple(function.add(part, candidate) for function, part in zip(self.functions, state, strict=True))

    def value(self, selected: torch.Tensor) -> float:
        """Sum of the terms' values."""
        return sum(function.value(selected) for function in self.functions)


def gaussian_similarity(first: torch.Tensor, second: torch.Tensor, sigma: float) -> torch.Tensor:
    """Similarities ``w_ij = exp(-||a_i - b_j||^2 / (2 sigma^2))`` between two sets of vectors.

    Parameters
    ----------
    first : torch.Tensor of shape (n, d)
    second : torch.Tensor of shape (m, d)
    sigma : float
        Bandwidth, in the units of the vectors' distances.

    Returns
    -------
    torch.Tensor of shape (n, m)
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}.")
    return torch.exp(-torch.cdist(first, second).square() / (2 * sigma**2))


def _check_size(function: SubmodularFunction, k: int) -> int:
    if k < 0:
        raise ValueError(f"Cannot select a negative number of points ({k}).")
    return min(k, function.n_candidates)


def greedy(function: SubmodularFunction, k: int) -> torch.Tensor:
    """Select ``k`` candidates by the plain greedy algorithm.

    Every step evaluates the gain of every remaining candidate (one batched
    call) and adds the best. Used as the reference for :func:`lazy_greedy`.

    Parameters
    ----------
    function : SubmodularFunction
        The monotone submodular objective.
    k : int
        Number of candidates to select (capped at ``function.n_candidates``).

    Returns
    -------
    torch.Tensor
        Selected candidate indices, in the order chosen.
    """
    k = _check_size(function, k)
    state = function.empty_state()
    selected = []
    for _ in range(k):
        gains = function.gains(state, None).to(torch.float64)
        if selected:
            gains[torch.tensor(selected, device=gains.device)] = float("-inf")
        best = int(gains.argmax())
        selected.append(best)
        state = function.add(state, best)
    return torch.tensor(selected, dtype=torch.int64)


def lazy_greedy(function: SubmodularFunction, k: int) -> torch.Tensor:
    """Select ``k`` candidates by lazy (accelerated) greedy; the same set as :func:`greedy`.

    By submodularity a candidate's gain only shrinks as the set grows, so
    its last computed gain is an upper bound. Each step re-evaluates the
    candidates with the highest bounds, a block at a time (in one batched
    call, the block doubling while needed and starting from half the last
    step's), until the best fresh gain is at least the highest bound not
    yet refreshed; that candidate is then the true argmax, as plain greedy
    would find it.

    Parameters
    ----------
    function : SubmodularFunction
        The monotone submodular objective.
    k : int
        Number of candidates to select (capped at ``function.n_candidates``).

    Returns
    -------
    torch.Tensor
        Selected candidate indices, in the order chosen.
    """
    k = _check_size(function, k)
    n = function.n_candidates
    state = function.empty_state()
    bounds = function.gains(state, None).to(torch.float64).cpu()
    selected = []
    block = 2
    for step in range(k):
        n_available = n - step
        block = max(1, min(block // 2, n_available))
        while True:
            top_bounds, top = bounds.topk(min(block + 1, n_available))
            fresh = function.gains(state, top[:block]).to(torch.float64).cpu()
            bounds[top[:block]] = fresh
            best = int(fresh.argmax())
            next_bound = top_bounds[block] if block < len(top_bounds) else float("-inf")
            if fresh[best] >= next_bound:
                break
            block = min(2 * block, n_available)
        chosen = int(top[best])
        selected.append(chosen)
        bounds[chosen] = float("-inf")
        state = function.add(state, chosen)
    return torch.tensor(selected, dtype=torch.int64)


#: Above this many candidates :func:`maximize` uses lazy greedy. Below it one
#: batched evaluation of every gain per step is cheaper than lazy greedy's
#: extra steps (measured on CPU in ``benchmarks/replay_cost.py``: at 1000
#: candidates the two take the same time, at 10000 lazy is 7x faster).
LAZY_GREEDY_ABOVE = 1000


def maximize(function: SubmodularFunction, k: int, method: str = "auto") -> torch.Tensor:
    """Greedily select ``k`` candidates maximising ``function``.

    Parameters
    ----------
    function : SubmodularFunction
        The monotone submodular objective.
    k : int
        Number of candidates to select.
    method : {"auto", "greedy", "lazy"}, default="auto"
        ``"auto"`` uses :func:`lazy_greedy` above :data:`LAZY_GREEDY_ABOVE`
        candidates and :func:`greedy` otherwise; both return the same set.

    Returns
    -------
    torch.Tensor
        Selected candidate indices, in the order chosen.
    """
    if method == "auto":
        method = "lazy" if function.n_candidates > LAZY_GREEDY_ABOVE else "greedy"
    if method == "lazy":
        return lazy_greedy(function, k)
    if method == "greedy":
        return greedy(function, k)
    raise ValueError(f"Unknown greedy method {method!r}; use 'auto', 'greedy' or 'lazy'.")
