"""``ContinualActiveClassifier``: a skorch classifier whose ``partial_fit`` is one CAL round.

The estimator is skorch's ``NeuralNetClassifier`` through its hooks
(``get_dataset``, ``get_iterator``, ``train_step_single``, ``infer``,
``notify``, callbacks) plus scikit-learn's ``fit``/``partial_fit`` API. The
round itself is a :class:`~skcal.round.Round`; how it trains is the
strategy's business (:mod:`skcal.replay`); stopping rules are callbacks
(:mod:`skcal.callbacks`). A round that fails in any way is undone whole with
an :class:`~skcal.snapshot.EstimatorSnapshot`.

Combined with skorch's ``AccelerateMixin`` (``class Net(AccelerateMixin,
ContinualActiveClassifier)``, or :class:`skcal.accelerate.AcceleratedContinualActiveClassifier`)
the rounds run data-parallel under Hugging Face Accelerate; the estimator
then asks :mod:`skcal.accelerate` for the accelerator-specific steps, and
never imports it otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.utils import check_random_state
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochScoring, EpochTimer, PassthroughScoring
from skorch.dataset import unpack_data
from skorch.utils import is_dataset

from .batching import Batching
from .callbacks import HeldOutRoundStop, QuietPrintLog, TrainAccuracyStop
from .checkpoint import CampaignState
from .history import LabelledHistory
from .initialisation import NetworkInitialisation
from .labels import LabelChanges
from .plasticity import Plasticity, make_plasticity
from .processes import SINGLE_PROCESS, AcceleratorProcesses, Processes
from .replay import ReplayStrategy, SeedRound, make_strategy
from .round import Round, RoundStopped
from .snapshot import EstimatorSnapshot
from .utils.data import ValidatedFeatures
from .utils.params import Interval, InvalidParameterError, Options, RealNotInt, StrOptions, check_parameters
from .utils.validation import (
    LabelledBatch,
    check_classes,
    check_feature_names,
    check_features,
    encode_labels,
    validate_data,
)

# Parameters this class adds to skorch's; set_params handles them itself
# because skorch would treat anything starting with the "replay" prefix as a
# component to re-initialise.
_OWN_PARAMS = frozenset(
    {
        "replay",
        "replay_size",
        "round_epochs",
        "train_accuracy_stop",
        "scale_lr",
        "reset_optimizer",
        "random_state",
        "grow_output",
        "history_device",
        "plasticity",
        "stop_split",
    }
)


# Round events after which the processes of a data-parallel round check in with each other.
_AGREED_EVENTS = frozenset({"on_train_begin", "on_epoch_begin", "on_epoch_end", "on_train_end"})


def _accuracy_on_encoded(net: ContinualActiveClassifier, X: Any, y: Any) -> float:
    """Accuracy against encoded labels, for skorch's validation scoring."""
    predicted = net.predict_proba(X).argmax(axis=1)
    return float(np.mean(predicted == np.asarray(y)))


class ContinualActiveClassifier(CampaignState, LabelChanges, NetworkInitialisation, Batching, NeuralNetClassifier):
    """A skorch classifier whose ``partial_fit`` performs one Continual Active Learning round.

    ``fit(X, y)`` trains from scratch on the seed set (Algorithm 1, lines 3-6)
    and starts the labelled history. Each ``partial_fit(X_new, y_new)`` is one
    active-learning round: the strategy chosen by ``replay`` trains the model
    on the newly labelled points (replaying points from the history, Algorithm
    2) or, for the AL baselines, on the whole labelled set; then the new points
    join the history with their round id and end-of-round logits.

    Everything skorch offers keeps working: ``module__*``, ``optimizer__*``,
    ``criterion__*``, callbacks, ``device``, ``history`` and ``predict_proba``.
    The module must return logits (unnormalised scores), one per class.
    skorch's ``AccelerateMixin`` composes with it for data-parallel rounds
    and mixed precision: see :mod:`skcal.accelerate`.

    Parameters
    ----------
    module : torch.nn.Module class or instance
        The network; it returns logits of shape ``(n_samples, n_classes)``.
        Every campaign (``fit``, or a first ``partial_fit`` on an
        uninitialised estimator) starts from fresh weights, drawn under
        ``random_state``: a class is instantiated, an instance has
        ``reset_parameters()`` called on each of its submodules (a warning
        names parameters no ``reset_parameters`` covers). To start from the
        weights an instance carries (a pretrained network), set
        ``warm_start=True``, or call ``initialize()``, load the weights and
        start with ``partial_fit``.
    *args
        Passed on to :class:`skorch.NeuralNetClassifier` (prefer keywords).
    criterion : torch criterion class, default=torch.nn.CrossEntropyLoss
        The supervised loss ``ℓ`` on logits; ``criterion__*`` sets its arguments.
    train_split : callable or None, default=None
        Skorch's internal validation split; off by default because AL label
        sets are small.
    replay : str, type or ReplayStrategy, default="er"
        How rounds after the first train: ``"retrain"`` (standard AL),
        ``"warmstart"`` (AL with warm start), ``"finetune"`` (new points only)
        or ``"er"`` (experience replay); see :data:`skcal.replay.REPLAY_STRATEGIES`.
        Hyperparameters of the strategy are set as ``replay__<name>``.
    replay_size : int or None, default=None
        ``m'``, the number of history points replayed with each minibatch of
        new points; None means the training batch size ``m``.
    round_epochs : int or "auto", default="auto"
        Epochs of a replay round; an epoch is one pass over the *new* points.
        ``"auto"`` decides each round's length on held-out evidence: a
        stratified stop set of ``stop_split`` of the round's new points is
        held out of its training and scored after every epoch, and the round
        ends once neither its accuracy nor its loss has improved for a few
        epochs, at most ``max_epochs``: the rule is the callback
        :class:`~skcal.callbacks.HeldOutRoundStop` (``callbacks__auto_stop__*``).
        The default, with ``replay="er"``, ``stop_split=0.1`` and no
        ``plasticity``, is what the defaults study chose
        (``docs/results/defaults``).
    train_accuracy_stop : float or None, default=None
        Stop a round that trains on the whole labelled set (the seed round,
        ``retrain`` and ``warmstart``) once an epoch's training accuracy
        reaches this value; ``max_epochs`` caps it. The reference protocol
        uses 0.99. Replay rounds always run ``round_epochs`` epochs. The
        rule is the callback :class:`~skcal.callbacks.TrainAccuracyStop`
        (``callbacks__accuracy_stop``); skorch's ``EarlyStopping`` composes
        with it.
    scale_lr : bool, default=False
        In replay rounds, multiply the learning rate by ``(m + m') / m``, as
        the reference code does for SGD.
    reset_optimizer : bool, default=True
        Build a fresh optimizer at the start of every round (the reference
        protocol); False keeps optimizer state such as momentum across rounds.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, batch order, replay draws and every
        other random choice of training, without touching torch's global
        random state. None uses fresh entropy and torch's global generator.
    grow_output : bool, default=False
        When ``partial_fit`` meets a label outside ``classes_``, add an output
        unit for it instead of raising. The module's last ``torch.nn.Linear``
        must emit one logit per class; its old weights are kept, new labels
        are appended to ``classes_`` (which is then no longer sorted), and
        stored logits get a low score for the new class.
    history_device : str, torch.device or None, default=None
        Where the labelled history (features, labels, stored logits) lives;
        None means the training device. ``"cpu"`` keeps it in host memory
        (pinned when training on CUDA) while training on a GPU, moving one
        replay batch per step: for histories larger than GPU memory.
    plasticity : None, str, type or Plasticity, default=None
        A remedy applied to the weights at the start of every round that
        keeps them (every round but the seed round and ``retrain``), so the
        network keeps generalising like a fresh one: ``"shrink_perturb"`` or
        ``"reset_output"`` (:data:`skcal.plasticity.PLASTICITY`), a
        :class:`~skcal.plasticity.Plasticity` subclass or instance, or None
        for none. Its hyperparameters are ``plasticity__<name>``.
    stop_split : float or None, default=0.1
        In rounds whose length is decided on held-out evidence
        (``round_epochs="auto"``), the share of each class's new points held
        out of the round's training as its stop set
        (:class:`~skcal.callbacks.HeldOutRoundStop`); they train from the
        next round on. None holds nothing out.
    **kwargs
        Any other :class:`skorch.NeuralNetClassifier` parameter (``lr``,
        ``max_epochs``, ``batch_size``, ``optimizer``, ``device``, ...).
        ``iterator_train__shuffle`` defaults to True. Notably ``classes``
        (array-like or None, default=None): the full label set, if known up
        front; labels may be strings or integers.

    Attributes
    ----------
    labelled_history_ : LabelledHistory
        Every labelled point with its encoded label, round id and stored logits.
    rounds_ : list of dict
        One compute record per round (:meth:`skcal.round.Round.record`):
        ``round``, ``strategy``, ``n_new``, ``n_history``, ``epochs``,
        ``samples_forwarded``, ``samples_backpropagated``, ``train_seconds``,
        ``train_accuracy``.
    round_ : Round or None
        The round being trained (:class:`skcal.round.Round`); None between rounds.
    feature_names_in_ : ndarray of str
        Column names of a pandas seed set; later rounds and predictions must
        have the same columns in the same order.
    classes_ : ndarray
        The labels, sorted; predictions are drawn from them.
    rng_ : numpy.random.Generator
        The generator behind every random choice of training.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skcal import ContinualActiveClassifier
    >>> X = np.random.RandomState(0).randn(60, 4).astype("float32")
    >>> y = (X[:, 0] > 0).astype(int)
    >>> net = ContinualActiveClassifier(torch.nn.Linear, module__in_features=4,
    ...     module__out_features=2, replay="er", max_epochs=5, verbose=0, random_state=0)
    >>> net = net.fit(X[:20], y[:20]).partial_fit(X[20:40], y[20:40])
    >>> [r["strategy"] for r in net.rounds_]
    ['seed', 'er']
    """

    prefixes_ = NeuralNetClassifier.prefixes_ + ["replay", "plasticity"]
    #: The rule of each parameter checked by :meth:`check_params` (scikit-learn's constraint language).
    _parameter_constraints: dict = {
        "replay_size": [Interval(Integral, 0, None, closed="left"), None],
        "round_epochs": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "train_accuracy_stop": [Interval(Real, 0, 1, closed="both"), None],
        "scale_lr": ["boolean"],
        "reset_optimizer": ["boolean"],
        "grow_output": ["boolean"],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "stop_split": [Interval(RealNotInt, 0, 1, closed="neither"), None],
    }
    _batch_size_rule: ClassVar[list] = [Interval(Integral, 1, None, closed="left"), Options(Integral, {-1})]
    _lr_rule: ClassVar[list] = [Interval(Real, 0, None, closed="left")]
    #: The round being trained; None between rounds.
    round_: Round | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Keep this class's training step in subclasses that put skorch's ``AccelerateMixin`` first.

        ``AccelerateMixin.train_step_single`` is a plain supervised step that
        does not call ``super()``, so ``class Net(AccelerateMixin,
        ContinualActiveClassifier)`` would train every round, replay rounds
        included, without replay; the step here routes autocast and backward
        through the accelerator itself (:meth:`autocast`, :meth:`backward`).
        The mixin's ``_initialize_accelerator`` is replaced too: it hands a
        criterion without parameters to the accelerator, which wraps it in
        ``DistributedDataParallel`` and fails on several CPU processes.
        A subclass that defines these methods itself keeps its own.
        """
        super().__init_subclass__(**kwargs)
        for name in ("train_step_single", "_initialize_accelerator"):
            owner = next((klass for klass in cls.__mro__ if name in vars(klass)), None)
            if owner is not None and owner.__module__ == "skorch.hf":
                setattr(cls, name, vars(ContinualActiveClassifier)[name])

    def _initialize_accelerator(self) -> ContinualActiveClassifier:
        """Prepare the components with the accelerator (with skorch's ``AccelerateMixin`` only).

        See :meth:`skcal.processes.AcceleratorProcesses.prepare_components`.
        """
        self.processes().prepare_components(self)
        return self

    def __init__(
        self,
        module: Any,
        *args: Any,
        criterion: Any = torch.nn.CrossEntropyLoss,
        train_split: Any = None,
        replay: Any = "er",
        replay_size: int | None = None,
        round_epochs: int | str = "auto",
        train_accuracy_stop: float | None = None,
        scale_lr: bool = False,
        reset_optimizer: bool = True,
        random_state: Any = None,
        grow_output: bool = False,
        history_device: Any = None,
        plasticity: Any = None,
        stop_split: float | None = 0.1,
        **kwargs: Any,
    ):
        kwargs.setdefault("iterator_train__shuffle", True)
        super().__init__(module, *args, criterion=criterion, train_split=train_split, **kwargs)
        self.replay = replay
        self.replay_size = replay_size
        self.round_epochs = round_epochs
        self.train_accuracy_stop = train_accuracy_stop
        self.scale_lr = scale_lr
        self.reset_optimizer = reset_optimizer
        self.random_state = random_state
        self.grow_output = grow_output
        self.history_device = history_device
        self.plasticity = plasticity
        self.stop_split = stop_split

    # -- skorch hooks ------------------------------------------------------
    @property
    def _default_callbacks(self) -> list:
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            ("valid_acc", EpochScoring(_accuracy_on_encoded, name="valid_acc", lower_is_better=False)),
            ("print_log", QuietPrintLog()),
            ("accuracy_stop", TrainAccuracyStop()),
            ("auto_stop", HeldOutRoundStop()),
        ]

    def __sklearn_tags__(self) -> Any:
        """Declare sparse input as supported."""
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        """Fitted once a seed round has trained (scikit-learn's ``check_is_fitted`` protocol)."""
        return getattr(self, "labelled_history_", None) is not None and len(self.labelled_history_) > 0

    @property
    def classes_(self) -> np.ndarray:
        """The sorted label set; predictions are drawn from it."""
        try:
            return self.fitted_classes_
        except AttributeError:
            raise AttributeError(
                f"{type(self).__name__} has no classes_ before fit or the first partial_fit."
            ) from None

    def set_params(self, **params: Any) -> ContinualActiveClassifier:
        """Set parameters, including ``replay__*`` strategy hyperparameters.

        Parameters
        ----------
        **params : dict
            Estimator parameters, as for any sklearn estimator.

        Returns
        -------
        self
            The estimator itself.
        """
        own = {key: params.pop(key) for key in list(params) if key.split("__")[0] in _OWN_PARAMS}
        super().set_params(**params)
        for key, value in params.items():
            # skorch applies optimizer__* to the current optimizer only; rounds build new ones from attributes
            if key.startswith("optimizer__") and "__param_groups__" not in key:
                setattr(self, key, value)
        for key, value in own.items():
            setattr(self, key, value)
            if "__" in key:
                self._params_to_validate.add(key)
        return self

    def infer(self, x: Any, **fit_params: Any) -> Any:
        """Run skorch's forward step, checking the module returns one logit per class.

        Parameters
        ----------
        x : torch.Tensor or dict of torch.Tensor
            A batch of inputs.
        **fit_params : dict
            Passed to the module's ``forward``.

        Returns
        -------
        torch.Tensor
            Logits of shape ``(n_samples, n_classes)``.

        Raises
        ------
        ValueError
            If the module cannot take the batch, or does not return one logit per class.
        """
        try:
            y_pred = super().infer(x, **fit_params)
        except RuntimeError as error:
            if not any(word in str(error) for word in ("shape", "size", "dtype", "dimension")):
                raise
            shapes = {k: tuple(v.shape) for k, v in x.items()} if isinstance(x, dict) else tuple(x.shape)
            dtypes = {k: v.dtype for k, v in x.items()} if isinstance(x, dict) else x.dtype
            raise ValueError(
                f"The module cannot take a batch of shape {shapes} and dtype {dtypes}: {error}. "
                "Check that the module's input size matches the data."
            ) from error
        n_classes = len(self.classes_)
        if isinstance(y_pred, torch.Tensor) and (y_pred.ndim != 2 or y_pred.shape[1] != n_classes):
            raise ValueError(
                f"The module returns outputs of shape {tuple(y_pred.shape)}, but there are "
                f"{n_classes} classes; it must return logits of shape (n_samples, {n_classes})."
            )
        return y_pred

    def train_step_single(self, batch: Any, **fit_params: Any) -> dict:
        """Compute one step's gradients, as the round's strategy defines it.

        Outside a round (plain skorch use) this is skorch's own step.

        Parameters
        ----------
        batch : tuple
            ``(X, y)`` from the training iterator.
        **fit_params : dict
            Passed to the module's ``forward``.

        Returns
        -------
        dict
            ``loss`` and ``y_pred``, as skorch expects.
        """
        if self.round_ is None:
            loss, y_pred, _ = self._supervised_loss(batch, **fit_params)
            self.backward(loss)
            return {"loss": loss, "y_pred": y_pred}
        if not self.module_.training:
            self._set_training(True)
        return self.round_.strategy.train_step(self, batch, **fit_params)

    def _supervised_loss(self, batch: Any, **fit_params: Any) -> tuple:
        """Run skorch's forward pass and loss on ``batch`` (under :meth:`autocast`); return ``(loss, y_pred, y)``."""
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        with self.autocast():
            y_pred = self.infer(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        return loss, y_pred, yi

    def supervised_step(self, batch: Any, **fit_params: Any) -> dict:
        """Run skorch's own training step on ``batch``, counted in the round.

        The step of rounds that train on the whole labelled set.

        Parameters
        ----------
        batch : tuple
            ``(X, y)`` from the training iterator.
        **fit_params : dict
            Passed to the module's ``forward``.

        Returns
        -------
        dict
            ``loss`` and ``y_pred``.
        """
        loss, y_pred, y = self._supervised_loss(batch, **fit_params)
        labels = y.to(y_pred.device)
        self.round_.count_step(loss, y_pred, labels, n_new=len(labels))
        self.backward(loss)
        return {"loss": loss, "y_pred": y_pred}

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate a training step's loss: ``loss.backward()``, or the accelerator's.

        Under an accelerator (skorch's ``AccelerateMixin``), every process of
        the round first confirms it reached this step without failing
        (:meth:`Round.checkpoint`), then ``accelerator.backward`` scales the
        loss for mixed precision and gradient accumulation while the
        distributed wrapper averages the gradients over the processes.

        Parameters
        ----------
        loss : torch.Tensor
            The step's scalar loss.
        """
        if self.round_ is not None:
            self.round_.checkpoint()
        self.processes().backward(loss)

    def autocast(self) -> AbstractContextManager:
        """Return the context a training step's forward pass and loss run in.

        Mixed precision under an accelerator (``accelerator.autocast()``,
        per its ``mixed_precision``); nothing otherwise.

        Returns
        -------
        contextlib.AbstractContextManager
            The context; a no-op without an accelerator.
        """
        return self.processes().autocast()

    def unwrapped_module(self) -> torch.nn.Module:
        """Return the network without the wrappers an accelerator adds (distributed, mixed precision).

        For computations that must stay on this process and out of the
        gradient synchronisation, such as MIR's virtual step; the same
        parameters as ``module_``.

        Returns
        -------
        torch.nn.Module
            The network itself.
        """
        return self.processes().unwrap(self.module_)

    def processes(self) -> Processes:
        """Return the processes that train this estimator's rounds together.

        Returns
        -------
        Processes
            :class:`~skcal.processes.SingleProcess`, or, with skorch's
            ``AccelerateMixin``, :class:`~skcal.processes.AcceleratorProcesses`
            over its accelerator's processes.
        """
        accelerator = self.__dict__.get("accelerator")
        return SINGLE_PROCESS if accelerator is None else AcceleratorProcesses(accelerator)

    def notify(self, method_name: str, **cb_kwargs: Any) -> None:
        """Call the callbacks; a ``KeyboardInterrupt`` from ``on_epoch_end`` ends the round.

        That is skorch's convention for a callback that stops training (its
        ``EarlyStopping`` does it); an interrupt anywhere else fails the round.
        When several processes train the round, they check in with each
        other after ``on_train_begin``, ``on_epoch_begin``, ``on_epoch_end``
        and ``on_train_end``: a round one of them stops ends on all, and one
        that failed on one of them fails on all (:meth:`Round.checkpoint`).

        Parameters
        ----------
        method_name : str
            The event, such as ``"on_epoch_end"``.
        **cb_kwargs : dict
            Passed to every callback's method.

        Raises
        ------
        RoundStopped
            When a callback ended the round (not a failure).
        """
        round_ = self.round_
        stop = False
        try:
            super().notify(method_name, **cb_kwargs)
        except KeyboardInterrupt:
            if round_ is None or method_name != "on_epoch_end":
                raise
            round_.stopped_by = round_.stopped_by or "callback"
            stop = True
        if round_ is not None and method_name in _AGREED_EVENTS:
            stop = round_.agree_to_stop(stop)
        if stop:
            raise RoundStopped

    def on_epoch_end(self, net: Any, dataset_train: Any = None, dataset_valid: Any = None, **kwargs: Any) -> None:
        """Record the epoch's training accuracy in skorch's history: all, new and replayed points.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator itself (skorch's callback convention).
        dataset_train : torch.utils.data.Dataset, optional
            The epoch's training data.
        dataset_valid : torch.utils.data.Dataset, optional
            Skorch's validation data, if any.
        **kwargs : dict
            Skorch's other event arguments.
        """
        super().on_epoch_end(net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs)
        round_ = self.round_
        if round_ is not None and round_.end_epoch():
            self.history.record("train_acc", round_.train_accuracy)
            self.history.record("train_acc_new", round_.new_accuracy)
            self.history.record("train_acc_replay", round_.replay_accuracy)

    def count_samples(self, forwarded: int = 0, backpropagated: int = 0) -> None:
        """Add work a strategy did beyond the training step to the round's record.

        Replay methods that score candidates (MIR, SDS2) count it so that
        ``rounds_`` has every sample that went through the module.

        Parameters
        ----------
        forwarded : int, default=0
            Samples passed forward.
        backpropagated : int, default=0
            Samples whose loss was backpropagated.
        """
        if self.round_ is not None:
            self.round_.count(forwarded, backpropagated)

    def training_batch_size(self) -> int:
        """Return ``m``, the number of points in a training minibatch (``-1``, one batch, is resolved in a round).

        Returns
        -------
        int
            The training batch size.
        """
        if self.round_ is not None:
            return self.round_.batch_size
        return self.get_params_for("iterator_train").get("batch_size", self.batch_size)

    # -- public API --------------------------------------------------------
    def check_params(self) -> None:
        """Check every parameter against its rule; ``fit`` and ``partial_fit`` call this before anything changes.

        The single-parameter rules are :attr:`_parameter_constraints`; the
        rules that span parameters are here: the training and prediction
        batch sizes (``batch_size`` and the ``iterator_*__batch_size`` that
        override it) and the learning rate (``optimizer__lr`` over ``lr``),
        and that ``device`` and ``history_device`` exist on this machine.

        Raises
        ------
        sklearn.utils._param_validation.InvalidParameterError
            A ``ValueError`` naming the parameter, its value and the accepted values.
        """
        check_parameters(self)
        batch_sizes = {"batch_size": self.batch_size}
        for prefix in ("iterator_train", "iterator_valid"):
            if (size := self.get_params_for(prefix).get("batch_size")) is not None:
                batch_sizes[f"{prefix}__batch_size"] = size
        check_parameters(self, dict.fromkeys(batch_sizes, self._batch_size_rule), params=batch_sizes)
        lr = self.get_params_for("optimizer").get("lr", self.lr)
        check_parameters(self, {"lr": self._lr_rule}, params={"lr": lr})
        for name in ("device", "history_device"):
            if getattr(self, name) is None:
                continue
            try:
                device = torch.device(getattr(self, name))
            except (RuntimeError, TypeError):
                device = None
            if device is None:
                raise InvalidParameterError(
                    f"{name}={getattr(self, name)!r} is not valid: it must be a torch device such as 'cpu' or "
                    "'cuda', or None."
                )
            if device.type == "cuda" and not torch.cuda.is_available():
                raise InvalidParameterError(
                    f"{name}={getattr(self, name)!r} is not valid: it must be a device this machine has "
                    "(this torch build or machine has no CUDA GPU)."
                )

    def fit(self, X: Any, y: Any, **fit_params: Any) -> ContinualActiveClassifier:
        """Train from scratch on ``(X, y)``, the seed round; the history becomes exactly ``(X, y)``.

        The module is re-initialised unless ``warm_start=True``, as in skorch.
        If the round fails, the estimator is left exactly as it was.

        Parameters
        ----------
        X : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
            The seed set's features.
        y : array-like of shape (n_samples,)
            Its labels (strings or integers).
        **fit_params : dict
            Passed to the module's ``forward``.

        Returns
        -------
        self
            The estimator, trained on the seed set.
        """
        self.check_params()
        classes = check_classes(self.classes) if self.classes is not None else None
        batch = validate_data(self, X, y, reset=True)
        self._seed_round(batch, classes, reinitialize=not (self.warm_start and self.initialized_), **fit_params)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None, **fit_params: Any) -> ContinualActiveClassifier:
        """Run one active-learning round on newly labelled points.

        Before any training this is the seed round (like :meth:`fit`, but an
        already initialised module, e.g. with loaded weights, is kept).
        Afterwards the ``replay`` strategy trains on ``(X, y)`` and the
        history, then ``(X, y)`` join the history. Parameters and input are
        checked before anything changes; if the round fails (an exception,
        a NaN loss, an interrupt), everything is restored as it was: weights,
        optimizer state, learning rates, ``rng_``, the history, ``rounds_``,
        skorch's training log and ``classes_``, so retrying the round gives
        the result an uninterrupted run would have.

        Parameters
        ----------
        X : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
            The newly labelled points, with the feature shape of earlier rounds.
        y : array-like of shape (n_samples,)
            Their labels; each must be one of ``classes_``.
        classes : array-like, optional
            The full label set; only on the first call, as in scikit-learn.
        **fit_params : dict
            Passed to the module's ``forward``.

        Returns
        -------
        self
            The estimator, trained for one more round.
        """
        self.check_params()
        if not self.__sklearn_is_fitted__():
            declared = classes if classes is not None else self.classes
            declared = check_classes(declared) if declared is not None else None
            self._seed_round(validate_data(self, X, y, reset=True), declared, not self.initialized_, **fit_params)
            return self
        if classes is not None and not np.array_equal(check_classes(classes), self.classes_):
            raise ValueError(
                f"classes={list(classes)!r} differs from the classes fixed by the first call, {self.classes_.tolist()}."
            )
        batch = validate_data(self, X, y, reset=False)
        raw_labels = batch.labels
        strategy = make_strategy(self.replay, self.get_params_for("replay"))
        plasticity = make_plasticity(self.plasticity, self.get_params_for("plasticity"))
        new_labels = self._unseen_labels(raw_labels) if self.grow_output else []
        if not len(new_labels):
            labels = encode_labels(raw_labels, self.classes_)
        with self._rolled_back_on_failure():
            if len(new_labels):
                self._grow_output_layer(new_labels)
                labels = encode_labels(raw_labels, self.classes_)
            self._train_round(strategy, batch.features, labels, plasticity, **fit_params)
        self._notify_round_end()
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return class probabilities for ``X``, columns in the order of ``classes_``.

        Parameters
        ----------
        X : array-like, torch.Tensor, scipy.sparse matrix, dict of arrays or Dataset
            The points to classify, with the training data's feature shape.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Skorch's probabilities: the softmax of the logits under cross-entropy.

        Raises
        ------
        ValueError, TypeError
            For NaN or infinity, a dtype skcal cannot use, or a feature shape
            (or pandas columns) different from the training data's.
        """
        if self.__sklearn_is_fitted__() and not is_dataset(X):
            history = self.labelled_history_
            check_feature_names(X, getattr(self, "feature_names_in_", None))
            X = check_features(X, history.feature_shape, expected_sparse=None)
        return super().predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        """Return predicted labels (from ``classes_``) for ``X``.

        Parameters
        ----------
        X : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
            The points to classify.

        Returns
        -------
        ndarray of shape (n_samples,)
            The most probable class of each point.
        """
        best = self.predict_proba(X).argmax(axis=1)
        return self.classes_[best]

    # -- rounds ------------------------------------------------------------
    @contextmanager
    def _rolled_back_on_failure(self) -> Iterator[None]:
        """Undo everything the block changes if it raises; the original exception propagates."""
        snapshot = EstimatorSnapshot(self)
        try:
            yield
        except BaseException as error:
            try:
                snapshot.restore(self)
            except Exception as restore_error:  # never let the rollback hide the original error
                if hasattr(error, "add_note"):
                    error.add_note(f"Restoring the estimator after this error failed too: {restore_error!r}")
            raise

    def _seed_round(
        self, batch: LabelledBatch, classes: np.ndarray | None, reinitialize: bool, **fit_params: Any
    ) -> None:
        labels, shape = batch.labels, batch.features.shape
        if classes is None:
            try:
                classes = np.unique(labels)
            except TypeError:
                raise ValueError("y mixes label types that cannot be sorted, e.g. strings and numbers.") from None
        encoded = encode_labels(labels, classes)
        make_strategy(self.replay, self.get_params_for("replay"))  # fail now on a bad replay= or replay__*
        make_plasticity(self.plasticity, self.get_params_for("plasticity"))

        with self._rolled_back_on_failure():  # a seed round that fails leaves the previous campaign
            self.fitted_classes_ = classes
            for attribute in ("n_features_in_", "feature_names_in_"):
                self.__dict__.pop(attribute, None)
            if isinstance(shape, tuple) and len(shape) == 1:
                self.n_features_in_ = shape[0]
            if batch.feature_names is not None:
                self.feature_names_in_ = batch.feature_names
            seed = None if self.random_state is None else check_random_state(self.random_state).randint(2**31 - 1)
            self.rng_ = np.random.default_rng(self.processes().shared_seed(seed))  # every process draws alike
            self.labelled_history_ = LabelledHistory(self._history_device())
            self.rounds_ = []
            self._train_round(SeedRound(reinitialize=reinitialize), batch.features, encoded, **fit_params)
        self._notify_round_end()

    def _notify_round_end(self) -> None:
        """Give the committed round's record to every callback that defines ``on_round_end(net, record)``.

        The round is complete (its points committed, its record in
        ``rounds_`` with its training time) and stays so if a callback
        raises. Callbacks without the method are not called: the event is
        skcal's, not skorch's.
        """
        record = dict(self.rounds_[-1])
        for _, callback in self.callbacks_:
            on_round_end = getattr(callback, "on_round_end", None)
            if callable(on_round_end):
                on_round_end(self, record=record)

    def _training_device(self) -> torch.device:
        if self.device is None:
            return self.processes().device() or torch.device("cpu")
        return torch.device(self.device)

    def _history_device(self) -> torch.device:
        return self._training_device() if self.history_device is None else torch.device(self.history_device)

    def _train_round(
        self,
        strategy: ReplayStrategy,
        X: ValidatedFeatures,
        y: torch.Tensor,
        plasticity: Plasticity | None = None,
        **fit_params: Any,
    ) -> None:
        """Train one round with ``strategy``, then commit the new points and the round's record.

        With an accelerator the processes train the round together: each
        takes its share of every batch, the module, criterion and the
        optimizer the strategy (re)builds are prepared by the accelerator,
        and the new points' logits and the round's counts are gathered, so
        that every process commits the same history and record. A failure
        on one process fails the round on all (:meth:`Round.checkpoint`).
        ``plasticity`` renews the weights before training, in every round
        whose strategy keeps them.
        """
        history, device = self.labelled_history_, self._training_device()
        if history.device != self._history_device():
            history.to(self._history_device(), pin=device.type == "cuda")
        n_history = len(history)
        history.stage(X, y)
        X_train, y_train = strategy.training_data(history)
        batch_size = self.training_batch_size()
        batch_size = len(y_train) if batch_size == -1 else batch_size
        processes = self.processes()
        round_ = Round(
            index=len(self.rounds_),
            strategy=strategy,
            n_new=X.n_rows,
            n_history=n_history,
            batch_size=processes.local_size(batch_size),
            replay_size=processes.local_size(batch_size if self.replay_size is None else int(self.replay_size)),
            seed=int(self.rng_.integers(2**62)),
            stop_accuracy=strategy.stop_accuracy(self),
            auto_epochs=strategy.stops_automatically(self),
            stop_split=self.stop_split if strategy.stops_automatically(self) else None,
            device=device,
            processes=processes,
        )
        try:
            with self._in_round(round_):
                round_.start_clock()
                round_.agree_on_inputs(y, len(y_train))
                processes.release_round(self)  # strategies rebuild and reset the bare module and optimizer
                strategy.prepare_model(self)
                if plasticity is not None and strategy.keeps_weights:
                    with torch.random.fork_rng(devices=[]):  # drawn alike on every process, apart from training's draws
                        torch.manual_seed(round_.seed + 1)
                        plasticity.renew(self)
                round_.checkpoint()
                processes.prepare_round(self)
                self._check_criterion()
                round_.scale_learning_rate(self.optimizer_, strategy.learning_rate_factor(self))
                try:
                    strategy.begin_round(self, history, round_.n_new)
                    self.notify("on_train_begin", X=X_train, y=y_train)
                    try:
                        self.fit_loop(X_train, y_train, epochs=strategy.n_epochs(self), **fit_params)
                    except RoundStopped:
                        pass
                    self.notify("on_train_end", X=X_train, y=y_train)
                    logits = self._logits(history.staged_X, device=history.device, **fit_params)
                    round_.finish(device)
                finally:
                    round_.restore_learning_rate(self.optimizer_)
        except BaseException as error:
            round_.report_failure(error)
            raise
        history.commit(logits, round_.index, deferred=round_.held_out)
        strategy.update_memory(history, round_.rng)
        self.rounds_.append(round_.record())

    @contextmanager
    def _in_round(self, round_: Round) -> Iterator[Round]:
        """Make ``round_`` current and, with ``random_state``, run it on a private torch RNG."""
        device = self._training_device()
        cuda = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda, enabled=self.random_state is not None):
            if self.random_state is not None:
                torch.manual_seed(round_.seed)
            self.round_ = round_
            try:
                yield round_
            finally:
                self.round_ = None

    def _logits(self, X: Any, device: Any, **fit_params: Any) -> torch.Tensor:
        """Compute module outputs for ``X`` in eval mode, batched like prediction.

        The same as skorch's ``forward`` without its per-batch checks, which
        cost more than the forward pass of a small model. Under an
        accelerator each process computes its share of the batches and
        every process gets all the outputs, in order. During a round the
        samples are counted as forwarded.
        """
        self._set_training(False)
        processes, round_ = self.processes(), self.round_
        outputs = []
        with torch.no_grad():
            for Xb, _ in self.get_iterator(self.get_dataset(X), training=False):
                output = self.infer(Xb, **fit_params)
                if round_ is not None:
                    round_.count(forwarded=len(output))
                    round_.checkpoint()  # a process whose forward failed reports it here, not in the gather
                outputs.append(processes.gather(output).to(device))
        return torch.cat(outputs)

    def _check_criterion(self) -> None:
        if isinstance(self.criterion_, torch.nn.NLLLoss):
            raise ValueError(
                "ContinualActiveClassifier needs a module that returns logits and a criterion on "
                "logits (CrossEntropyLoss); NLLLoss on probabilities is not supported."
            )
