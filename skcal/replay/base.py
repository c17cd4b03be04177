"""The interface every round-training strategy implements.

A strategy is a small, stateless-by-configuration object (an sklearn
``BaseEstimator``, so its hyperparameters are reachable as ``replay__<name>``
on :class:`~skcal.ContinualActiveClassifier`). The estimator creates a fresh
copy for every round, calls :meth:`ReplayStrategy.begin_round`, then for each
minibatch ``B_current`` of newly labelled points (Algorithm 2 of the paper):

1. :meth:`ReplayStrategy.select_replay` picks ``B_replay`` from the history;
2. the module runs one forward pass over ``B_current`` and ``B_replay`` together;
3. :meth:`ReplayStrategy.loss` turns both outputs into the loss that is
   backpropagated: ``L_c`` (equation (1)) when nothing was replayed, else
   :meth:`ReplayStrategy.loss_with_replay`, where the methods differ.

Strategies with ``trains_on_labelled_set = True`` (standard AL) skip this
and train on the whole labelled set with skorch's own training step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator

from ..history import LabelledHistory, ReplayBatch

if TYPE_CHECKING:
    from ..estimator import ContinualActiveClassifier


class ReplayStrategy(BaseEstimator):
    """Base class of a round's training strategy.

    Subclasses set the class attributes below and, for replay methods,
    implement :meth:`loss_with_replay`; they may override
    :meth:`select_replay` (MIR, SDS2) and :meth:`begin_round` (per-round
    quantities such as SD's ``lambda_t``).

    Attributes
    ----------
    name : str
        The alias accepted by ``replay=``.
    trains_on_labelled_set : bool
        Train on history and new points together, as standard AL does,
        instead of on the new points with replay.
    reinitializes : bool
        Re-initialise the module's weights before the round.
    replays : bool
        Join each minibatch of new points with a replay batch.
    """

    name: ClassVar[str] = ""
    trains_on_labelled_set: ClassVar[bool] = False
    reinitializes: ClassVar[bool] = False
    replays: ClassVar[bool] = True

    def begin_round(self, net: ContinualActiveClassifier, history: LabelledHistory, n_new: int) -> None:
        """Prepare per-round quantities; called once before the round trains.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator being trained.
        history : LabelledHistory
            The committed history ``D_{1:t-1}``.
        n_new : int
            Number of newly labelled points ``|D_t|``.
        """

    def select_replay(
        self,
        net: ContinualActiveClassifier,
        X_current: Any,
        y_current: torch.Tensor,
        history: LabelledHistory,
        size: int,
        rng: np.random.Generator,
    ) -> torch.Tensor:
        """Choose the replay batch ``B_replay`` for one minibatch of new points.

        The default draws ``size`` points uniformly without replacement,
        as ER does (section 3.3).

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator being trained (for methods that score candidates).
        X_current, y_current : torch.Tensor or dict, torch.Tensor
            The current minibatch of newly labelled points, on the training device.
        history : LabelledHistory
            The committed history to draw from.
        size : int
            The replay size ``m'``.
        rng : numpy.random.Generator
            The round's random generator; use it for every random choice.

        Returns
        -------
        torch.Tensor
            History positions of the replay batch.
        """
        return history.sample(size, rng)

    def loss(
        self,
        net: ContinualActiveClassifier,
        y_pred: torch.Tensor,
        y_true: torch.Tensor,
        replay_pred: torch.Tensor | None,
        replay: ReplayBatch | None,
    ) -> torch.Tensor:
        """Compute one step's loss from the outputs on current and replayed points.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator; ``net.get_loss`` is the criterion (cross-entropy by default).
        y_pred : torch.Tensor
            Module outputs (logits) on the current minibatch, ``f(x)``.
        y_true : torch.Tensor
            Encoded labels of the current minibatch.
        replay_pred : torch.Tensor or None
            Module outputs on the replay batch, ``f(x')``; None if nothing is replayed.
        replay : ReplayBatch or None
            The replayed points with their labels and stored logits ``z'``.

        Returns
        -------
        torch.Tensor
            ``L_c`` (equation (1)) without replay, else :meth:`loss_with_replay`.
        """
        current = net.get_loss(y_pred, y_true, training=True)
        if replay is None:
            return current
        return self.loss_with_replay(net, current, replay_pred, replay)

    def loss_with_replay(
        self, net: ContinualActiveClassifier, current: torch.Tensor, replay_pred: torch.Tensor, replay: ReplayBatch
    ) -> torch.Tensor:
        """Combine the current batch's loss ``L_c`` with the replayed points.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator; ``net.get_loss`` is the criterion.
        current : torch.Tensor
            ``L_c``, the criterion on the current minibatch.
        replay_pred : torch.Tensor
            Module outputs on the replay batch, ``g(x')``.
        replay : ReplayBatch
            The replayed points: labels ``y'`` and stored logits ``z'``.

        Returns
        -------
        torch.Tensor
            A scalar loss.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define a replay loss.")

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        return super().__repr__(N_CHAR_MAX)


class CandidateReplay(ReplayStrategy):
    """Base of methods that score random history candidates and replay the best.

    Each minibatch draws ``max(n_candidates, m')`` history points at random
    (the paper's subsampling "for speed"), and :meth:`choose` picks ``m'``
    of them. Subclasses define ``n_candidates`` and :meth:`choose`.
    """

    n_candidates: int

    def begin_round(self, net: ContinualActiveClassifier, history: LabelledHistory, n_new: int) -> None:
        """Check ``n_candidates``."""
        super().begin_round(net, history, n_new)
        if int(self.n_candidates) < 1:
            raise ValueError(f"n_candidates must be at least 1, got {self.n_candidates}.")

    def select_replay(
        self,
        net: ContinualActiveClassifier,
        X_current: Any,
        y_current: torch.Tensor,
        history: LabelledHistory,
        size: int,
        rng: np.random.Generator,
    ) -> torch.Tensor:
        """Draw the candidates and return the ``size`` that :meth:`choose` picks."""
        candidates = history.sample(max(int(self.n_candidates), size), rng)
        if len(candidates) <= size:
            return candidates
        return candidates[self.choose(net, X_current, y_current, history.batch(candidates), size, rng)]

    def choose(
        self,
        net: ContinualActiveClassifier,
        X_current: Any,
        y_current: torch.Tensor,
        candidates: ReplayBatch,
        size: int,
        rng: np.random.Generator,
    ) -> torch.Tensor:
        """Return positions, within ``candidates``, of the ``size`` points to replay.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator being trained.
        X_current, y_current : torch.Tensor or dict, torch.Tensor
            The current minibatch.
        candidates : ReplayBatch
            The randomly drawn history points.
        size : int
            How many to keep (``m'``).
        rng : numpy.random.Generator
            The round's random generator.
        """
        raise NotImplementedError
