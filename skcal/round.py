"""One active-learning round: its state, its accounting and the record it leaves in ``rounds_``.

A :class:`Round` is created by :class:`~skcal.ContinualActiveClassifier` when
``fit`` or ``partial_fit`` starts training and lives until the round ends. It
owns everything that belongs to the round and to nothing else:

- its random generators (replay draws and batch order), derived from the
  estimator's ``rng_``, so a round is reproducible from ``random_state``;
- the processes that train it together: one, or several under an
  accelerator (:mod:`skcal.accelerate`), which then exchange their counts
  and agree on whether the round stops or fails;
- the accounting: epochs, samples forwarded and backpropagated, the epoch's
  training accuracy, wall-clock training time;
- the round's learning-rate scaling, undone when the round ends;
- the record that goes into ``rounds_``.

Strategies and callbacks read the round through ``net.round_``; it is
``None`` outside a round.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .exceptions import RoundFailedOnAnotherProcess
from .processes import EXCHANGE_WIDTH, SINGLE_PROCESS, Agreement, Processes, SingleProcess, process_generator

if TYPE_CHECKING:
    from .replay.base import ReplayStrategy


@dataclass
class Round:
    """The state and accounting of the round being trained.

    Parameters
    ----------
    index : int
        The round's id (0 for the seed round); also its position in ``rounds_``.
    strategy : ReplayStrategy
        The strategy that trains this round.
    n_new : int
        Newly labelled points, ``|D_t|``.
    n_history : int
        Points labelled in earlier rounds, ``|D_{1:t-1}|``.
    batch_size : int
        ``m``, points of the epoch's data per minibatch.
    replay_size : int
        ``m'``, history points replayed with each minibatch.
    seed : int
        Seeds the round's generators.
    stop_accuracy : float or None, default=None
        End the round once an epoch's training accuracy reaches this value
        (read by :class:`~skcal.callbacks.TrainAccuracyStop`); None never stops early.
    auto_epochs : bool, default=False
        The round's length is decided by :class:`~skcal.callbacks.AutoRoundStop`
        (``round_epochs="auto"``) instead of a fixed epoch count.
    stop_split : float or None, default=None
        The fraction of the round's training points held out of training as
        its stop set (:meth:`split_stop_set`); None holds none out.
    stop_set : torch.utils.data.Dataset or None, default=None
        The held-out points, once the estimator has split them off.
    stop_labels : torch.Tensor or None, default=None
        Their encoded labels.
    held_out : ndarray of int64 or None, default=None
        Their positions among the round's new points: the history defers
        them to the next round's training.
    device : torch.device, default=torch.device("cpu")
        Where the round trains (this process's device under an accelerator).
    processes : Processes, default=SingleProcess()
        The processes training the round. With several, ``batch_size`` and
        ``replay_size`` are each process's share of a step, the accounting
        (epoch accuracies, samples, the record) covers every process and is
        the same on each, and the round stops or fails on every process at
        once (:meth:`checkpoint`).

    Attributes
    ----------
    rng : numpy.random.Generator
        Random choices every process must make alike (which points a bounded
        replay memory keeps).
    replay_rng : numpy.random.Generator
        This process's replay draws: ``rng`` itself in a single process,
        :func:`process_generator` of the seed and the process's rank with several.
    shuffle_generator : torch.Generator
        The order of the training batches (the same on every process, which
        each take their own share of every step).
    epochs : int
        Epochs completed.
    samples_forwarded, samples_backpropagated : int
        Work done so far, in samples through the module (by every process,
        once the round has finished).
    train_accuracy : float
        Training accuracy of the last completed epoch (over every sample
        the loss was computed on, replayed ones included).
    new_accuracy : float
        Training accuracy of the last epoch on the newly labelled points only.
    replay_accuracy : float
        Training accuracy of the last epoch on the replayed points (NaN if none).
    stopped_by : str or None
        What ended the round early: the name of the rule, or None.
    start_accuracy : float
        With ``auto_epochs``, the model's accuracy on a sample of the history
        before the round trained (NaN otherwise; None in the record).
    seconds : float
        Training time, set when the round ends (the slowest process's).
    held_out_accuracy : float
        Accuracy on the stop set of the weights the round ends with (NaN without one).
    best_epoch : int or None
        The epoch whose weights the round ends with, when a rule restored an earlier epoch's.
    """

    index: int
    strategy: ReplayStrategy
    n_new: int
    n_history: int
    batch_size: int
    replay_size: int
    seed: int
    stop_accuracy: float | None = None
    auto_epochs: bool = False
    stop_split: float | None = None
    stop_set: Any = None
    stop_labels: torch.Tensor | None = None
    held_out: np.ndarray | None = None
    held_out_accuracy: float = float("nan")
    best_epoch: int | None = None
    epochs: int = 0
    samples_forwarded: int = 0
    samples_backpropagated: int = 0
    train_accuracy: float = float("nan")
    new_accuracy: float = float("nan")
    replay_accuracy: float = float("nan")
    stopped_by: str | None = None
    start_accuracy: float = float("nan")
    seconds: float = float("nan")
    device: torch.device = torch.device("cpu")
    processes: Processes = field(default=SINGLE_PROCESS, repr=False)
    rng: np.random.Generator = field(init=False, repr=False)
    replay_rng: np.random.Generator = field(init=False, repr=False)
    shuffle_generator: torch.Generator = field(init=False, repr=False)
    agreement: Agreement = field(init=False, repr=False)
    _correct: list = field(default_factory=list, repr=False)
    _correct_new: list = field(default_factory=list, repr=False)
    _saved_lrs: list = field(default_factory=list, repr=False)
    _started: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.replay_rng = self.processes.replay_generator(self.seed, self.rng)
        self.shuffle_generator = torch.Generator().manual_seed(self.seed)
        self.agreement = Agreement(self.processes, self.index)

    # -- accounting --------------------------------------------------------
    def start_clock(self) -> None:
        """Start timing the round's training."""
        self._started = time.perf_counter()

    def stop_clock(self, device: torch.device) -> None:
        """Stop timing this process, after waiting for queued GPU work.

        Parameters
        ----------
        device : torch.device
            The training device (CUDA is synchronised first).
        """
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        self.seconds = time.perf_counter() - self._started

    def count_step(self, loss: torch.Tensor, outputs: torch.Tensor, labels: torch.Tensor, n_new: int) -> None:
        """Account for one training step and check its loss is finite.

        Parameters
        ----------
        loss : torch.Tensor
            The step's scalar loss.
        outputs : torch.Tensor
            Logits of every sample of the step (new points first).
        labels : torch.Tensor
            Their encoded labels, in the same order.
        n_new : int
            How many of the samples are newly labelled points (the rest were replayed).

        Raises
        ------
        FloatingPointError
            If the loss is NaN or infinite.
        """
        value = loss.item()  # skorch reads it right after the step anyway
        if not math.isfinite(value):
            raise FloatingPointError(
                f"Round {self.index}, epoch {self.epochs + 1}: the loss is {value}; "
                "training diverged (try a lower learning rate)."
            )
        correct = outputs.detach().argmax(dim=1) == labels
        self._correct.append(correct)
        self._correct_new.append(correct[:n_new])
        self.samples_forwarded += len(outputs)
        self.samples_backpropagated += len(outputs)

    def count(self, forwarded: int = 0, backpropagated: int = 0) -> None:
        """Add work done outside the training step (candidate scoring, stored logits).

        Parameters
        ----------
        forwarded : int, default=0
            Samples passed forward.
        backpropagated : int, default=0
            Samples whose loss was backpropagated.
        """
        self.samples_forwarded += int(forwarded)
        self.samples_backpropagated += int(backpropagated)

    def end_epoch(self) -> bool:
        """Close the epoch's accuracy; return whether any training step ran in it.

        With several processes the accuracies are over every process's
        samples (an exchange, so every process must call it), and identical on each.

        Returns
        -------
        bool
            Whether the epoch ran a training step (then it counts in ``epochs``).
        """
        if self.agreement.several:
            return self._end_epoch_together()
        if not self._correct:
            return False
        self.epochs += 1
        correct, new = torch.cat(self._correct), torch.cat(self._correct_new)
        self.train_accuracy = correct.float().mean().item()
        self.new_accuracy = new.float().mean().item()
        n_replayed = len(correct) - len(new)
        self.replay_accuracy = (correct.sum() - new.sum()).item() / n_replayed if n_replayed else float("nan")
        self._correct, self._correct_new = [], []
        return True

    def _end_epoch_together(self) -> bool:
        correct = torch.cat(self._correct) if self._correct else torch.zeros(0, dtype=torch.bool)
        new = torch.cat(self._correct_new) if self._correct_new else torch.zeros(0, dtype=torch.bool)
        self._correct, self._correct_new = [], []
        counts = [int(correct.sum()), len(correct), int(new.sum()), len(new)]
        n_correct, n, n_correct_new, n_new = self.agreement.sum_epoch(counts)
        if n == 0:
            return False
        self.epochs += 1
        self.train_accuracy = float(n_correct / n)
        self.new_accuracy = float(n_correct_new / n_new) if n_new else float("nan")
        n_replayed = n - n_new
        self.replay_accuracy = float((n_correct - n_correct_new) / n_replayed) if n_replayed else float("nan")
        return True

    # -- several processes (see skcal.processes.Agreement) -------------------
    def checkpoint(self) -> None:
        """Confirm that every process got here without failing (an exchange; nothing to do in one process).

        A process whose round raised joins the next exchange reporting its
        failure (:meth:`report_failure`), so the others raise
        :class:`~skcal.exceptions.RoundFailedOnAnotherProcess` here and every
        process rolls the round back. The estimator checks in before each
        backward pass, after each round event (``on_train_begin``,
        ``on_epoch_begin``, ``on_epoch_end``, ``on_train_end``) and before
        gathering each batch of the new points' logits.
        """
        self.agreement.checkpoint()

    def agree_on_inputs(self, y: torch.Tensor, n_train: int) -> None:
        """Check that every process was given the same round (see :meth:`Agreement.agree_on_inputs`).

        Parameters
        ----------
        y : torch.Tensor of shape (n_new,)
            The round's encoded labels.
        n_train : int
            How many points the strategy trains on.
        """
        self.agreement.agree_on_inputs(self.n_new, self.n_history, y, n_train)

    def agree_to_stop(self, stop: bool) -> bool:
        """Return whether any process wants to end the round now (a checkpoint too).

        Parameters
        ----------
        stop : bool
            Whether a callback of this process ended the round.

        Returns
        -------
        bool
            ``stop`` in one process; with several, True if any of them stops.
        """
        anyone = self.agreement.agree_to_stop(stop)
        if anyone and not stop:
            self.stopped_by = self.stopped_by or "callback"
        return anyone

    def finish(self, device: torch.device) -> None:
        """End the round's training: stop the clock, then total the work of every process.

        After this, the processes have agreed that the round succeeded and
        hold the same record; nothing else is exchanged.

        Parameters
        ----------
        device : torch.device
            The training device (CUDA is synchronised before the clock stops).
        """
        self.stop_clock(device)
        self.samples_forwarded, self.samples_backpropagated, self.seconds = self.agreement.totals(
            self.samples_forwarded, self.samples_backpropagated, self.seconds
        )

    def report_failure(self, error: BaseException) -> None:
        """Tell the other processes that this process's round failed (nothing to do in one process).

        Parameters
        ----------
        error : BaseException
            The failure, re-raised by the caller afterwards.
        """
        self.agreement.report_failure(error)

    # -- stop set ----------------------------------------------------------
    def split_stop_set(self, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """Split the round's training points into those it trains on and its stop set, stratified by class.

        The stop set is drawn from the round's new points only (the ones the
        previous round held out, which follow them, always train). Each class
        gives ``stop_split`` of its new points, rounded at random so that the
        expected stop-set size is exact; a class with one new point keeps it
        for training, and so does a round with fewer than two. The draw has
        a generator of its own, from the round's seed: the same on every
        process, and leaving the round's other draws as
        they would be without a stop set.

        Parameters
        ----------
        y : array-like of shape (n_train,)
            The encoded labels of the round's training points.

        Returns
        -------
        train : ndarray of int64
            Positions, in the training points, of those the round trains on, sorted.
        held_out : ndarray of int64
            Positions of its stop set, sorted.
        """
        labels = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
        if not self.stop_split or self.n_new < 2:
            return np.arange(len(labels)), np.zeros(0, dtype=np.int64)
        new = labels[: self.n_new]  # the points the previous round deferred come after, and always train
        rng = np.random.default_rng([self.seed, 1])
        held_out = []
        for label in np.unique(new):
            members = np.flatnonzero(new == label)
            if len(members) < 2:
                continue
            share = self.stop_split * len(members)
            count = min(int(share) + int(rng.random() < share - int(share)), len(members) - 1)
            held_out.append(rng.choice(members, size=count, replace=False))
        held = np.sort(np.concatenate(held_out)) if held_out else np.zeros(0, dtype=np.int64)
        return np.setdiff1d(np.arange(len(labels)), held), held.astype(np.int64)

    # -- learning rate -----------------------------------------------------
    def scale_learning_rate(self, optimizer: torch.optim.Optimizer, factor: float) -> None:
        """Multiply every parameter group's learning rate by ``factor`` for this round.

        Parameters
        ----------
        optimizer : torch.optim.Optimizer
            The round's optimizer.
        factor : float
            The multiplier (:meth:`~skcal.replay.ReplayStrategy.learning_rate_factor`).
        """
        self._saved_lrs = [group["lr"] for group in optimizer.param_groups]
        if factor != 1.0:
            for group in optimizer.param_groups:
                group["lr"] = group["lr"] * factor

    def restore_learning_rate(self, optimizer: Any) -> None:
        """Undo :meth:`scale_learning_rate` (a no-op if it did not run).

        Parameters
        ----------
        optimizer : torch.optim.Optimizer
            The optimizer whose learning rates were scaled.
        """
        for group, lr in zip(getattr(optimizer, "param_groups", []), self._saved_lrs, strict=False):
            group["lr"] = lr

    # -- record ------------------------------------------------------------
    def record(self) -> dict:
        """Return the round's entry in ``rounds_``.

        Returns
        -------
        dict
            ``round``, ``strategy``, ``n_new``, ``n_history``, ``epochs``,
            ``samples_forwarded``, ``samples_backpropagated``,
            ``train_seconds``, ``train_accuracy``, ``stopped_by``,
            ``start_accuracy``, ``n_held_out``, ``held_out_accuracy`` and
            ``best_epoch``.
        """
        return {
            "round": self.index,
            "strategy": self.strategy.name or type(self.strategy).__name__,
            "n_new": self.n_new,
            "n_history": self.n_history,
            "epochs": self.epochs,
            "samples_forwarded": self.samples_forwarded,
            "samples_backpropagated": self.samples_backpropagated,
            "train_seconds": self.seconds,
            "train_accuracy": self.train_accuracy,
            "stopped_by": self.stopped_by,
            "start_accuracy": None if math.isnan(self.start_accuracy) else self.start_accuracy,
            "n_held_out": 0 if self.stop_set is None else len(self.stop_set),
            "held_out_accuracy": None if math.isnan(self.held_out_accuracy) else self.held_out_accuracy,
            "best_epoch": self.best_epoch,
        }


class RoundStopped(Exception):
    """Raised when a callback ends the round's training between epochs (it is not a failure)."""


__all__ = [
    "EXCHANGE_WIDTH",
    "Processes",
    "Round",
    "RoundFailedOnAnotherProcess",
    "RoundStopped",
    "SingleProcess",
    "process_generator",
]
