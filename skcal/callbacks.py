"""skorch callbacks that decide when a round's training stops.

They follow the convention of skorch's own ``EarlyStopping``: a callback
ends training by raising ``KeyboardInterrupt`` from ``on_epoch_end``, which
:class:`~skcal.ContinualActiveClassifier` treats as the end of the round, not
as a failure. skorch's ``EarlyStopping`` therefore composes with them: the
round ends at whichever rule fires first. An interrupt raised anywhere else
(Ctrl-C during a training step) fails the round, which rolls back.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import torch
from skorch.callbacks import Callback, PrintLog

from .utils.params import Interval, check_parameters


class QuietPrintLog(PrintLog):
    """Skorch's ``PrintLog``, skipping the table it would format and discard when ``verbose=0``.

    Formatting the epoch table costs about a millisecond per epoch, which is
    a few percent of a small model's round; with a custom ``sink`` (which
    skorch calls whatever ``verbose`` says) it behaves exactly as ``PrintLog``.

    Parameters
    ----------
    keys_ignored : str, list of str or None, default=None
        Keys of skorch's history left out of the table.
    sink : callable, default=print
        Where each row goes; with ``print``, nothing is formatted when ``verbose=0``.
    tablefmt : str, default="simple"
        The ``tabulate`` table format.
    floatfmt : str, default=".4f"
        The number format.
    stralign : str or None, default="right"
        The alignment of columns of strings.
    """

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        """Print the epoch's row, unless nobody would see it.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator.
        **kwargs : dict
            Skorch's other event arguments.
        """
        if self.sink is print and not net.verbose:
            return
        super().on_epoch_end(net, **kwargs)


class TrainAccuracyStop(Callback):
    """End a round once an epoch's training accuracy reaches the round's threshold.

    The threshold is the round's ``stop_accuracy``: ``train_accuracy_stop``
    for rounds that train on the whole labelled set (the seed round,
    ``retrain`` and ``warmstart``, as in the reference protocol), None (never
    stop early) for replay rounds, which run ``round_epochs`` epochs.
    Outside a round (plain skorch training) it does nothing. It has no
    parameters of its own; a subclass that adds some declares them in
    ``_parameter_constraints``.
    """

    _parameter_constraints: ClassVar[dict] = {}

    def initialize(self) -> TrainAccuracyStop:
        """Check the parameters (skorch calls this when the estimator initialises its callbacks).

        Returns
        -------
        TrainAccuracyStop
            The callback itself.
        """
        check_parameters(self, prefix="callbacks__accuracy_stop__", named=True)
        return super().initialize()

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        """Stop if the epoch's training accuracy reached the threshold.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator.
        **kwargs : dict
            Skorch's other event arguments.
        """
        round_ = getattr(net, "round_", None)
        if round_ is None or round_.stop_accuracy is None or round_.epochs == 0:
            return
        if round_.train_accuracy >= round_.stop_accuracy:
            round_.stopped_by = "train_accuracy_stop"
            raise KeyboardInterrupt


class AutoRoundStop(Callback):
    """End a replay round once its new points are learned without forgetting, or training stalls.

    Active in rounds with ``round_epochs="auto"``, which then run up to
    ``max_epochs`` epochs. After every epoch (never before the first) the
    round stops when either rule holds:

    - **learned**, for ``confirmations`` epochs in a row: the new points are
      known as well as the old ones, and the old ones are not forgotten. The
      epoch's training accuracy on the *new* points reached the smaller of
      ``new_accuracy`` (default: the estimator's ``train_accuracy_stop``, or
      0.99 without one) and the model's accuracy on the history at the
      round's start; and the epoch's accuracy on the *replayed* points is no
      more than ``tolerance`` below that start accuracy. The start accuracy
      is measured on a random sample of ``sample_size`` history points before
      training, in eval mode, and counted in ``samples_forwarded``. (Queried
      points are the model's hardest: demanding 99% on them when the old
      points sit at 93% trains far past the point of learning them.)
    - **plateau**: training accuracy on the new points has not improved on
      the round's best by ``min_improvement`` (absolute) for ``patience``
      epochs: more epochs are not teaching the model these points.

    Neither rule stops a round before ``min_epochs`` epochs.

    Which rule ended the round is ``stopped_by`` in its ``rounds_`` record
    (``"learned"``, ``"plateau"``, or None when ``max_epochs`` ended it).

    Parameters
    ----------
    new_accuracy : float or None, default=None
        Training accuracy on the new points that counts as learned (capped
        by the history's start accuracy).
    confirmations : int, default=2
        Consecutive epochs the learned condition must hold: one lucky epoch
        does not end the round.
    tolerance : float, default=0.02
        How far the replayed points' accuracy may sit below its start value.
    patience : int, default=2
        Epochs without ``min_improvement`` of the new points' accuracy before the round stops.
    min_improvement : float, default=0.01
        The gain in the new points' training accuracy that resets ``patience``.
    min_epochs : int, default=5
        Epochs every round runs at least (a round of one or two epochs leaves
        a freshly built optimizer's first, largest steps as the last word).
    sample_size : int, default=1024
        History points scored at the round's start.
    """

    _parameter_constraints: ClassVar[dict] = {
        "new_accuracy": [Interval(Real, 0, 1, closed="both"), None],
        "confirmations": [Interval(Integral, 1, None, closed="left")],
        "tolerance": [Interval(Real, 0, 1, closed="both")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "min_improvement": [Interval(Real, 0, 1, closed="both")],
        "min_epochs": [Interval(Integral, 1, None, closed="left")],
        "sample_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        new_accuracy: float | None = None,
        confirmations: int = 2,
        tolerance: float = 0.02,
        patience: int = 2,
        min_improvement: float = 0.01,
        min_epochs: int = 5,
        sample_size: int = 1024,
    ):
        self.new_accuracy = new_accuracy
        self.confirmations = confirmations
        self.tolerance = tolerance
        self.patience = patience
        self.min_improvement = min_improvement
        self.min_epochs = min_epochs
        self.sample_size = sample_size

    def initialize(self) -> AutoRoundStop:
        """Check the parameters (skorch calls this when the estimator initialises its callbacks).

        Returns
        -------
        AutoRoundStop
            The callback itself.

        Raises
        ------
        InvalidParameterError
            A ``ValueError`` naming the bad ``callbacks__auto_stop__<name>``.
        """
        check_parameters(self, prefix="callbacks__auto_stop__", named=True)
        return super().initialize()

    def on_train_begin(self, net: Any, **kwargs: Any) -> None:
        """Check the parameters again, then measure the model's accuracy on a sample of the history.

        A parameter set on a fitted estimator (``set_params(callbacks__auto_stop__...)``)
        reaches this callback without a new :meth:`initialize`; a bad one
        fails the round here, before its first epoch, and the round rolls back.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator.
        **kwargs : dict
            Skorch's other event arguments.
        """
        self.initialize()
        self.start_accuracy_ = math.nan
        self.best_new_accuracy_, self.stalled_epochs_, self.learned_epochs_ = -math.inf, 0, 0
        round_ = getattr(net, "round_", None)
        if round_ is None or not round_.auto_epochs or len(net.labelled_history_) == 0:
            return
        self.start_accuracy_ = round_.start_accuracy = self._history_accuracy(net, round_)

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        """Stop if the new points are learned without forgetting, or the loss stalled.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator.
        **kwargs : dict
            Skorch's other event arguments.
        """
        round_ = getattr(net, "round_", None)
        if round_ is None or not round_.auto_epochs or round_.epochs == 0:
            return
        if round_.new_accuracy >= self.best_new_accuracy_ + self.min_improvement:
            self.best_new_accuracy_, self.stalled_epochs_ = round_.new_accuracy, 0
        else:
            self.stalled_epochs_ += 1
        target = self.target(net)
        kept = (
            math.isnan(self.start_accuracy_)
            or math.isnan(round_.replay_accuracy)
            or round_.replay_accuracy >= self.start_accuracy_ - self.tolerance
        )
        self.learned_epochs_ = self.learned_epochs_ + 1 if round_.new_accuracy >= target and kept else 0
        if round_.epochs < self.min_epochs:
            return
        if self.learned_epochs_ >= self.confirmations:
            round_.stopped_by = "learned"
        elif self.stalled_epochs_ >= self.patience:
            round_.stopped_by = "plateau"
        else:
            return
        raise KeyboardInterrupt

    def target(self, net: Any) -> float:
        """Return the training accuracy on the new points that counts as learned in this round.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator, in a round.

        Returns
        -------
        float
            ``new_accuracy`` (else ``train_accuracy_stop``, else 0.99), at most the start accuracy.
        """
        target = self.new_accuracy
        if target is None:
            target = net.train_accuracy_stop if net.train_accuracy_stop is not None else 0.99
        start = getattr(self, "start_accuracy_", math.nan)
        return target if math.isnan(start) else min(target, start)

    def _history_accuracy(self, net: Any, round_: Any) -> float:
        history = net.labelled_history_
        # a generator of its own: the round's draws stay those of a fixed-epoch round
        positions = history.sample(int(self.sample_size), np.random.default_rng(round_.seed + 1))
        module = net.module_
        was_training = module.training
        module.eval()
        correct = 0
        try:
            with torch.no_grad():
                for chunk in positions.split(max(1, net.training_batch_size())):
                    batch = history.batch(chunk)
                    predicted = net.infer(batch.X).argmax(dim=1)
                    correct += int((predicted == batch.y.to(predicted.device)).sum())
        finally:
            module.train(was_training)
        net.count_samples(forwarded=len(positions))
        return correct / len(positions)


class HeldOutRoundStop(Callback):
    """End a round once the evidence of its held-out points stops improving.

    The rule of ``round_epochs="auto"``. Such a round holds a stratified
    share of its training points out of training, its *stop set* (the
    estimator's ``stop_split``: 10% of each class's new points by default,
    drawn afresh every round; they join the labelled history with the
    others and train from the next round on). After every epoch the model
    scores the stop set in eval mode. The epoch *improves* if its held-out
    accuracy is the round's best so far, or its held-out loss (mean
    negative log-likelihood) is below the round's lowest by more than
    ``min_loss_decrease`` (relative): the loss, smoother than the accuracy
    of a few dozen points, shows that the model still gets better between
    the accuracy's steps, and stops improving once the model starts to
    memorise. The round stops after ``patience`` epochs without
    improvement, never before ``min_epochs``, at most ``max_epochs``; with
    ``restore_best`` it ends with the weights of its most accurate epoch
    (ties: the lower loss). A round too small to hold anything out trains
    ``min_epochs`` epochs.

    Each epoch's held-out accuracy and loss go into skorch's history as
    ``held_out_acc`` and ``held_out_loss``; the round's record gets
    ``held_out_accuracy`` (of the weights it ends with), ``n_held_out``,
    ``best_epoch`` (when an earlier epoch's weights were restored), and
    ``stopped_by="held_out"`` when the rule ended it. Scoring the stop set
    counts in ``samples_forwarded``.

    Parameters
    ----------
    patience : int, default=5
        Epochs without improvement before the round stops.
    min_epochs : int, default=5
        Epochs every round runs at least.
    min_loss_decrease : float, default=0.01
        The relative decrease of the held-out loss that counts as improvement.
    restore_best : bool, default=False
        End the round with the weights of its most accurate epoch.
    """

    _parameter_constraints: ClassVar[dict] = {
        "patience": [Interval(Integral, 1, None, closed="left")],
        "min_epochs": [Interval(Integral, 1, None, closed="left")],
        "min_loss_decrease": [Interval(Real, 0, 1, closed="left")],
        "restore_best": ["boolean"],
    }

    def __init__(
        self, patience: int = 5, min_epochs: int = 5, min_loss_decrease: float = 0.01, restore_best: bool = False
    ):
        self.patience = patience
        self.min_epochs = min_epochs
        self.min_loss_decrease = min_loss_decrease
        self.restore_best = restore_best

    def initialize(self) -> HeldOutRoundStop:
        """Check the parameters (skorch calls this when the estimator initialises its callbacks).

        Returns
        -------
        HeldOutRoundStop
            The callback itself.

        Raises
        ------
        InvalidParameterError
            A ``ValueError`` naming the bad ``callbacks__auto_stop__<name>``.
        """
        check_parameters(self, prefix="callbacks__auto_stop__", named=True)
        return super().initialize()

    def on_train_begin(self, net: Any, **kwargs: Any) -> None:
        """Check the parameters again (``set_params`` on a fitted estimator skips ``initialize``); forget the best.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator.
        **kwargs : dict
            Skorch's other event arguments.
        """
        self.initialize()
        self.best_accuracy_, self.lowest_loss_ = -math.inf, math.inf
        self.best_epoch_, self.best_weights_, self.stalled_epochs_ = None, None, 0

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        """Score the stop set; stop once it has not improved for ``patience`` epochs.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator.
        **kwargs : dict
            Skorch's other event arguments.
        """
        round_ = getattr(net, "round_", None)
        if round_ is None or not round_.auto_epochs or round_.epochs == 0:
            return
        if round_.stop_set is not None:
            accuracy, loss = self._score(net, round_.stop_set, round_.stop_labels)
            net.history.record("held_out_acc", accuracy)
            net.history.record("held_out_loss", loss)
            more_accurate = accuracy > self.best_accuracy_
            improved = more_accurate or loss < self.lowest_loss_ * (1 - self.min_loss_decrease)
            if more_accurate or (accuracy == self.best_accuracy_ and loss < self.lowest_loss_):
                self.best_accuracy_, self.best_epoch_ = accuracy, round_.epochs
                if self.restore_best:
                    state = net.unwrapped_module().state_dict()
                    self.best_weights_ = {key: value.detach().clone() for key, value in state.items()}
            self.lowest_loss_ = min(self.lowest_loss_, loss)
            self.stalled_epochs_ = 0 if improved else self.stalled_epochs_ + 1
            round_.held_out_accuracy = accuracy
        if round_.epochs < self.min_epochs:
            return
        if round_.stop_set is None or self.stalled_epochs_ >= self.patience:
            round_.stopped_by = "held_out"
            raise KeyboardInterrupt

    def on_train_end(self, net: Any, **kwargs: Any) -> None:
        """With ``restore_best``, put back the weights of the round's most accurate epoch.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator.
        **kwargs : dict
            Skorch's other event arguments.
        """
        round_ = getattr(net, "round_", None)
        if round_ is not None and round_.auto_epochs and self.best_weights_ is not None:
            if self.best_epoch_ != round_.epochs:
                net.unwrapped_module().load_state_dict(self.best_weights_)
                round_.best_epoch, round_.held_out_accuracy = self.best_epoch_, self.best_accuracy_
        self.best_weights_ = None

    @staticmethod
    def _score(net: Any, stop_set: Any, labels: torch.Tensor) -> tuple[float, float]:
        """Return the accuracy and mean negative log-likelihood of the model on the stop set."""
        probabilities = torch.as_tensor(net.predict_proba(stop_set))
        labels = labels.to(probabilities.device)
        accuracy = float((probabilities.argmax(dim=1) == labels).float().mean())
        likelihood = probabilities.gather(1, labels[:, None]).clamp_min(1e-12)
        return accuracy, float(-likelihood.log().mean())


__all__ = ["AutoRoundStop", "HeldOutRoundStop", "QuietPrintLog", "TrainAccuracyStop"]
