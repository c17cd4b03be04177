"""Stopping criteria: when to stop labelling.

A criterion watches the model after every round and says when more labels
are unlikely to pay. It works in a hand-written modAL loop::

    criterion = StabilizingPredictions(stop_set=X_stop)
    learner.fit(X_seed, y_seed)
    criterion.update(learner)               # round 0: the seed model
    while not criterion.should_stop:
        indices, _ = learner.query(X_pool, n_instances=20)
        learner.teach(X_pool[indices], oracle(indices))
        X_pool = np.delete(X_pool, indices, axis=0)
        criterion.update(learner)           # round 1, 2, ...

and as ``ActiveLearningSimulator(stop_when=criterion or [criteria])``, which
updates every criterion after every round (the seed round included), stops
the campaign at the first round where any of them says stop, and records
that round (``stopped_at_``, and ``stopped`` / ``stopped_by`` in each round
record).

Call :meth:`~StoppingCriterion.update` once after the seed model is fitted
and once after every ``teach``: the criterion counts its updates as rounds
(update 0 is round 0, the seed round), exactly as the simulator numbers its
rounds. ``should_stop`` is sticky: once a criterion has held it stays True,
and ``stopped_at_`` keeps the first round it held at, until :meth:`reset`.

Criteria are scikit-learn style objects: parameters in ``__init__``,
``get_params``/``set_params``/``clone``, state in attributes ending in ``_``.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from .utils.data import n_samples
from .utils.params import Interval, StrOptions, check_parameters, validate_params


def cohen_kappa(first: Any, second: Any) -> float:
    """Return Cohen's kappa between two labellings of the same points.

    ``kappa = (p_o - p_e) / (1 - p_e)`` with ``p_o`` the fraction of points
    given the same label and ``p_e = sum_k a_k b_k`` the agreement expected by
    chance from each labelling's class frequencies ``a_k`` and ``b_k``; the
    same value as :func:`sklearn.metrics.cohen_kappa_score`. When both
    labellings give every point one and the same class, ``p_e = 1`` and the
    formula is 0/0; the agreement is then perfect and this function returns
    1.0 (scikit-learn returns NaN with a warning).

    Parameters
    ----------
    first, second : array-like of shape (n_points,)
        Labels of any comparable type (ints, strings).

    Returns
    -------
    float
        In ``[-1, 1]``.

    Raises
    ------
    ValueError
        Empty, not 1-D, or of different lengths.
    """
    first, second = np.asarray(first), np.asarray(second)
    if first.ndim != 1 or second.ndim != 1:
        raise ValueError(f"Labellings must be 1-D, got shapes {first.shape} and {second.shape}.")
    if len(first) != len(second):
        raise ValueError(f"Labellings of different lengths: {len(first)} and {len(second)}.")
    if not len(first):
        raise ValueError("Labellings are empty: kappa needs at least one point.")
    _, codes = np.unique(np.concatenate([first, second]), return_inverse=True)
    codes = codes.reshape(-1)
    a, b = codes[: len(first)], codes[len(first) :]
    n_labels = int(codes.max()) + 1
    observed = float(np.mean(a == b))
    expected = float(np.bincount(a, minlength=n_labels) @ np.bincount(b, minlength=n_labels)) / len(a) ** 2
    if expected >= 1.0:  # one class everywhere, in both labellings: perfect agreement
        return 1.0
    return (observed - expected) / (1.0 - expected)


def _check_learner(learner: Any, method: str, criterion: str) -> None:
    if not callable(getattr(learner, method, None)):
        raise TypeError(
            f"{criterion}.update needs a learner or classifier with {method}(), got {type(learner).__name__}."
        )


class StoppingCriterion(BaseEstimator):
    """Base class of stopping criteria: ``update`` after every round, then read ``should_stop``.

    Subclasses declare their parameters' rules in ``_parameter_constraints``
    (scikit-learn's constraint language, :mod:`skcal.utils.params`),
    implement ``_holds(learner, X_stop) -> bool`` (whether the criterion's
    condition holds after this round), and may extend ``_reset_state()`` and,
    for rules between parameters, ``_check_params()``.

    Attributes
    ----------
    n_updates_ : int
        Updates (rounds) seen since the last :meth:`reset`.
    stopped_at_ : int or None
        The round (0-based update count) at which the condition first held.
    """

    #: Whether the criterion reads a stop set (the simulator then passes its pool when ``stop_set`` is None).
    requires_stop_set: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict] = {}

    def _check_params(self) -> None:
        """Check the parameters against ``_parameter_constraints``.

        Raises
        ------
        InvalidParameterError
            A ``ValueError`` naming the parameter, its value and what it accepts.
        """
        check_parameters(self, named=True)

    def _reset_state(self) -> None:
        """Clear the subclass's fitted state."""

    def _holds(self, learner: Any, X_stop: Any) -> bool:
        raise NotImplementedError

    def reset(self) -> StoppingCriterion:
        """Check the parameters and forget every update, ready for a new campaign.

        Returns
        -------
        self
            The criterion, reset.
        """
        self._check_params()
        self.n_updates_ = 0
        self.stopped_at_ = None
        self._reset_state()
        return self

    def update(self, learner: Any, X_stop: Any = None) -> StoppingCriterion:
        """Look at the model after one more round.

        Parameters
        ----------
        learner : ContinualActiveLearner, modAL learner, ContinualActiveClassifier or scikit-learn classifier
            The model after the round; criteria call its ``predict`` or
            ``predict_proba``.
        X_stop : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays, optional
            The stop set, for criteria that need one and were built without
            ``stop_set``. Pass the same points at every update.

        Returns
        -------
        self
            The criterion, updated.
        """
        if not hasattr(self, "n_updates_"):
            self.reset()
        else:
            self._check_params()
        if self._holds(learner, X_stop) and self.stopped_at_ is None:
            self.stopped_at_ = self.n_updates_
        self.n_updates_ += 1
        return self

    @property
    def should_stop(self) -> bool:
        """Whether the criterion has held at some update since the last :meth:`reset`."""
        return getattr(self, "stopped_at_", None) is not None

    def _stop_set(self, X_stop: Any) -> Any:
        own = getattr(self, "stop_set", None)
        if X_stop is not None and own is not None:
            raise ValueError(f"{type(self).__name__} was built with a stop_set; do not also pass X_stop to update().")
        X = own if X_stop is None else X_stop
        if X is None:
            raise ValueError(
                f"{type(self).__name__} needs a stop set: build it with stop_set=... or call update(learner, X_stop)."
            )
        if n_samples(X) == 0:
            raise ValueError(f"{type(self).__name__}: the stop set is empty.")
        return X


class StabilizingPredictions(StoppingCriterion):
    """Stop when successive models agree on a stop set (Bloodgood & Vijay-Shanker 2009).

    After every round the model labels the stop set; Cohen's kappa between
    each round's labels and the previous round's (:func:`cohen_kappa`)
    measures how much the predictions still move. The criterion holds once
    the mean of the last ``window`` kappas exceeds ``threshold``: with the
    paper's values (0.99 over 3 comparisons), the earliest stop is at round
    3, the fourth model.

    The stop set need not be labelled; the paper draws it at random from
    the unlabelled data once and keeps it fixed. It must be the same points
    at every update.

    Parameters
    ----------
    stop_set : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays, optional
        The points whose predictions are compared. Without it, pass
        ``X_stop`` to :meth:`update` (the simulator passes its whole pool).
    threshold : float, default=0.99
        Stop when the mean kappa is strictly greater; in ``[-1, 1)``.
    window : int, default=3
        Number of successive comparisons averaged; at least 1.

    Attributes
    ----------
    kappas_ : list of float
        Kappa between round ``r`` and round ``r - 1``, for ``r = 1, 2, ...``.
    n_updates_ : int
    stopped_at_ : int or None
        The first round at which the mean of the last ``window`` kappas
        exceeded ``threshold``.

    References
    ----------
    M. Bloodgood and K. Vijay-Shanker. A method for stopping active learning
    based on stabilizing predictions and the need for user-adjustable
    stopping. CoNLL 2009.
    """

    requires_stop_set = True
    _parameter_constraints: ClassVar[dict] = {
        "stop_set": "no_validation",  # checked when it is read: it may also come at update()
        "threshold": [Interval(Real, -1, 1, closed="left")],
        "window": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, stop_set: Any = None, threshold: Real = 0.99, window: int = 3):
        self.stop_set = stop_set
        self.threshold = threshold
        self.window = window

    def _reset_state(self) -> None:
        self.kappas_ = []
        self.previous_predictions_ = None

    def _holds(self, learner: Any, X_stop: Any) -> bool:
        _check_learner(learner, "predict", type(self).__name__)
        predictions = np.asarray(learner.predict(self._stop_set(X_stop)))
        previous = self.previous_predictions_
        if previous is not None:
            if len(previous) != len(predictions):
                raise ValueError(
                    f"StabilizingPredictions: the stop set changed size between rounds ({len(previous)} then "
                    f"{len(predictions)} points); compare predictions on the same points every round."
                )
            self.kappas_.append(cohen_kappa(previous, predictions))
        self.previous_predictions_ = predictions
        recent = self.kappas_[-self.window :]
        return len(recent) == self.window and float(np.mean(recent)) > self.threshold


_MEASURES = ("entropy", "max")
_AGGREGATES = ("mean", "max")


@validate_params({"measure": [StrOptions(set(_MEASURES))]})
def uncertainty_scores(probabilities: Any, measure: str = "entropy") -> np.ndarray:
    """Return each point's uncertainty in ``[0, 1]`` from class probabilities.

    Parameters
    ----------
    probabilities : array-like of shape (n_points, n_classes)
        Each row a distribution over the classes.
    measure : {"entropy", "max"}, default="entropy"
        ``"entropy"``: the entropy ``-sum_k p_k log p_k`` divided by its
        maximum ``log K`` (0 for one class); ``"max"``: ``1 - max_k p_k``
        (least confidence).

    Returns
    -------
    ndarray of float64, shape (n_points,)
        The uncertainty of each point.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or 0 in p.shape:
        raise ValueError(f"probabilities must have shape (n_points, n_classes), got {p.shape}.")
    if not np.isfinite(p).all():
        raise ValueError("probabilities contains NaN or infinity (has the model diverged?).")
    if measure == "max":
        return 1.0 - p.max(axis=1)
    if p.shape[1] == 1:
        return np.zeros(len(p))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=1) / np.log(p.shape[1])


class UncertaintyBelow(StoppingCriterion):
    """Stop when the model's uncertainty on a stop set falls below a threshold.

    With ``aggregate="mean"`` this is Zhu et al.'s *overall uncertainty*
    (the mean over the stop set, usually the unlabelled pool); with
    ``aggregate="max"`` their *max-uncertainty* (the most uncertain point).
    Per-point uncertainty is normalised to ``[0, 1]``
    (:func:`uncertainty_scores`), so one threshold means the same for any
    number of classes.

    Parameters
    ----------
    threshold : float
        Stop once the aggregated uncertainty is strictly below it; in ``(0, 1]``.
    stop_set : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays, optional
        The points scored. Without it, pass ``X_stop`` to :meth:`update`
        (the simulator passes its whole pool).
    measure : {"entropy", "max"}, default="entropy"
        ``"entropy"``: entropy divided by ``log K``; ``"max"``: ``1 - max_k p_k``.
    aggregate : {"mean", "max"}, default="mean"
        How the stop set's per-point uncertainties are combined.

    Attributes
    ----------
    uncertainties_ : list of float
        The aggregated uncertainty after each round.
    n_updates_ : int
    stopped_at_ : int or None

    References
    ----------
    J. Zhu, H. Wang and E. Hovy. Multi-criteria-based strategy to stop active
    learning for data annotation. COLING 2008.
    """

    requires_stop_set = True
    _parameter_constraints: ClassVar[dict] = {
        "threshold": [Interval(Real, 0, 1, closed="right")],
        "stop_set": "no_validation",  # checked when it is read: it may also come at update()
        "measure": [StrOptions(set(_MEASURES))],
        "aggregate": [StrOptions(set(_AGGREGATES))],
    }

    def __init__(self, threshold: Real, stop_set: Any = None, measure: str = "entropy", aggregate: str = "mean"):
        self.threshold = threshold
        self.stop_set = stop_set
        self.measure = measure
        self.aggregate = aggregate

    def _reset_state(self) -> None:
        self.uncertainties_ = []

    def _holds(self, learner: Any, X_stop: Any) -> bool:
        _check_learner(learner, "predict_proba", type(self).__name__)
        scores = uncertainty_scores(learner.predict_proba(self._stop_set(X_stop)), self.measure)
        value = float(scores.mean() if self.aggregate == "mean" else scores.max())
        self.uncertainties_.append(value)
        return value < self.threshold


class MaxRounds(StoppingCriterion):
    """Stop after ``n_rounds`` query rounds (the seed round is round 0).

    It holds at the update of round ``n_rounds``, so in the simulator it
    ends the campaign with ``n_rounds`` query rounds done, as
    ``n_rounds=`` would; it caps a campaign whose other criteria may never
    hold.

    Parameters
    ----------
    n_rounds : int
        Query rounds after the seed round; at least 0 (0 stops after the seed round).

    Attributes
    ----------
    n_updates_ : int
    stopped_at_ : int or None
    """

    _parameter_constraints: ClassVar[dict] = {"n_rounds": [Interval(Integral, 0, None, closed="left")]}

    def __init__(self, n_rounds: int):
        self.n_rounds = n_rounds

    def _holds(self, learner: Any, X_stop: Any) -> bool:
        return self.n_updates_ >= self.n_rounds


def check_criteria(stop_when: Any) -> list:
    """Turn ``stop_when`` (None, a criterion, or a list or tuple of them) into a list, checking each.

    Every :class:`StoppingCriterion`'s parameters are checked here, before
    any of them is reset, so that a bad one leaves the others as they were.

    Parameters
    ----------
    stop_when : None, StoppingCriterion, or sequence of StoppingCriterion
        Any object with ``update``, ``reset`` and ``should_stop`` counts as a criterion.

    Returns
    -------
    list
        The criteria, checked.

    Raises
    ------
    TypeError
        Something that is not a criterion.
    InvalidParameterError
        A criterion's parameter is out of range (a ``ValueError``).
    """
    if stop_when is None:
        return []
    criteria = list(stop_when) if isinstance(stop_when, (list, tuple)) else [stop_when]
    for criterion in criteria:
        if isinstance(criterion, type) or not all(
            hasattr(criterion, name) for name in ("update", "reset", "should_stop")
        ):
            raise TypeError(
                "stop_when must be a stopping criterion (skcal.stopping: StabilizingPredictions, UncertaintyBelow, "
                f"MaxRounds, ...) or a list of them, got {criterion!r}."
            )
    for criterion in criteria:
        if isinstance(criterion, StoppingCriterion):
            criterion._check_params()
    return criteria


__all__ = [
    "MaxRounds",
    "StabilizingPredictions",
    "StoppingCriterion",
    "UncertaintyBelow",
    "check_criteria",
    "cohen_kappa",
    "uncertainty_scores",
]
