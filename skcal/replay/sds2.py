"""CAL-SDS2: scaled distillation with submodular replay selection (equation (6) of the paper)."""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import torch

from ..history import ReplayBatch
from ..submodular import ConcaveOverModular, FacilityLocation, SumOfFunctions, gaussian_similarity, maximize
from ..utils.embedding import embeddings_and_logits
from ..utils.params import Interval, StrOptions
from .base import CandidateReplay, ReplayDraw, Trainer
from .sd import ScaledDistillation

EMBEDDINGS = ("penultimate", "logits")


class SubmodularScaledDistillation(CandidateReplay, ScaledDistillation):
    """SD's loss, replaying a diverse and uncertain subset of the history.

    For each minibatch, ``n_candidates`` history points ``A`` are drawn at
    random and scored in eval mode; the replay batch ``S``, ``|S| = m'``, is
    chosen by greedy maximisation of equation (6) (:func:`skcal.submodular.maximize`)::

        G(S) = sum_{i in A} max_{j in S} w_ij + lambda * log(1 + sum_{j in S} h(x_j))
        w_ij = exp(-||z_i - z_j||^2 / (2 sigma^2)),   h(x) = 1 - max_k f(x)_k

    where ``z`` is the penultimate-layer embedding (see :mod:`skcal.utils.embedding`).
    The loss is :class:`ScaledDistillation`'s.

    Parameters
    ----------
    alpha : float, default=0.25
        Weight of the distillation term (as in SD).
    kl : {"true", "reference"}, default="true"
        KL variant (as in SD).
    n_candidates : int, default=100
        ``|A|``, history points considered per minibatch (A.2: 100-270).
    sigma : float, default=0.1
        Bandwidth of the similarity, in units of embedding distance (A.2: 0.1 or 1).
    uncertainty_weight : float, default=1.0
        ``lambda``, weight of the uncertainty term (A.2: 0.1-10).
    embedding : {"penultimate", "logits"}, default="penultimate"
        ``z``: the paper's penultimate representation, or the logits the
        reference code uses.
    sampling : {"uniform", "class_balanced"}, default="uniform"
        How replay batches (and candidates) are drawn; see :class:`~skcal.replay.ReplayStrategy`.
    memory_size : int or None, default=None
        Bound the replay memory to this many points; None keeps every point.
    retention : {"reservoir", "class_balanced"}, default="reservoir"
        Which points a bounded memory keeps.
    """

    name = "sds2"
    display_name = "CAL-SDS2"
    _parameter_constraints: ClassVar[dict] = {
        **ScaledDistillation._parameter_constraints,
        **CandidateReplay._parameter_constraints,
        "sigma": [Interval(Real, 0, None, closed="neither")],
        "uncertainty_weight": [Interval(Real, 0, None, closed="left")],
        "embedding": [StrOptions(set(EMBEDDINGS))],
    }

    def __init__(
        self,
        alpha: float = 0.25,
        kl: str = "true",
        n_candidates: int = 100,
        sigma: float = 0.1,
        uncertainty_weight: float = 1.0,
        embedding: str = "penultimate",
        sampling: str = "uniform",
        memory_size: int | None = None,
        retention: str = "reservoir",
    ):
        super().__init__(alpha=alpha, kl=kl, sampling=sampling, memory_size=memory_size, retention=retention)
        self.n_candidates = n_candidates
        self.sigma = sigma
        self.uncertainty_weight = uncertainty_weight
        self.embedding = embedding

    def choose(self, net: Trainer, draw: ReplayDraw, candidates: ReplayBatch) -> torch.Tensor:
        """Greedily maximise equation (6) over the candidates, scored in eval mode.

        Parameters
        ----------
        net : Trainer
            The estimator being trained.
        draw : ReplayDraw
            The current minibatch, replay size and the round's generator.
        candidates : ReplayBatch
            The randomly drawn history points.

        Returns
        -------
        torch.Tensor
            Positions within ``candidates``, ``draw.size`` of them.
        """
        module = net.unwrapped_module()
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                embeddings, logits = embeddings_and_logits(module, candidates.X)
        finally:
            module.train(was_training)
        net.count_samples(forwarded=len(candidates))
        if self.embedding == "logits":
            embeddings = logits
        uncertainty = 1 - torch.softmax(logits.float(), dim=1).max(dim=1).values
        objective = SumOfFunctions(
            FacilityLocation(gaussian_similarity(embeddings.float(), embeddings.float(), self.sigma)),
            ConcaveOverModular(uncertainty, self.uncertainty_weight),
        )
        return maximize(objective, draw.size)
