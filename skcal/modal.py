"""modAL integration: an ``ActiveLearner`` whose ``teach`` is one CAL round.

modAL's own ``ActiveLearner.teach`` re-stacks the whole labelled set and
retrains on it every round, and on scikit-learn >= 1.8 it raises a TypeError
(it passes ``force_all_finite``, which scikit-learn removed).
:class:`ContinualActiveLearner` keeps modAL's ``query`` and query strategies
and replaces the training side: ``teach(X, y)`` calls the estimator's
``partial_fit`` on the new points only, and the labelled set lives in the
estimator's :class:`~skcal.LabelledHistory`, appended to, never re-stacked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from modAL.models import ActiveLearner
from modAL.uncertainty import uncertainty_sampling
from sklearn.exceptions import NotFittedError

from .estimator import ContinualActiveClassifier
from .utils.data import select_rows


class ContinualActiveLearner(ActiveLearner):
    """A modAL ``ActiveLearner`` that trains with continual learning between queries.

    Parameters
    ----------
    estimator : ContinualActiveClassifier
        The classifier; its ``replay`` parameter decides how each ``teach``
        trains (``"retrain"`` gives standard active learning).
    query_strategy : callable, default=modAL.uncertainty.uncertainty_sampling
        ``strategy(learner, X_pool, n_instances=..., **kwargs) -> indices``,
        e.g. modAL's ``entropy_sampling`` or ``uncertainty_batch_sampling``.
    X_training, y_training : array-like, optional
        The seed set; when given, the estimator is fitted on it.
    on_transformed : bool, default=False
        As in modAL: apply the query strategy to pipeline-transformed data.
    **fit_kwargs : dict
        Passed to the estimator's ``fit`` for the seed set.

    Attributes
    ----------
    X_training : ndarray, scipy.sparse matrix or dict
        All labelled points: a copy of the history's features, so writing to
        it (through numpy or torch) cannot corrupt the replay memory. Read
        ``estimator.labelled_history_.X`` for a view without the copy.
    y_training : ndarray
        Their labels.
    """

    def __init__(
        self,
        estimator: ContinualActiveClassifier,
        query_strategy: Callable = uncertainty_sampling,
        X_training: Any = None,
        y_training: Any = None,
        on_transformed: bool = False,
        **fit_kwargs: Any,
    ):
        if not isinstance(estimator, ContinualActiveClassifier):
            raise TypeError(
                f"estimator must be a ContinualActiveClassifier, got {type(estimator).__name__}; "
                "use modAL's ActiveLearner for other estimators."
            )
        if not callable(query_strategy):
            raise TypeError(f"query_strategy must be callable, got {query_strategy!r}.")
        # modAL's __init__ stores X_training and refits on it; the history owns those here.
        self.estimator = estimator
        self.query_strategy = query_strategy
        self.on_transformed = on_transformed
        self.force_all_finite = True
        if (X_training is None) != (y_training is None):
            raise ValueError("Pass both X_training and y_training, or neither.")
        if X_training is not None:
            self.estimator.fit(X_training, y_training, **fit_kwargs)

    @property
    def X_training(self) -> Any:
        """All labelled points so far (a copy), or None before the seed set."""
        if not self.estimator.__sklearn_is_fitted__():
            return None
        X = self.estimator.labelled_history_.X
        if sp.issparse(X):
            return X.copy()
        if isinstance(X, dict):
            return {key: value.cpu().numpy().copy() for key, value in X.items()}
        return X.cpu().numpy().copy()

    @property
    def y_training(self) -> np.ndarray | None:
        """Labels of all labelled points so far, or None before the seed set."""
        if not self.estimator.__sklearn_is_fitted__():
            return None
        return self.estimator.classes_[self.estimator.labelled_history_.y.cpu().numpy()]

    def fit(self, X: Any, y: Any, bootstrap: bool = False, **fit_kwargs: Any) -> ContinualActiveLearner:
        """Train from scratch on ``(X, y)``, which becomes the whole labelled set.

        Parameters
        ----------
        X, y : array-like
            The seed set.
        bootstrap : bool, default=False
            Not supported (modAL's bagging for committees).
        **fit_kwargs : dict
            Passed to the estimator's ``fit``.

        Returns
        -------
        self
            The learner, its estimator trained on the seed set.
        """
        self._reject_bootstrap(bootstrap)
        self.estimator.fit(X, y, **fit_kwargs)
        return self

    def teach(self, X: Any, y: Any, bootstrap: bool = False, only_new: bool = True, **fit_kwargs: Any) -> None:
        """Add newly labelled points and train on them: one ``partial_fit`` round.

        Parameters
        ----------
        X, y : array-like
            The newly labelled points and their labels.
        bootstrap : bool, default=False
            Not supported.
        only_new : bool, default=True
            Accepted for compatibility with modAL; training always starts from
            the new points, and the estimator's ``replay`` decides whether the
            whole labelled set is used (``"retrain"``, ``"warmstart"``).
        **fit_kwargs : dict
            Passed to the estimator's ``partial_fit``.

        Raises
        ------
        NotFittedError
            If there is no labelled data yet: fit a seed set first.
        """
        self._reject_bootstrap(bootstrap)
        if not self.estimator.__sklearn_is_fitted__():
            raise NotFittedError(
                "teach() was called before any training data: pass X_training/y_training to "
                "ContinualActiveLearner or call fit(X_seed, y_seed) first."
            )
        self.estimator.partial_fit(X, y, **fit_kwargs)

    def query(self, X_pool: Any, *query_args: Any, **query_kwargs: Any) -> Any:
        """Choose points to label with the query strategy: modAL's ``(indices, instances)``.

        Parameters
        ----------
        X_pool : array-like, scipy.sparse matrix or dict of arrays
            The unlabelled pool.
        *query_args
            Passed to the query strategy.
        **query_kwargs
            Passed to the query strategy (``n_instances``, say).

        Returns
        -------
        indices : ndarray of int
            Positions of the chosen points in ``X_pool``.
        instances : array-like, scipy.sparse matrix or dict of arrays
            The chosen points, rows of ``X_pool``.

        Raises
        ------
        NotFittedError
            Before the seed set is fitted (modAL would silently score every
            point as equally uncertain).
        """
        if not self.estimator.__sklearn_is_fitted__():
            raise NotFittedError("query() was called before any training: fit a seed set first.")
        result = self.query_strategy(self, X_pool, *query_args, **query_kwargs)
        if isinstance(result, tuple):  # an old-style modAL strategy that returns the instances itself
            return result
        indices = np.asarray(result)
        # modAL's retrieve_rows rejects dict pools (tokenised text); skcal selects rows of any container
        return indices, select_rows(X_pool, indices)

    def save_checkpoint(self, directory: Any) -> Any:
        """Checkpoint the campaign: the labelled set lives in the estimator's history.

        Parameters
        ----------
        directory : str or Path
            Receives ``checkpoint.pt``.

        Returns
        -------
        Path
            The checkpoint file.
        """
        return self.estimator.save_checkpoint(directory)

    def load_checkpoint(self, directory: Any) -> ContinualActiveLearner:
        """Resume a campaign saved by :meth:`save_checkpoint`.

        Parameters
        ----------
        directory : str or Path
            The folder holding ``checkpoint.pt``.

        Returns
        -------
        self
            The learner, its estimator restored.
        """
        self.estimator.load_checkpoint(directory)
        return self

    @staticmethod
    def _reject_bootstrap(bootstrap: bool) -> None:
        if bootstrap:
            raise ValueError("bootstrap=True is not supported by ContinualActiveLearner.")
