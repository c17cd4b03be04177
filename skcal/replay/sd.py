"""CAL-SD: scaled distillation (equations (3)-(5) of the paper)."""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import torch
import torch.nn.functional as F

from ..history import LabelledHistory, ReplayBatch
from ..utils.params import Interval, StrOptions
from .base import ReplayStrategy, Trainer

KL_VARIANTS = ("true", "reference")


def distillation_kl(replay_pred: torch.Tensor, stored_logits: torch.Tensor, variant: str = "true") -> torch.Tensor:
    """``E D_KL(softmax(z') || f(x'))``, averaged over the batch.

    Parameters
    ----------
    replay_pred : torch.Tensor
        Logits ``g(x')`` of the model being trained.
    stored_logits : torch.Tensor
        Stored logits ``z'``.
    variant : {"true", "reference"}, default="true"
        ``"true"`` is the KL divergence of equation (3). ``"reference"``
        reproduces the authors' code, which passes probabilities where
        ``kl_div`` expects log-probabilities, i.e.
        ``sum_k p_k (log p_k - q_k)`` with ``p = softmax(z')``,
        ``q = softmax(g(x'))``; offered only for comparison.
    """
    target = stored_logits.to(replay_pred.device)
    if variant == "true":
        return F.kl_div(
            F.log_softmax(replay_pred, dim=1), F.log_softmax(target, dim=1), log_target=True, reduction="batchmean"
        )
    if variant == "reference":
        return F.kl_div(F.softmax(replay_pred, dim=1), F.softmax(target, dim=1), reduction="batchmean")
    raise ValueError(f"Unknown KL variant {variant!r}; use one of {KL_VARIANTS}.")


def plasticity(n_history: int, n_new: int) -> float:
    """Equation (5): ``lambda_t = 1 / (1 + |D_{1:t-1}| / |D_t|)``."""
    return 1.0 / (1.0 + n_history / n_new)


class ScaledDistillation(ReplayStrategy):
    """Scaled distillation, the paper's CAL-SD.

    The loss is a convex combination of the current batch's loss and a
    replay loss of distillation and classification, weighted by how much of
    the labelled set is new (equations (3)-(5))::

        L_replay = E_{(x', y', z') ~ B_replay}[alpha KL(softmax(z') || f(x')) + (1 - alpha) l(y', f(x'))]
        L_SD     = lambda_t L_c + (1 - lambda_t) L_replay,   lambda_t = 1 / (1 + |D_{1:t-1}| / |D_t|)

    Early rounds (small history) favour the new points (plasticity), later
    rounds the replayed ones (stability).

    Parameters
    ----------
    alpha : float, default=0.25
        Weight of the distillation term within ``L_replay`` (A.2: 0.25-1).
    kl : {"true", "reference"}, default="true"
        ``"reference"`` reproduces the authors' mis-specified ``kl_div`` call
        for comparison; see :func:`distillation_kl`.
    sampling : {"uniform", "class_balanced"}, default="uniform"
        How replay batches (and candidates) are drawn; see :class:`~skcal.replay.ReplayStrategy`.
    memory_size : int or None, default=None
        Bound the replay memory to this many points; None keeps every point.
    retention : {"reservoir", "class_balanced"}, default="reservoir"
        Which points a bounded memory keeps.

    Attributes
    ----------
    lambda_t_ : float
        This round's ``lambda_t``, set by :meth:`begin_round`.
    """

    name = "sd"
    display_name = "CAL-SD"
    _parameter_constraints: ClassVar[dict] = {
        **ReplayStrategy._parameter_constraints,
        "alpha": [Interval(Real, 0, 1, closed="both")],
        "kl": [StrOptions(set(KL_VARIANTS))],
    }

    def __init__(
        self,
        alpha: float = 0.25,
        kl: str = "true",
        sampling: str = "uniform",
        memory_size: int | None = None,
        retention: str = "reservoir",
    ):
        super().__init__(sampling=sampling, memory_size=memory_size, retention=retention)
        self.alpha = alpha
        self.kl = kl

    def begin_round(self, net: Trainer, history: LabelledHistory, n_new: int) -> None:
        """Compute ``lambda_t`` (equation (5)) from the history and new-point counts.

        Parameters
        ----------
        net : Trainer
            The estimator being trained.
        history : LabelledHistory
            The committed history ``D_{1:t-1}``.
        n_new : int
            Number of newly labelled points ``|D_t|``.
        """
        self.lambda_t_ = plasticity(len(history), n_new)

    def loss_with_replay(
        self, net: Trainer, current: torch.Tensor, replay_pred: torch.Tensor, replay: ReplayBatch
    ) -> torch.Tensor:
        """Return equations (3)-(4): ``lambda_t L_c + (1 - lambda_t) L_replay``.

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
        distillation = distillation_kl(replay_pred, replay.logits, self.kl)
        classification = net.get_loss(replay_pred, replay.y, training=True)
        replay_loss = self.alpha * distillation + (1 - self.alpha) * classification
        return self.lambda_t_ * current + (1 - self.lambda_t_) * replay_loss
