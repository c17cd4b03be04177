"""``ActiveLearningSimulator``: a whole simulated active-learning campaign as one estimator.

``fit(X, y)`` uses ``y`` as the oracle: it draws a random seed set, then
alternates query and teach rounds through a
:class:`~skcal.modal.ContinualActiveLearner`, recording what every round cost.
Because the inner estimator's ``replay`` is a parameter, scikit-learn's model
selection compares standard AL with every CAL method in one grid, with both
accuracy and fit time in ``cv_results_``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.metrics import balanced_accuracy_score
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .estimator import ContinualActiveClassifier
from .modal import ContinualActiveLearner
from .query import _takes_random_state, entropy_sampling
from .stopping import check_criteria
from .tracking import RoundLogger, loggable_params, record_metrics
from .utils.data import n_samples, select_rows
from .utils.params import Interval, RealNotInt, check_parameters
from .utils.validation import check_labels

#: Numbers of a simulator's round record that its tracker's RoundLogger already logs from the estimator's round.
_LOGGED_BY_THE_ESTIMATOR = (
    "round",
    "n_labelled",
    "train_seconds",
    "cumulative_train_seconds",
    "samples_backpropagated",
    "cumulative_samples_backpropagated",
    "epochs",
)

#: A number of points: a count, or a fraction of the pool.
_SIZE = [Interval(Integral, 1, None, closed="left"), Interval(RealNotInt, 0, 1, closed="right")]


def _resolve_size(size: Real, n_total: int, name: str) -> int:
    """Turn a count (int) or a fraction of ``n_total`` (float in (0, 1], already checked) into a count."""
    count = int(size) if isinstance(size, Integral) else int(round(size * n_total))
    if count < 1:
        raise ValueError(f"{name}={size!r} selects no points out of {n_total}.")
    if count > n_total:
        raise ValueError(f"{name}={size!r} asks for {count} points but X has only {n_total}.")
    return count


class ActiveLearningSimulator(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Simulate an active-learning campaign on labelled data, as an sklearn classifier.

    ``fit(X, y)`` draws ``initial_size`` points at random as the seed set,
    then repeats: query ``query_size`` points from the unlabelled rest with
    ``query_strategy``, reveal their labels from ``y``, and ``teach`` them to
    the estimator (one ``partial_fit`` round), until ``n_rounds`` rounds or
    ``budget`` labels. ``predict``, ``predict_proba`` and ``score`` use the
    final model.

    Parameters
    ----------
    estimator : ContinualActiveClassifier
        Cloned before use. Its ``replay`` decides how rounds train
        (``"retrain"`` is standard AL).
    query_strategy : callable, default=skcal.query.entropy_sampling
        ``strategy(learner, X_pool, n_instances=...) -> indices``: modAL's
        strategies and ``skcal.query``'s. A strategy with a ``random_state``
        parameter (``random_sampling``, ``badge_sampling``) is seeded from
        ``random_state``, unless it is a :func:`functools.partial` that sets
        its own ``random_state``, which is then used as given.
    initial_size : int or float, default=0.1
        Seed-set size: a count, or a fraction of ``len(X)``.
    query_size : int or float, default=0.05
        Labels per round: a count, or a fraction of ``len(X)``.
    n_rounds : int or None, default=None
        Query rounds after the seed round. With neither ``n_rounds`` nor
        ``budget``, rounds continue until half of ``X`` is labelled.
    budget : int, float or None, default=None
        Stop once this many labels (a count, or a fraction of ``len(X)``)
        are reached; the last round is shortened to hit it exactly.
    random_state : int, RandomState instance or None, default=None
        Seeds the seed set, the query strategy if it takes a ``random_state``
        (one ``RandomState`` drawn from this one serves every round, so two
        fits with the same int pick the same points), and, if the estimator
        has no ``random_state`` of its own, the estimator's training.
    track_forgetting : bool, default=False
        After every round also record ``round_accuracies``: the model's
        accuracy on the points labelled in each round so far (the paper's
        Figure 1). Costs a forward pass over the labelled set per round.
    verbose : int, default=0
        Print one line per round if positive.
    stop_when : stopping criterion, list of them, or None, default=None
        Criteria from :mod:`skcal.stopping` (``StabilizingPredictions``,
        ``UncertaintyBelow``, ``MaxRounds``...). Each is reset at the start
        of ``fit`` and updated after every round, the seed round included;
        the campaign ends at the first round where any of them says stop,
        before ``n_rounds``/``budget`` if it comes first. A criterion that
        needs a stop set and was built without one is given the whole of
        ``X`` (labelled and unlabelled points alike: the same points every
        round). The criteria objects are the ones passed (not copies): after
        ``fit`` they hold the campaign's state.
    tracker : skcal.tracking.RoundLogger or None, default=None
        Logs the campaign to MLflow or TensorBoard. Each ``fit`` clones it
        and adds the clone to the estimator's callbacks (as
        ``"simulator_tracker"``), so that every fit, each of a
        cross-validation's included, logs to its own run: the estimator's
        parameters and the simulator's (``simulator__<name>``) once, and per
        round (step = round) the estimator's round metrics and the
        simulator's ``labelled_fraction``, ``query_seconds`` and, with
        ``eval_set``, ``accuracy`` and ``balanced_accuracy``, all as
        ``round/<name>``, with the round's record as
        ``round-XXX/simulation.json``. The run ends with ``fit``
        (``FAILED`` if ``fit`` raised). See ``docs/tracking.md``.

    Attributes
    ----------
    estimator_ : ContinualActiveClassifier
        The final model.
    learner_ : ContinualActiveLearner
        The modAL learner that ran the loop.
    records_ : list of dict
        Per round: ``round``, ``n_labelled``, ``labelled_fraction``,
        ``strategy``, ``train_seconds``, ``cumulative_train_seconds``,
        ``samples_backpropagated``, ``cumulative_samples_backpropagated``,
        ``query_seconds``, ``accuracy`` and ``balanced_accuracy`` (the mean
        per-class recall, for imbalanced data) when ``eval_set`` was given, and
        ``round_accuracies`` with ``track_forgetting``; with ``stop_when``,
        also ``stopped`` (whether the campaign stopped at this round on a
        criterion) and ``stopped_by`` (the class names of the criteria that
        said stop).
    stopped_at_ : int or None
        The round at which ``stop_when`` ended the campaign, or None if it
        ran to its budget (or had no criteria).
    stopped_by_ : list
        The criteria that said stop at ``stopped_at_`` (empty if none).
    tracker_ : RoundLogger or None
        The clone of ``tracker`` that logged the last ``fit``
        (``tracker_.run_id_`` is its MLflow run).
    labelled_indices_ : ndarray
        Rows of ``X`` in the order they were labelled.
    classes_ : ndarray
        The labels.
    """

    _parameter_constraints: ClassVar[dict] = {
        "estimator": [ContinualActiveClassifier],
        "query_strategy": [callable],
        "initial_size": _SIZE,
        "query_size": _SIZE,
        "n_rounds": [Interval(Integral, 0, None, closed="left"), None],
        "budget": [*_SIZE, None],
        "random_state": ["random_state"],
        "track_forgetting": ["boolean"],
        "verbose": ["verbose"],
        "stop_when": "no_validation",  # criteria are duck-typed: skcal.stopping.check_criteria checks them
        "tracker": [RoundLogger, None],
    }

    def __init__(
        self,
        estimator: ContinualActiveClassifier,
        query_strategy: Callable = entropy_sampling,
        initial_size: Real = 0.1,
        query_size: Real = 0.05,
        n_rounds: int | None = None,
        budget: Real | None = None,
        random_state: Any = None,
        track_forgetting: bool = False,
        verbose: int = 0,
        stop_when: Any = None,
        tracker: RoundLogger | None = None,
    ):
        self.estimator = estimator
        self.query_strategy = query_strategy
        self.initial_size = initial_size
        self.query_size = query_size
        self.n_rounds = n_rounds
        self.budget = budget
        self.random_state = random_state
        self.track_forgetting = track_forgetting
        self.verbose = verbose
        self.stop_when = stop_when
        self.tracker = tracker

    def _plan(self, n_total: int) -> tuple[int, int, int]:
        """Check the parameters, alone and against each other and the pool's size; count the labels.

        Parameters
        ----------
        n_total : int
            Points in the pool.

        Returns
        -------
        initial, per_round, budget : int
            Seed-set size, labels per round, and labels at the end of the campaign.

        Raises
        ------
        InvalidParameterError
            A parameter outside ``_parameter_constraints``.
        ValueError
            Sizes the pool cannot meet, or a budget below the seed set.
        """
        check_parameters(self)
        initial = _resolve_size(self.initial_size, n_total, "initial_size")
        per_round = _resolve_size(self.query_size, n_total, "query_size")
        if self.budget is not None:
            budget = _resolve_size(self.budget, n_total, "budget")
            if budget < initial:
                raise ValueError(f"budget ({budget} labels) is smaller than initial_size ({initial}).")
        elif self.n_rounds is not None:
            budget = initial + self.n_rounds * per_round
            if budget > n_total:
                raise ValueError(
                    f"{self.n_rounds} rounds of {per_round} after {initial} seed points need {budget} "
                    f"labels, but X has only {n_total} points."
                )
        else:
            budget = max(initial, n_total // 2)
        return initial, per_round, budget

    def fit(self, X: Any, y: Any, eval_set: tuple | None = None) -> ActiveLearningSimulator:
        """Run the simulated campaign with ``y`` as the oracle.

        Parameters
        ----------
        X : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
            The pool; every point starts unlabelled.
        y : array-like of shape (n_samples,)
            The oracle's labels.
        eval_set : tuple (X_val, y_val), optional
            Held-out data scored after every round.

        Returns
        -------
        self
            The simulator, its campaign run.

        Raises
        ------
        InvalidParameterError
            Before anything is trained or reset: a parameter out of range (a
            ``ValueError`` and ``TypeError`` naming it), or a criterion's.
        ValueError, TypeError
            Also before anything is trained or reset: a bad ``tracker``
            (:meth:`RoundLogger.initialize <skcal.tracking.RoundLogger.initialize>`).
        """
        n_total = n_samples(X)
        initial, per_round, budget = self._plan(n_total)
        labels = check_labels(y, n_total)
        criteria = check_criteria(self.stop_when)  # checks their parameters before any is reset
        tracker = self._clone_tracker()
        for criterion in criteria:
            criterion.reset()
        rng = check_random_state(self.random_state)

        estimator = clone(self.estimator)
        if tracker is not None:
            estimator.set_params(callbacks=[*(estimator.callbacks or []), ("simulator_tracker", tracker)])
        if estimator.classes is None:
            estimator.set_params(classes=np.unique(labels))  # a random seed set may miss a class
        if estimator.random_state is None and self.random_state is not None:
            estimator.set_params(random_state=int(rng.randint(2**31 - 1)))

        labelled = rng.choice(n_total, initial, replace=False)
        query_kwargs = {}
        if self.random_state is not None and _takes_random_state(self.query_strategy):
            query_kwargs["random_state"] = np.random.RandomState(rng.randint(2**31 - 1))
        self.learner_ = ContinualActiveLearner(estimator, self.query_strategy)
        self.estimator_ = estimator
        self.classes_ = np.unique(labels)
        self.records_ = []
        self.stopped_at_, self.stopped_by_ = None, []
        self.tracker_ = tracker
        try:
            self._run_campaign(X, labels, labelled, budget, per_round, criteria, query_kwargs, eval_set)
        except BaseException:
            if self.tracker_ is not None:
                self.tracker_.end_campaign("FAILED")
            raise
        if self.tracker_ is not None:
            self.tracker_.end_campaign()
        return self

    def _run_campaign(
        self,
        X: Any,
        labels: np.ndarray,
        labelled: np.ndarray,
        budget: int,
        per_round: int,
        criteria: list,
        query_kwargs: dict,
        eval_set: tuple | None,
    ) -> None:
        """Train the seed set, then query and teach until the budget or a stopping criterion; set the results."""
        n_total = n_samples(X)
        self.learner_.fit(select_rows(X, labelled), labels[labelled])
        if self.tracker_ is not None:
            simulator_params = self.get_params(deep=False)
            for name in ("estimator", "tracker"):
                simulator_params.pop(name)
            self.tracker_.log_params(loggable_params(simulator_params, prefix="simulator__"))
        self._record(labelled, n_total, 0.0, eval_set)
        stopped = self._check_stop(criteria, X)
        self._track_round()

        unlabelled = np.setdiff1d(np.arange(n_total), labelled)
        while len(labelled) < budget and not stopped:
            count = min(per_round, budget - len(labelled))
            started = time.perf_counter()
            chosen, _ = self.learner_.query(select_rows(X, unlabelled), n_instances=count, **query_kwargs)
            query_seconds = time.perf_counter() - started
            chosen = unlabelled[np.asarray(chosen, dtype=np.int64)]
            if len(np.unique(chosen)) != len(chosen):
                raise RuntimeError(f"{self.query_strategy!r} returned duplicate indices.")
            self.learner_.teach(select_rows(X, chosen), labels[chosen])
            labelled = np.concatenate([labelled, chosen])
            unlabelled = np.setdiff1d(unlabelled, chosen, assume_unique=True)
            self._record(labelled, n_total, query_seconds, eval_set)
            stopped = self._check_stop(criteria, X)
            self._track_round()
        self.labelled_indices_ = labelled

    def _clone_tracker(self) -> RoundLogger | None:
        """Return a checked clone of ``tracker`` for one fit (None without a tracker)."""
        if self.tracker is None:
            return None
        if self.tracker.writer is not None:
            raise ValueError(
                "tracker=RoundLogger(writer=...) would log every fit to the same TensorBoard writer (the simulator "
                "clones its tracker for each fit): give it log_dir= instead, for a folder per fit."
            )
        return clone(self.tracker).initialize()

    def _track_round(self) -> None:
        """Log the simulator's own numbers of the last round, and its record, to the fit's tracker."""
        if self.tracker_ is None:
            return
        record = self.records_[-1]
        self.tracker_.log_metrics(record_metrics(record, exclude=_LOGGED_BY_THE_ESTIMATOR), step=record["round"])
        self.tracker_.log_round_files(record["round"], {"simulation.json": record})

    def _check_stop(self, criteria: list, X: Any) -> bool:
        """Update every criterion with the round just recorded; flag the record; say whether to stop."""
        if not criteria:
            return False
        for criterion in criteria:
            needs_pool = getattr(criterion, "requires_stop_set", False) and getattr(criterion, "stop_set", None) is None
            criterion.update(self.learner_, X_stop=X if needs_pool else None)
        fired = [criterion for criterion in criteria if criterion.should_stop]
        record = self.records_[-1]
        record["stopped"] = bool(fired)
        record["stopped_by"] = [type(criterion).__name__ for criterion in fired]
        if fired:
            self.stopped_at_, self.stopped_by_ = record["round"], fired
            if self.verbose:
                print(f"stopped at round {record['round']} by {', '.join(record['stopped_by'])}")
        return bool(fired)

    def _record(self, labelled: np.ndarray, n_total: int, query_seconds: float, eval_set: tuple | None) -> None:
        last = self.estimator_.rounds_[-1]
        previous = self.records_[-1] if self.records_ else {}
        record = {
            "round": len(self.records_),
            "n_labelled": len(labelled),
            "labelled_fraction": len(labelled) / n_total,
            "strategy": last["strategy"],
            "train_seconds": last["train_seconds"],
            "cumulative_train_seconds": previous.get("cumulative_train_seconds", 0.0) + last["train_seconds"],
            "samples_backpropagated": last["samples_backpropagated"],
            "cumulative_samples_backpropagated": previous.get("cumulative_samples_backpropagated", 0)
            + last["samples_backpropagated"],
            "epochs": last["epochs"],
            "query_seconds": query_seconds,
        }
        if eval_set is not None:
            X_eval, y_eval = eval_set
            predicted = self.estimator_.predict(X_eval)
            record["accuracy"] = float(np.mean(predicted == np.asarray(y_eval)))
            record["balanced_accuracy"] = float(balanced_accuracy_score(y_eval, predicted))
        if self.track_forgetting:
            history = self.estimator_.labelled_history_
            correct = self.estimator_.predict_proba(history.X).argmax(axis=1) == history.y.cpu().numpy()
            rounds = history.rounds.cpu().numpy()
            record["round_accuracies"] = (np.bincount(rounds, weights=correct) / np.bincount(rounds)).tolist()
        self.records_.append(record)
        if self.verbose:
            accuracy = (
                f", accuracy {record['accuracy']:.4f} (balanced {record['balanced_accuracy']:.4f})"
                if "accuracy" in record
                else ""
            )
            print(
                f"round {record['round']}: {record['n_labelled']} labelled "
                f"({record['labelled_fraction']:.1%}), {record['train_seconds']:.2f} s training{accuracy}"
            )

    def predict(self, X: Any) -> np.ndarray:
        """Predict labels with the final model.

        Parameters
        ----------
        X : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
            The points to classify.

        Returns
        -------
        ndarray of shape (n_samples,)
            The final model's predicted labels.
        """
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return class probabilities from the final model.

        Parameters
        ----------
        X : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
            The points to classify.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            The final model's probabilities, columns in the order of ``classes_``.
        """
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)
