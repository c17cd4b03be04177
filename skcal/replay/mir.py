"""CAL-MIR: maximally interfered retrieval (section 3.3; Aljundi et al. 2019)."""

from __future__ import annotations

from numbers import Real
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch.func import functional_call

from ..history import ReplayBatch
from ..utils.params import Interval, StrOptions
from .base import CandidateReplay, ReplayDraw, Trainer
from .er import ExperienceReplay

SELECTIONS = ("top", "sampled")


class MaximallyInterferedRetrieval(CandidateReplay, ExperienceReplay):
    """Replay the history points a step on the current batch would hurt most.

    For each minibatch of new points, ``n_candidates`` history points are
    drawn at random and scored by their interference: take a virtual SGD
    step on the current batch, ``theta_v = theta - eta * grad L_c``, and
    measure each candidate's loss increase ``s(x) = l(f(x; theta_v), y) -
    l(f(x; theta), y)``. The ``m'`` highest-scoring candidates are replayed,
    with ER's loss on the joint batch.

    The virtual step never touches the real parameters, gradients or
    optimizer state (``torch.func.functional_call`` with substituted
    weights), and BatchNorm statistics are updated only on copies. The
    paper's text writes the score with the opposite sign; the increase is
    what MIR (and the name) means.

    Parameters
    ----------
    n_candidates : int, default=100
        ``C``, history points scored per minibatch (A.2: 100-270).
    selection : {"top", "sampled"}, default="top"
        ``"top"`` replays the highest scores, as in the MIR paper;
        ``"sampled"`` draws ``m'`` candidates with probabilities
        ``softmax(scores)``, as the CAL reference code does.
    virtual_lr : float or None, default=None
        ``eta``; None uses the optimizer's current learning rate.
    sampling, memory_size, retention
        The replay memory: see :class:`~skcal.replay.ReplayStrategy`.
    """

    name = "mir"
    display_name = "CAL-MIR"
    _parameter_constraints: ClassVar[dict] = {
        **CandidateReplay._parameter_constraints,
        "selection": [StrOptions(set(SELECTIONS))],
        "virtual_lr": [Interval(Real, 0, None, closed="left"), None],
    }

    def __init__(
        self,
        n_candidates: int = 100,
        selection: str = "top",
        virtual_lr: float | None = None,
        sampling: str = "uniform",
        memory_size: int | None = None,
        retention: str = "reservoir",
    ):
        super().__init__(sampling=sampling, memory_size=memory_size, retention=retention)
        self.n_candidates = n_candidates
        self.selection = selection
        self.virtual_lr = virtual_lr

    def choose(self, net: Trainer, draw: ReplayDraw, candidates: ReplayBatch) -> torch.Tensor:
        """Keep the ``draw.size`` most interfered candidates (or sample by softmax of the scores)."""
        scores = self.interference(net, draw.X_current, draw.y_current, candidates)
        if self.selection == "top":
            return scores.topk(draw.size).indices.cpu()
        probabilities = torch.softmax(scores.double(), dim=0).cpu().numpy()
        return torch.from_numpy(draw.rng.choice(len(scores), draw.size, replace=False, p=probabilities))

    def interference(
        self, net: Trainer, X_current: Any, y_current: torch.Tensor, candidates: ReplayBatch
    ) -> torch.Tensor:
        """Each candidate's loss increase after a virtual SGD step on the current batch.

        Parameters
        ----------
        net : Trainer
            The estimator being trained.
        X_current, y_current : torch.Tensor or dict, torch.Tensor
            The current minibatch.
        candidates : ReplayBatch
            The history points to score.

        Returns
        -------
        torch.Tensor of shape (n_candidates,)
            ``l(f(x; theta_v), y) - l(f(x; theta), y)``.
        """
        module = net.unwrapped_module()  # the virtual step stays on this process, out of gradient synchronisation
        weights = {name: value for name, value in module.named_parameters() if value.requires_grad}
        buffers = {name: value.clone() for name, value in module.named_buffers()}

        def call(parameters: dict, X: Any) -> torch.Tensor:
            state = {**parameters, **buffers}
            if isinstance(X, dict):
                return functional_call(module, state, args=(), kwargs=X)
            return functional_call(module, state, (X,))

        current_loss = net.get_loss(call(weights, X_current), y_current, training=True)
        gradients = torch.autograd.grad(current_loss, list(weights.values()), allow_unused=True)
        eta = net.optimizer_.param_groups[0]["lr"] if self.virtual_lr is None else self.virtual_lr
        with torch.no_grad():
            virtual = {
                name: value if gradient is None else value - eta * gradient
                for (name, value), gradient in zip(weights.items(), gradients, strict=True)
            }
            labels = candidates.y
            before = F.cross_entropy(call(weights, candidates.X), labels, reduction="none")
            after = F.cross_entropy(call(virtual, candidates.X), labels, reduction="none")
        net.count_samples(forwarded=len(y_current) + 2 * len(labels), backpropagated=len(y_current))
        return after - before
