"""CAL-ER: experience replay (section 3.3 of the paper)."""

from __future__ import annotations

import torch

from ..history import ReplayBatch
from .base import ReplayStrategy, Trainer


class ExperienceReplay(ReplayStrategy):
    """Experience replay: a uniform replay batch, one cross-entropy over both batches.

    Each minibatch ``B_current`` of newly labelled points is joined by
    ``m'`` points drawn uniformly without replacement from the history, and
    the update minimises the criterion on ``B_current ∪ B_replay``.

    Parameters
    ----------
    sampling : {"uniform", "class_balanced"}, default="uniform"
        How replay batches (and candidates) are drawn; see :class:`~skcal.replay.ReplayStrategy`.
    memory_size : int or None, default=None
        Bound the replay memory to this many points; None keeps every point.
    retention : {"reservoir", "class_balanced"}, default="reservoir"
        Which points a bounded memory keeps.
    """

    name = "er"
    display_name = "CAL-ER"

    def loss(
        self,
        net: Trainer,
        y_pred: torch.Tensor,
        y_true: torch.Tensor,
        replay_pred: torch.Tensor | None,
        replay: ReplayBatch | None,
    ) -> torch.Tensor:
        """Return ``L(B_current ∪ B_replay)``: one criterion over both batches together.

        Parameters
        ----------
        net : Trainer
            The estimator; ``net.get_loss`` is the criterion.
        y_pred : torch.Tensor
            Module outputs (logits) on the current minibatch.
        y_true : torch.Tensor
            Encoded labels of the current minibatch.
        replay_pred : torch.Tensor or None
            Module outputs on the replay batch; None if nothing is replayed.
        replay : ReplayBatch or None
            The replayed points with their labels.

        Returns
        -------
        torch.Tensor
            A scalar loss.
        """
        if replay is None:
            return super().loss(net, y_pred, y_true, None, None)
        return net.get_loss(torch.cat([y_pred, replay_pred]), torch.cat([y_true, replay.y]), training=True)
