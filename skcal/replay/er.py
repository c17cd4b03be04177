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
        """``L(B_current ∪ B_replay)``: one criterion over both batches together."""
        if replay is None:
            return super().loss(net, y_pred, y_true, None, None)
        return net.get_loss(torch.cat([y_pred, replay_pred]), torch.cat([y_true, replay.y]), training=True)
