"""CAL-DER: dark experience replay (equation (2) of the paper)."""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import torch

from ..history import ReplayBatch
from ..utils.params import Interval
from .base import ReplayStrategy, Trainer


def logit_distance(replay_pred: torch.Tensor, stored_logits: torch.Tensor) -> torch.Tensor:
    """``E ||g(x') - z'||_2^2``: squared L2 distance to the stored logits, averaged over the batch.

    DER++'s reference code averages over the logits as well (``mse_loss``),
    which divides this term, and so the effective ``alpha``, by the number
    of classes.
    """
    return (replay_pred - stored_logits.to(replay_pred.device)).square().sum(dim=1).mean()


class DarkExperienceReplay(ReplayStrategy):
    """Dark experience replay (DER++, Buzzega et al. 2020).

    Each replayed point ``x'`` carries the logits ``z'`` the model gave it
    at the end of the round it was labelled in. The loss is equation (2)::

        L_DER = L_c + E_{(x', y', z') ~ B_replay}[alpha ||g(x') - z'||^2 + beta l(y', f(x'))]

    Parameters
    ----------
    alpha : float, default=0.1
        Weight of the logit-distillation term (appendix A.2 uses 0.1 or 0.25).
    beta : float, default=1.0
        Weight of the classification loss on replayed points (A.2: 1 or 0.75).
    sampling : {"uniform", "class_balanced"}, default="uniform"
        How replay batches (and candidates) are drawn; see :class:`~skcal.replay.ReplayStrategy`.
    memory_size : int or None, default=None
        Bound the replay memory to this many points; None keeps every point.
    retention : {"reservoir", "class_balanced"}, default="reservoir"
        Which points a bounded memory keeps.
    """

    name = "der"
    display_name = "CAL-DER"
    _parameter_constraints: ClassVar[dict] = {
        **ReplayStrategy._parameter_constraints,
        "alpha": [Interval(Real, 0, None, closed="left")],
        "beta": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        alpha: float = 0.1,
        beta: float = 1.0,
        sampling: str = "uniform",
        memory_size: int | None = None,
        retention: str = "reservoir",
    ):
        super().__init__(sampling=sampling, memory_size=memory_size, retention=retention)
        self.alpha = alpha
        self.beta = beta

    def loss_with_replay(
        self, net: Trainer, current: torch.Tensor, replay_pred: torch.Tensor, replay: ReplayBatch
    ) -> torch.Tensor:
        """Return equation (2): ``L_c + alpha * ||g(x') - z'||^2 + beta * l(y', f(x'))``.

        Parameters
        ----------
        net : Trainer
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
        distillation = logit_distance(replay_pred, replay.logits)
        return current + self.alpha * distillation + self.beta * net.get_loss(replay_pred, replay.y, training=True)
