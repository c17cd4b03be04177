"""The contract between a round-training strategy and the estimator.

A strategy is a small, stateless-by-configuration object (an sklearn
``BaseEstimator``, so its hyperparameters are reachable as ``replay__<name>``
on :class:`~skcal.ContinualActiveClassifier`). For every round the estimator
builds a fresh copy and asks it how the round trains:

- :meth:`ReplayStrategy.prepare_model`: what to reset before training (a
  fresh optimizer; fresh weights for standard AL);
- :meth:`ReplayStrategy.training_data`, :meth:`ReplayStrategy.n_epochs`,
  :meth:`ReplayStrategy.stop_accuracy`, :meth:`ReplayStrategy.learning_rate_factor`;
- :meth:`ReplayStrategy.train_step`, for each minibatch ``B_current``. A
  replay strategy's step is Algorithm 2 of the paper: :meth:`select_replay`
  picks ``B_replay`` from the history, the module runs one forward pass over
  both batches, and :meth:`loss` turns the outputs into the loss that is
  backpropagated: ``L_c`` (equation (1)) when nothing was replayed, else
  :meth:`loss_with_replay`, where the methods differ.

:class:`LabelledSetTraining` is the other family: the seed round and the
standard-AL baselines, which train on the whole labelled set with skorch's
own training step.

What a strategy may use of the estimator is written down in :class:`Trainer`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from numbers import Integral
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import torch
from sklearn.base import BaseEstimator
from skorch.dataset import unpack_data

from ..history import LabelledHistory, ReplayBatch
from ..memory import RETENTION, SAMPLING
from ..utils.data import concat_rows, move_to
from ..utils.params import Interval, StrOptions, check_parameters

if TYPE_CHECKING:
    from ..round import Round


class Trainer(Protocol):
    """What a strategy may use of the estimator (a :class:`~skcal.ContinualActiveClassifier`).

    Attributes
    ----------
    module_ : torch.nn.Module
        The network being trained.
    optimizer_ : torch.optim.Optimizer
        Its optimizer.
    device : str, torch.device or None
        The training device parameter (None under an accelerator: use
        ``round_.device``, where the round trains).
    labelled_history_ : LabelledHistory
        The labelled history; the round's new points are staged in it.
    round_ : Round
        The round in progress: its device, random generators, replay size and accounting.
    batch_size, max_epochs, round_epochs, train_accuracy_stop, scale_lr, reset_optimizer
        The estimator's parameters of the same names.
    """

    module_: torch.nn.Module
    optimizer_: torch.optim.Optimizer
    device: Any
    labelled_history_: LabelledHistory
    round_: Round
    max_epochs: int
    round_epochs: int | str
    train_accuracy_stop: float | None
    scale_lr: bool
    reset_optimizer: bool

    def get_loss(self, y_pred: torch.Tensor, y_true: torch.Tensor, X: Any = None, training: bool = False) -> Any:
        """Compute the criterion (skorch's ``get_loss``), the user's criterion and its weights included.

        Parameters
        ----------
        y_pred : torch.Tensor
            Module outputs (logits).
        y_true : torch.Tensor
            Encoded labels.
        X : object, optional
            The inputs, for criteria that use them.
        training : bool, default=False
            Whether the loss is for a training step.

        Returns
        -------
        torch.Tensor
            The loss, a scalar unless the criterion reduces otherwise.
        """

    def infer(self, x: Any, **fit_params: Any) -> torch.Tensor:
        """Run the module's forward pass (skorch's ``infer``).

        Parameters
        ----------
        x : torch.Tensor or dict of torch.Tensor
            A batch of inputs, on the training device.
        **fit_params : dict
            Passed to the module's ``forward``.

        Returns
        -------
        torch.Tensor
            The module's outputs (logits).
        """

    def supervised_step(self, batch: Any, **fit_params: Any) -> dict:
        """Run skorch's own training step on ``batch``, counted in the round.

        Parameters
        ----------
        batch : tuple
            ``(X, y)`` from the training iterator.
        **fit_params : dict
            Passed to the module's ``forward``.

        Returns
        -------
        dict
            ``loss`` and ``y_pred``, as skorch's ``train_step_single`` returns them.
        """

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate a step's loss (through the accelerator, if there is one).

        Parameters
        ----------
        loss : torch.Tensor
            The scalar loss of the step.
        """

    def autocast(self) -> Any:
        """Return the context a step's forward pass and loss run in (mixed precision under an accelerator).

        Returns
        -------
        contextlib.AbstractContextManager
            A context manager; a no-op without an accelerator.
        """

    def unwrapped_module(self) -> torch.nn.Module:
        """Return ``module_`` without an accelerator's wrappers, for computations local to this process.

        Returns
        -------
        torch.nn.Module
            The network itself.
        """

    def initialize_optimizer(self) -> Any:
        """Build a fresh optimizer (skorch's ``initialize_optimizer``).

        Returns
        -------
        Trainer
            The estimator itself.
        """

    def reinitialize_module(self) -> None:
        """Draw fresh random weights, and build a fresh criterion and optimizer."""

    def count_samples(self, forwarded: int = 0, backpropagated: int = 0) -> None:
        """Add work done outside the training step (candidate scoring) to the round's record.

        Parameters
        ----------
        forwarded : int, default=0
            Samples passed forward.
        backpropagated : int, default=0
            Samples whose loss was backpropagated.
        """

    def training_batch_size(self) -> int:
        """Return ``m``, the size of a minibatch of new points.

        Returns
        -------
        int
            The per-process training batch size.
        """


@dataclass(frozen=True)
class ReplayDraw:
    """One minibatch's request for a replay batch ``B_replay``.

    Built by :meth:`ReplayStrategy.train_step` for every minibatch and
    passed to :meth:`ReplayStrategy.select_replay`.

    Attributes
    ----------
    X_current, y_current : torch.Tensor or dict, torch.Tensor
        The minibatch of newly labelled points ``B_current``, on the training device.
    history : LabelledHistory
        The committed history to draw from.
    size : int
        The replay size ``m'``.
    rng : numpy.random.Generator
        This process's replay generator (``round_.replay_rng``); every random choice uses it.
    device : torch.device or None
        Where replayed points go (the training device; the history may live elsewhere).
    """

    X_current: Any
    y_current: torch.Tensor
    history: LabelledHistory
    size: int
    rng: np.random.Generator
    device: Any = None


class ReplayStrategy(BaseEstimator):
    """Base class of a round's training strategy: training on the new points, with replay.

    Subclasses set :attr:`name` and :attr:`display_name` and, for replay
    methods, implement :meth:`loss_with_replay`; they may override
    :meth:`select_replay` (MIR, SDS2) and :meth:`begin_round` (per-round
    quantities such as SD's ``lambda_t``). Their ``__init__`` takes the
    replay-memory parameters below after their own, and they declare their
    own parameters' rules by extending ``_parameter_constraints``
    (scikit-learn's constraint language, :mod:`skcal.utils.params`).

    Parameters
    ----------
    sampling : {"uniform", "class_balanced"}, default="uniform"
        How replay batches (and MIR/SDS2 candidates) are drawn: uniformly, as
        the paper does, or with an equal share per class
        (:func:`skcal.memory.balanced_draw`), for imbalanced data.
    memory_size : int or None, default=None
        Bound the replay memory to this many points (every labelled point
        still counts as labelled and stays in the history; only replay draws
        from the retained subset). None keeps every point, the paper's protocol.
    retention : {"reservoir", "class_balanced"}, default="reservoir"
        Which points a bounded memory keeps (:mod:`skcal.memory`).

    Attributes
    ----------
    name : str
        The alias accepted by ``replay=``, recorded in ``rounds_``.
    display_name : str
        The label of tables and plots (the paper's names).
    replays : bool
        Join each minibatch of new points with a replay batch.
    keeps_weights : bool
        The round starts from the previous round's weights (then the
        estimator's ``plasticity`` remedy applies), not from fresh ones.
    """

    name: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    replays: ClassVar[bool] = True
    keeps_weights: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict] = {
        "sampling": [StrOptions(set(SAMPLING))],
        "memory_size": [Interval(Integral, 1, None, closed="left"), None],
        "retention": [StrOptions(set(RETENTION))],
    }
    # defaults for user strategies whose __init__ does not take the memory parameters
    sampling: str = "uniform"
    memory_size: int | None = None
    retention: str = "reservoir"

    def __init__(self, sampling: str = "uniform", memory_size: int | None = None, retention: str = "reservoir"):
        self.sampling = sampling
        self.memory_size = memory_size
        self.retention = retention

    def validate(self) -> None:
        """Check the hyperparameters against ``_parameter_constraints``.

        Called when the strategy is built, before a round changes anything. A
        subclass with rules between its parameters extends this method.

        Raises
        ------
        InvalidParameterError
            A ``ValueError`` naming the bad ``replay__<name>``, its value and
            what it accepts.
        """
        check_parameters(self, prefix="replay__", named=True)

    # -- how the round trains ----------------------------------------------
    def prepare_model(self, net: Trainer) -> None:
        """Reset what the round starts without: a fresh optimizer if ``reset_optimizer``.

        Called first, before the round trains (and before a ``plasticity``
        remedy changes the kept weights).

        Parameters
        ----------
        net : Trainer
            The estimator being trained.
        """
        if net.reset_optimizer:
            net.initialize_optimizer()

    def training_data(self, history: LabelledHistory) -> tuple[Any, torch.Tensor]:
        """Return the points an epoch passes over: the round's new points ``D_t``.

        With the points the previous round held out of its training as its
        stop set (:attr:`LabelledHistory.deferred`), after them: they train
        here, one round late.

        Parameters
        ----------
        history : LabelledHistory
            The history, the round's new points staged in it.

        Returns
        -------
        X : torch.Tensor, dict of torch.Tensor or scipy.sparse.csr_matrix
            The features an epoch passes over.
        y : torch.Tensor
            Their encoded labels.
        """
        return history.new_points()

    def n_epochs(self, net: Trainer) -> int:
        """Return the epochs of the round: ``round_epochs``, or at most ``max_epochs`` when it is ``"auto"``.

        Parameters
        ----------
        net : Trainer
            The estimator being trained.

        Returns
        -------
        int
            The most epochs the round trains.
        """
        return net.max_epochs if net.round_epochs == "auto" else net.round_epochs

    def stops_automatically(self, net: Trainer) -> bool:
        """Say whether :class:`~skcal.callbacks.AutoRoundStop` decides the round's length (``round_epochs="auto"``).

        Parameters
        ----------
        net : Trainer
            The estimator being trained.

        Returns
        -------
        bool
            True when ``round_epochs="auto"``.
        """
        return net.round_epochs == "auto"

    def stop_accuracy(self, net: Trainer) -> float | None:
        """Return the training accuracy that ends the round early: None, replay rounds run every epoch.

        Parameters
        ----------
        net : Trainer
            The estimator being trained.

        Returns
        -------
        float or None
            An epoch's training accuracy at which the round stops, or None.
        """
        return None

    def learning_rate_factor(self, net: Trainer) -> float:
        """Return ``(m + m') / m`` with ``scale_lr`` (the reference code's rule for SGD), else 1.

        The optimizer's learning rates are multiplied by it for the round,
        and put back after.

        Parameters
        ----------
        net : Trainer
            The estimator being trained.

        Returns
        -------
        float
            The factor.
        """
        if not (net.scale_lr and self.replays):
            return 1.0
        m = net.training_batch_size()
        return (m + net.round_.replay_size) / m

    def begin_round(self, net: Trainer, history: LabelledHistory, n_new: int) -> None:
        """Prepare per-round quantities; called once before the round trains.

        Parameters
        ----------
        net : Trainer
            The estimator being trained.
        history : LabelledHistory
            The committed history ``D_{1:t-1}``.
        n_new : int
            Number of newly labelled points ``|D_t|``.
        """

    def update_memory(self, history: LabelledHistory, rng: np.random.Generator) -> None:
        """After the round's points are committed, bound the replay memory if ``memory_size`` is set.

        Parameters
        ----------
        history : LabelledHistory
            The history, the round's points committed.
        rng : numpy.random.Generator
            The round's generator for the memory's random choices.
        """
        history.retain(self.memory_size, self.retention, rng)

    def train_step(self, net: Trainer, batch: Any, **fit_params: Any) -> dict:
        """One gradient computation on ``B_current ∪ B_replay`` (Algorithm 2, lines 4-6).

        Parameters
        ----------
        net : Trainer
            The estimator being trained.
        batch : tuple
            ``(X_current, y_current)`` from the training iterator.
        **fit_params : dict
            Passed to the module's ``forward``.

        Returns
        -------
        dict
            ``loss`` and ``y_pred`` (outputs on the current batch), as skorch expects.

        Notes
        -----
        The joint forward pass and the loss run in ``net.autocast()`` and the
        loss is backpropagated with ``net.backward``: under an accelerator,
        that is mixed precision and ``accelerator.backward``. Each process
        draws its replay batch with its own generator, ``round_.replay_rng``.
        """
        round_, history = net.round_, net.labelled_history_
        X_current, y_current = unpack_data(batch)
        X_current = move_to(X_current, round_.device)
        y_current = y_current.to(round_.device)
        replay = None
        if self.replays and round_.replay_size > 0 and len(history) > 0:
            draw = ReplayDraw(X_current, y_current, history, round_.replay_size, round_.replay_rng, y_current.device)
            replay = history.batch(self.select_replay(net, draw), device=draw.device)
        inputs = X_current if replay is None else concat_rows(X_current, replay.X)
        with net.autocast():
            outputs = net.infer(inputs, **fit_params)
            y_pred = outputs[: len(y_current)]
            replay_pred = None if replay is None else outputs[len(y_current) :]
            loss = self.loss(net, y_pred, y_current, replay_pred, replay)
        labels = y_current if replay is None else torch.cat([y_current, replay.y])
        round_.count_step(loss, outputs, labels, n_new=len(y_current))
        net.backward(loss)
        return {"loss": loss, "y_pred": y_pred}

    # -- replay --------------------------------------------------------------
    def select_replay(self, net: Trainer, draw: ReplayDraw) -> torch.Tensor:
        """Choose the replay batch ``B_replay`` for one minibatch of new points.

        The default draws ``draw.size`` points uniformly without replacement,
        as ER does (section 3.3).

        Parameters
        ----------
        net : Trainer
            The estimator being trained (for methods that score candidates).
        draw : ReplayDraw
            The current minibatch, the history, the replay size and the round's generator.

        Returns
        -------
        torch.Tensor
            History positions of the replay batch.
        """
        return draw.history.sample(draw.size, draw.rng, balanced=self.sampling == "class_balanced")

    def loss(
        self,
        net: Trainer,
        y_pred: torch.Tensor,
        y_true: torch.Tensor,
        replay_pred: torch.Tensor | None,
        replay: ReplayBatch | None,
    ) -> torch.Tensor:
        """Compute one step's loss from the outputs on current and replayed points.

        Parameters
        ----------
        net : Trainer
            The estimator; ``net.get_loss`` is the criterion (cross-entropy by default).
        y_pred : torch.Tensor
            Module outputs (logits) on the current minibatch, ``f(x)``.
        y_true : torch.Tensor
            Encoded labels of the current minibatch.
        replay_pred : torch.Tensor or None
            Module outputs on the replay batch, ``f(x')``; None if nothing is replayed.
        replay : ReplayBatch or None
            The replayed points with their labels and stored logits ``z'``.

        Returns
        -------
        torch.Tensor
            ``L_c`` (equation (1)) without replay, else :meth:`loss_with_replay`.
        """
        current = net.get_loss(y_pred, y_true, training=True)
        if replay is None:
            return current
        return self.loss_with_replay(net, current, replay_pred, replay)

    def loss_with_replay(
        self, net: Trainer, current: torch.Tensor, replay_pred: torch.Tensor, replay: ReplayBatch
    ) -> torch.Tensor:
        """Combine the current batch's loss ``L_c`` with the replayed points.

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
        raise NotImplementedError(f"{type(self).__name__} does not define a replay loss.")

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        return super().__repr__(N_CHAR_MAX)


class LabelledSetTraining(ReplayStrategy):
    """Base of the rounds that train on the whole labelled set ``D_{1:t}``, as standard AL does.

    Each epoch passes over every labelled point with skorch's own training
    step, for up to ``max_epochs`` epochs or until an epoch's training
    accuracy reaches ``train_accuracy_stop``. Nothing is replayed.
    """

    replays = False
    _parameter_constraints: ClassVar[dict] = {}  # no replay memory to configure

    def __init__(self):
        pass

    def update_memory(self, history: LabelledHistory, rng: np.random.Generator) -> None:
        """Leave the replay memory as it is: its policy belongs to the replay rounds.

        Parameters
        ----------
        history : LabelledHistory
            The history, the round's points committed.
        rng : numpy.random.Generator
            Unused.
        """

    def training_data(self, history: LabelledHistory) -> tuple[Any, torch.Tensor]:
        """Return every labelled point: the history and the round's new points.

        Parameters
        ----------
        history : LabelledHistory
            The history, the round's new points staged in it.

        Returns
        -------
        X : torch.Tensor, dict of torch.Tensor or scipy.sparse.csr_matrix
            Every labelled point's features.
        y : torch.Tensor
            Their encoded labels.
        """
        return history.labelled_X, history.labelled_y

    def n_epochs(self, net: Trainer) -> int:
        """Return ``max_epochs``.

        Parameters
        ----------
        net : Trainer
            The estimator being trained.

        Returns
        -------
        int
            The most epochs the round trains.
        """
        return net.max_epochs

    def stop_accuracy(self, net: Trainer) -> float | None:
        """Return ``train_accuracy_stop``.

        Parameters
        ----------
        net : Trainer
            The estimator being trained.

        Returns
        -------
        float or None
            The training accuracy at which the round stops, or None.
        """
        return net.train_accuracy_stop

    def stops_automatically(self, net: Trainer) -> bool:
        """Say no: these rounds stop on ``train_accuracy_stop`` or ``max_epochs``.

        Parameters
        ----------
        net : Trainer
            The estimator being trained.

        Returns
        -------
        bool
            False.
        """
        return False

    def train_step(self, net: Trainer, batch: Any, **fit_params: Any) -> dict:
        """Run skorch's own training step.

        Parameters
        ----------
        net : Trainer
            The estimator being trained.
        batch : tuple
            ``(X, y)`` from the training iterator.
        **fit_params : dict
            Passed to the module's ``forward``.

        Returns
        -------
        dict
            ``loss`` and ``y_pred``, as skorch expects.
        """
        return net.supervised_step(batch, **fit_params)


class CandidateReplay(ReplayStrategy):
    """Base of methods that score random history candidates and replay the best.

    Each minibatch draws ``max(n_candidates, m')`` history points at random
    (the paper's subsampling "for speed"), and :meth:`choose` picks ``m'``
    of them. Subclasses define ``n_candidates`` and :meth:`choose`.
    """

    n_candidates: int
    _parameter_constraints: ClassVar[dict] = {
        **ReplayStrategy._parameter_constraints,
        "n_candidates": [Interval(Integral, 1, None, closed="left")],
    }

    def begin_round(self, net: Trainer, history: LabelledHistory, n_new: int) -> None:
        """Warn when ``n_candidates`` leaves nothing to choose: the method would replay at random, as ER.

        Parameters
        ----------
        net : Trainer
            The estimator being trained.
        history : LabelledHistory
            The committed history ``D_{1:t-1}``.
        n_new : int
            Number of newly labelled points ``|D_t|``.
        """
        super().begin_round(net, history, n_new)
        if int(self.n_candidates) <= net.round_.replay_size < len(history):
            warnings.warn(
                f"replay__n_candidates={self.n_candidates} is not larger than the replay size "
                f"{net.round_.replay_size}: {type(self).__name__} replays random points, like ER. "
                "Raise n_candidates (the paper uses 100-270 for m' up to 128).",
                UserWarning,
                stacklevel=2,
            )

    def select_replay(self, net: Trainer, draw: ReplayDraw) -> torch.Tensor:
        """Draw the candidates and return the ``draw.size`` that :meth:`choose` picks.

        Parameters
        ----------
        net : Trainer
            The estimator being trained.
        draw : ReplayDraw
            The current minibatch, the history, the replay size and the round's generator.

        Returns
        -------
        torch.Tensor
            History positions of the replay batch.
        """
        balanced = self.sampling == "class_balanced"
        candidates = draw.history.sample(max(int(self.n_candidates), draw.size), draw.rng, balanced=balanced)
        if len(candidates) <= draw.size:
            return candidates
        return candidates[self.choose(net, draw, draw.history.batch(candidates, device=draw.device))]

    def choose(self, net: Trainer, draw: ReplayDraw, candidates: ReplayBatch) -> torch.Tensor:
        """Return positions, within ``candidates``, of the ``draw.size`` points to replay.

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
        raise NotImplementedError
