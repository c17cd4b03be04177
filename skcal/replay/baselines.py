"""The active-learning baselines of the paper: retrain, warm start and fine-tuning."""

from __future__ import annotations

from .base import ReplayStrategy


class Retrain(ReplayStrategy):
    """Standard active learning (Algorithm 1): re-initialise, train on all labelled points.

    Each round trains from a fresh random initialisation on ``D_{1:t}`` for up
    to ``max_epochs`` epochs (or until ``train_accuracy_stop`` is reached).
    """

    name = "retrain"
    trains_on_labelled_set = True
    reinitializes = True
    replays = False


class WarmStart(ReplayStrategy):
    """Active learning with warm starting ("AL w/ WS"): as :class:`Retrain`, keeping the weights."""

    name = "warmstart"
    trains_on_labelled_set = True
    replays = False


class FineTune(ReplayStrategy):
    """Train on the newly labelled points only, with no replay.

    The forgetting baseline of the paper's Figure 1: the loss is the
    cross-entropy on the current minibatch, ``L_c``.
    """

    name = "finetune"
    replays = False
