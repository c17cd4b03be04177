"""The seed round and the active-learning baselines of the paper: retrain, warm start and fine-tuning."""

from __future__ import annotations

from typing import ClassVar

from .base import LabelledSetTraining, ReplayStrategy, Trainer


class SeedRound(LabelledSetTraining):
    """The first round (Algorithm 1, lines 3-6): train on the seed set.

    Parameters
    ----------
    reinitialize : bool, default=True
        Start from fresh weights (skorch's ``initialize``); False keeps the
        module as it is (``warm_start=True``, or weights loaded before the
        first ``partial_fit``).
    """

    name = "seed"
    display_name = "seed"
    _parameter_constraints: ClassVar[dict] = {"reinitialize": ["boolean"]}

    def __init__(self, reinitialize: bool = True):
        self.reinitialize = reinitialize

    def prepare_model(self, net: Trainer) -> None:
        """Initialise every component, or only the optimizer when keeping the weights.

        Parameters
        ----------
        net : Trainer
            The estimator being trained.
        """
        if self.reinitialize:
            net.initialize()
        else:
            net.initialize_optimizer()


class Retrain(LabelledSetTraining):
    """Standard active learning (Algorithm 1): re-initialise, train on all labelled points.

    Each round trains from a fresh random initialisation on ``D_{1:t}`` for up
    to ``max_epochs`` epochs (or until ``train_accuracy_stop`` is reached).
    """

    name = "retrain"
    display_name = "AL"
    keeps_weights = False

    def prepare_model(self, net: Trainer) -> None:
        """Draw fresh random weights, and build a fresh criterion and optimizer.

        Parameters
        ----------
        net : Trainer
            The estimator being trained.
        """
        net.reinitialize_module()


class WarmStart(LabelledSetTraining):
    """Active learning with warm starting ("AL w/ WS"): as :class:`Retrain`, keeping the weights."""

    name = "warmstart"
    display_name = "AL w/ WS"


class FineTune(ReplayStrategy):
    """Train on the newly labelled points only, with no replay.

    The forgetting baseline of the paper's Figure 1: the loss is the
    cross-entropy on the current minibatch, ``L_c``.

    Parameters
    ----------
    sampling : {"uniform", "class_balanced"}, default="uniform"
        How replay batches (and candidates) are drawn; see :class:`~skcal.replay.ReplayStrategy`.
    memory_size : int or None, default=None
        Bound the replay memory to this many points; None keeps every point.
    retention : {"reservoir", "class_balanced"}, default="reservoir"
        Which points a bounded memory keeps.
    """

    name = "finetune"
    display_name = "Fine-tune"
    replays = False
