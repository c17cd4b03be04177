"""``ContinualActiveClassifier``: a skorch classifier whose ``partial_fit`` is one CAL round."""

from __future__ import annotations

import copy
import inspect
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochScoring, EpochTimer, PassthroughScoring, PrintLog
from skorch.dataset import Dataset, unpack_data
from skorch.utils import is_dataset
from torch.utils.data import DataLoader

from ._data import (
    BatchedDataset,
    BatchIterator,
    collate_batch,
    concat_rows,
    feature_shape,
    is_batched_dataset,
    move_to,
    n_rows,
)
from ._validation import check_classes, check_features, check_labels, encode_labels
from .embedding import last_linear_layer
from .history import LabelledHistory
from .replay import ReplayStrategy, make_strategy

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
    }
)


class _RoundConverged(Exception):
    """Raised between epochs when the round reached ``train_accuracy_stop``."""


class _SeedRound(ReplayStrategy):
    """The first round (Algorithm 1, lines 3-6): train on the seed set."""

    name = "seed"
    trains_on_labelled_set = True
    replays = False


@dataclass
class _RoundState:
    """Book-keeping of the round in progress."""

    index: int
    strategy: ReplayStrategy
    replay_size: int
    rng: np.random.Generator
    shuffle_generator: torch.Generator
    stop_accuracy: float | None
    epochs: int = 0
    samples_forwarded: int = 0
    samples_backpropagated: int = 0
    # Predictions and labels of the epoch, compared once at its end so a
    # training step adds a single argmax.
    epoch_predictions: list = field(default_factory=list)
    epoch_labels: list = field(default_factory=list)
    train_accuracy: float = float("nan")
    saved_lrs: list = field(default_factory=list)


def _accuracy_on_encoded(net: ContinualActiveClassifier, X: Any, y: Any) -> float:
    """Accuracy against encoded labels, for skorch's validation scoring."""
    predicted = net.predict_proba(X).argmax(axis=1)
    return float(np.mean(predicted == np.asarray(y)))


class ContinualActiveClassifier(NeuralNetClassifier):
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

    Parameters
    ----------
    module : torch.nn.Module class or instance
        The network; it returns logits of shape ``(n_samples, n_classes)``.
    criterion : torch criterion class, default=torch.nn.CrossEntropyLoss
        The supervised loss ``ℓ`` on logits; ``criterion__*`` sets its arguments.
    train_split : callable or None, default=None
        skorch's internal validation split; off by default because AL label
        sets are small.
    replay : str, type or ReplayStrategy, default="er"
        How rounds after the first train: ``"retrain"`` (standard AL),
        ``"warmstart"`` (AL with warm start), ``"finetune"`` (new points only)
        or ``"er"`` (experience replay); see :data:`skcal.replay.REPLAY_STRATEGIES`.
        Hyperparameters of the strategy are set as ``replay__<name>``.
    replay_size : int or None, default=None
        ``m'``, the number of history points replayed with each minibatch of
        new points; None means the training batch size ``m``.
    round_epochs : int, default=10
        Epochs of a replay round; an epoch is one pass over the *new* points.
    train_accuracy_stop : float or None, default=None
        Stop a round that trains on the whole labelled set (the seed round,
        ``retrain`` and ``warmstart``) once an epoch's training accuracy
        reaches this value; ``max_epochs`` caps it. The reference protocol
        uses 0.99. Replay rounds always run ``round_epochs`` epochs.
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
    classes : array-like or None, default=None
        The full label set, if known up front (skorch's parameter). Labels may
        be strings or integers.
    **kwargs
        Any other :class:`skorch.NeuralNetClassifier` parameter (``lr``,
        ``max_epochs``, ``batch_size``, ``optimizer``, ``device``, ...).
        ``iterator_train__shuffle`` defaults to True.

    Attributes
    ----------
    labelled_history_ : LabelledHistory
        Every labelled point with its encoded label, round id and stored logits.
    rounds_ : list of dict
        One compute record per round: ``round``, ``strategy``, ``n_new``,
        ``n_history``, ``epochs``, ``samples_forwarded``,
        ``samples_backpropagated``, ``train_seconds``, ``train_accuracy``.
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

    prefixes_ = NeuralNetClassifier.prefixes_ + ["replay"]

    def __init__(
        self,
        module: Any,
        *args: Any,
        criterion: Any = torch.nn.CrossEntropyLoss,
        train_split: Any = None,
        replay: Any = "er",
        replay_size: int | None = None,
        round_epochs: int = 10,
        train_accuracy_stop: float | None = None,
        scale_lr: bool = False,
        reset_optimizer: bool = True,
        random_state: Any = None,
        grow_output: bool = False,
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
        self.round_state_ = None

    # -- skorch hooks ------------------------------------------------------
    @property
    def _default_callbacks(self) -> list:
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            ("valid_acc", EpochScoring(_accuracy_on_encoded, name="valid_acc", lower_is_better=False)),
            ("print_log", PrintLog()),
        ]

    def __sklearn_tags__(self) -> Any:
        """Declare sparse input as supported."""
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

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
        """
        own = {key: params.pop(key) for key in list(params) if key.split("__")[0] in _OWN_PARAMS}
        super().set_params(**params)
        for key, value in own.items():
            setattr(self, key, value)
            if "__" in key:
                self._params_to_validate.add(key)
        return self

    def initialize_module(self) -> ContinualActiveClassifier:
        """Initialise the module, filling in ``n_features`` and ``n_classes`` from the data.

        When the module is a class (or factory) whose signature takes
        ``n_features``, ``in_channels`` or ``n_classes`` and they were not set
        as ``module__*`` parameters, the seed round's feature width, image
        channels and label count are passed, so
        ``ContinualActiveClassifier(skcal.models.MLP)`` needs no sizes.

        Returns
        -------
        self
        """
        kwargs = self.get_params_for("module")
        history = getattr(self, "labelled_history_", None)
        if callable(self.module) and not isinstance(self.module, torch.nn.Module) and history is not None:
            try:
                accepted = inspect.signature(self.module).parameters
            except (TypeError, ValueError):
                accepted = {}
            shape = history.feature_shape
            if "n_features" in accepted and "n_features" not in kwargs and isinstance(shape, tuple) and len(shape) == 1:
                kwargs["n_features"] = shape[0]
            if (
                "in_channels" in accepted
                and "in_channels" not in kwargs
                and isinstance(shape, tuple)
                and len(shape) == 3
            ):
                kwargs["in_channels"] = shape[0]  # images: (channels, height, width)
            if "n_classes" in accepted and "n_classes" not in kwargs and hasattr(self, "fitted_classes_"):
                kwargs["n_classes"] = len(self.fitted_classes_)
        self.module_ = self.initialized_instance(self.module, kwargs)
        return self

    def get_dataset(self, X: Any, y: Any = None) -> Any:
        """Wrap ``X`` in a :class:`~skcal._data.BatchedDataset` (one gather per batch).

        A ``Dataset`` passed as ``X``, or a custom ``dataset=`` parameter, is
        used as skorch would.
        """
        if is_dataset(X) or self.dataset is not Dataset:
            return super().get_dataset(X, y)
        return BatchedDataset(X, y)

    def get_iterator(self, dataset: Any, training: bool = False) -> Any:
        """Build skorch's iterator, with one-gather batches and the round's seeded shuffle."""
        prefix = "iterator_train" if training else "iterator_valid"
        iterator = getattr(self, prefix)
        kwargs = self.get_params_for(prefix)
        kwargs.setdefault("batch_size", self.batch_size)
        if kwargs["batch_size"] == -1:
            kwargs["batch_size"] = len(dataset)
        if iterator is DataLoader:
            if training and kwargs.get("shuffle") and self.round_state_ is not None:
                kwargs.setdefault("generator", self.round_state_.shuffle_generator)
            if is_batched_dataset(dataset):
                if set(kwargs) <= BatchIterator.accepted:
                    return BatchIterator(dataset, **kwargs)
                kwargs.setdefault("collate_fn", collate_batch)
            # A DataLoader without a generator draws its base seed from torch's
            # global RNG, so plain prediction would perturb the user's seed.
            kwargs.setdefault("generator", torch.Generator())
        return iterator(dataset, **kwargs)

    def infer(self, x: Any, **fit_params: Any) -> Any:
        """Run skorch's forward step, checking the module returns one logit per class."""
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
        """One gradient computation; in replay rounds, on ``B_current ∪ B_replay``.

        Rounds that train on the whole labelled set use skorch's own step. In
        a replay round the strategy chooses ``B_replay`` from the history, the
        module runs one forward pass over both batches, and the strategy's
        loss is backpropagated (Algorithm 2, lines 4-6).
        """
        state = self.round_state_
        if state is None or state.strategy.trains_on_labelled_set:
            step = super().train_step_single(batch, **fit_params)
            if state is not None:
                self._count_step(state, step["loss"], step["y_pred"], batch[1])
            return step

        if not self.module_.training:
            self._set_training(True)
        X_current, y_current = unpack_data(batch)
        X_current = move_to(X_current, self.device)
        y_current = y_current.to(self.device)
        strategy, history = state.strategy, self.labelled_history_
        replay = None
        if strategy.replays and state.replay_size > 0 and len(history) > 0:
            chosen = strategy.select_replay(self, X_current, y_current, history, state.replay_size, state.rng)
            replay = history.batch(chosen)
        inputs = X_current if replay is None else concat_rows(X_current, replay.X)
        outputs = self.infer(inputs, **fit_params)
        y_pred = outputs[: len(y_current)]
        replay_pred = None if replay is None else outputs[len(y_current) :]
        loss = strategy.loss(self, y_pred, y_current, replay_pred, replay)
        self._count_step(state, loss, outputs, y_current if replay is None else (y_current, replay.y))
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def on_epoch_begin(self, net: Any, dataset_train: Any = None, dataset_valid: Any = None, **kwargs: Any) -> None:
        """Stop the round before a new epoch if ``train_accuracy_stop`` was reached."""
        state = self.round_state_
        if (
            state is not None
            and state.stop_accuracy is not None
            and state.epochs > 0
            and state.train_accuracy >= state.stop_accuracy
        ):
            raise _RoundConverged
        super().on_epoch_begin(net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs)

    def on_epoch_end(self, net: Any, dataset_train: Any = None, dataset_valid: Any = None, **kwargs: Any) -> None:
        """Record the epoch's training accuracy as ``train_acc`` in skorch's history."""
        super().on_epoch_end(net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs)
        state = self.round_state_
        if state is not None and state.epoch_labels:
            predictions, labels = torch.cat(state.epoch_predictions), torch.cat(state.epoch_labels)
            state.epochs += 1
            state.train_accuracy = (predictions == labels.to(predictions.device)).float().mean().item()
            state.epoch_predictions, state.epoch_labels = [], []
            self.history.record("train_acc", state.train_accuracy)

    def count_samples(self, forwarded: int = 0, backpropagated: int = 0) -> None:
        """Add work a strategy did beyond the training step to the round's record.

        Replay methods that score candidates (MIR, SDS2) call this so that
        ``rounds_`` counts every sample that went through the module.

        Parameters
        ----------
        forwarded : int, default=0
            Samples passed forward.
        backpropagated : int, default=0
            Samples whose loss was backpropagated.
        """
        state = self.round_state_
        if state is not None:
            state.samples_forwarded += int(forwarded)
            state.samples_backpropagated += int(backpropagated)

    def save_checkpoint(self, directory: Any) -> Any:
        """Write the campaign state (module, optimizer, history, ``rounds_``, RNG) atomically.

        See :mod:`skcal.checkpoint`.

        Parameters
        ----------
        directory : str or Path
            Receives ``checkpoint.pt``.

        Returns
        -------
        Path
            The checkpoint file.
        """
        from .checkpoint import save_checkpoint

        return save_checkpoint(self, directory)

    def load_checkpoint(self, directory: Any) -> ContinualActiveClassifier:
        """Restore a campaign saved by :meth:`save_checkpoint`; nothing changes if it fails.

        Parameters
        ----------
        directory : str or Path

        Returns
        -------
        self
        """
        from .checkpoint import load_checkpoint

        return load_checkpoint(self, directory)

    # -- public API --------------------------------------------------------
    def fit(self, X: Any, y: Any, **fit_params: Any) -> ContinualActiveClassifier:
        """Train from scratch on ``(X, y)``, the seed round; the history becomes exactly ``(X, y)``.

        The module is re-initialised unless ``warm_start=True``, as in skorch.

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
        """
        classes = check_classes(self.classes) if self.classes is not None else None
        self._seed_round(X, y, classes, reinitialize=not (self.warm_start and self.initialized_), **fit_params)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None, **fit_params: Any) -> ContinualActiveClassifier:
        """Run one active-learning round on newly labelled points.

        Before any training this is the seed round (like :meth:`fit`, but an
        already initialised module, e.g. with loaded weights, is kept).
        Afterwards the ``replay`` strategy trains on ``(X, y)`` and the
        history, then ``(X, y)`` join the history. If the round fails (an
        exception, a NaN loss, an interrupt), the history and ``rounds_``
        are left as they were.

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
        """
        if not self._has_history():
            declared = classes if classes is not None else self.classes
            declared = check_classes(declared) if declared is not None else None
            self._seed_round(X, y, declared, reinitialize=not self.initialized_, **fit_params)
            return self
        if classes is not None and not np.array_equal(check_classes(classes), self.classes_):
            raise ValueError(
                f"classes={list(classes)!r} differs from the classes fixed by the first call, {self.classes_.tolist()}."
            )
        history = self.labelled_history_
        data = check_features(X, history.feature_shape, history.is_sparse)
        raw_labels = check_labels(y, n_rows(data))
        strategy = make_strategy(self.replay, self.get_params_for("replay"))
        new_labels = self._unseen_labels(raw_labels) if self.grow_output else []
        if len(new_labels):
            self._grow_output_layer(new_labels)
        labels = encode_labels(raw_labels, self.classes_)
        self._run_round(strategy, data, labels, **fit_params)
        return self

    def _unseen_labels(self, labels: np.ndarray) -> np.ndarray:
        known = set(self.classes_.tolist())
        return np.array(sorted({label for label in labels.tolist() if label not in known}))

    def _grow_output_layer(self, new_labels: np.ndarray) -> None:
        """Add one output unit per new label to the module's last Linear layer."""
        layer = last_linear_layer(self.module_)
        if layer is None or layer.out_features != len(self.classes_):
            raise ValueError(
                f"grow_output needs the module's last torch.nn.Linear layer to emit one logit per class "
                f"({len(self.classes_)}); found {layer!r}. Declare every label with classes= instead."
            )
        grown = torch.nn.Linear(layer.in_features, layer.out_features + len(new_labels), bias=layer.bias is not None)
        grown = grown.to(device=layer.weight.device, dtype=layer.weight.dtype)
        with torch.no_grad():
            grown.weight[: layer.out_features] = layer.weight
            if layer.bias is not None:
                grown.bias[: layer.out_features] = layer.bias
        name = next(name for name, module in self.module_.named_modules() if module is layer)
        parent, _, attribute = name.rpartition(".")
        setattr(self.module_.get_submodule(parent) if parent else self.module_, attribute, grown)
        self.fitted_classes_ = np.concatenate([self.classes_, new_labels])
        self.labelled_history_.widen_logits(len(self.fitted_classes_))
        self._initialize_optimizer()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities for ``X``, columns in the order of ``classes_``.

        Parameters
        ----------
        X : array-like, torch.Tensor, scipy.sparse matrix, dict of arrays or Dataset
            The points to classify, with the training data's feature shape.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)

        Raises
        ------
        ValueError, TypeError
            For NaN or infinity, a dtype skcal cannot use, or a feature shape
            different from the training data's.
        """
        if self._has_history() and not is_dataset(X):
            history = self.labelled_history_
            X = check_features(X, history.feature_shape, expected_sparse=None)
        return super().predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (from ``classes_``) for ``X``.

        Parameters
        ----------
        X : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
            The points to classify.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        best = self.predict_proba(X).argmax(axis=1)
        return self.classes_[best]

    # -- rounds ------------------------------------------------------------
    def _has_history(self) -> bool:
        return getattr(self, "labelled_history_", None) is not None and len(self.labelled_history_) > 0

    def _seed_round(self, X: Any, y: Any, classes: np.ndarray | None, reinitialize: bool, **fit_params: Any) -> None:
        data = check_features(X)
        labels = check_labels(y, n_rows(data))
        shape = feature_shape(data)
        if classes is None:
            try:
                classes = np.unique(labels)
            except TypeError:
                raise ValueError("y mixes label types that cannot be sorted, e.g. strings and numbers.") from None
        encoded = encode_labels(labels, classes)
        make_strategy(self.replay, self.get_params_for("replay"))  # fail now on a bad replay=

        with self._restored_on_failure():  # a seed round that fails leaves the previous campaign
            self.fitted_classes_ = classes
            if isinstance(shape, tuple) and len(shape) == 1:
                self.n_features_in_ = shape[0]
            seed = None if self.random_state is None else check_random_state(self.random_state).randint(2**31 - 1)
            self.rng_ = np.random.default_rng(seed)
            self.labelled_history_ = LabelledHistory(self.device)
            self.rounds_ = []
            self._run_round(_SeedRound(), data, encoded, reinitialize_all=reinitialize, **fit_params)

    @contextmanager
    def _restored_on_failure(self) -> Iterator[None]:
        """Undo everything the block changes on the estimator if it raises.

        Attributes are restored as they were, and so are the module's weights
        and skorch's training log, which are changed in place.
        """
        attributes = dict(self.__dict__)
        training_log = list(self.history_) if self.history_ is not None else None
        weights = copy.deepcopy(self.module_.state_dict()) if self.initialized_ else None
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(attributes)
            if weights is not None:
                self.module_.load_state_dict(weights)
            if training_log is not None:
                self.history_[:] = training_log
            raise

    def _run_round(
        self, strategy: ReplayStrategy, X: Any, y: torch.Tensor, reinitialize_all: bool = False, **fit_params: Any
    ) -> None:
        history = self.labelled_history_
        if history.device != torch.device(self.device):
            history.to(self.device)
        n_history = len(history)
        history.stage(X, y)
        try:
            with self._round(strategy) as state:
                started = time.perf_counter()
                if reinitialize_all:
                    self.initialize()
                elif strategy.reinitializes:
                    self._reinitialize_module()
                elif self.reset_optimizer:
                    self._initialize_optimizer()
                self._check_criterion()
                self._scale_learning_rate(state)
                strategy.begin_round(self, history, history.n_staged)
                if strategy.trains_on_labelled_set:
                    X_train, y_train, epochs = history.labelled_X, history.labelled_y, self.max_epochs
                else:
                    X_train, y_train, epochs = history.staged_X, history.staged_y, self.round_epochs
                self.notify("on_train_begin", X=X_train, y=y_train)
                try:
                    self.fit_loop(X_train, y_train, epochs=epochs, **fit_params)
                except _RoundConverged:
                    pass
                self.notify("on_train_end", X=X_train, y=y_train)
                logits = self._logits(history.staged_X, device=history.device)
                state.samples_forwarded += history.n_staged
                if torch.device(self.device).type == "cuda":
                    torch.cuda.synchronize(self.device)
                seconds = time.perf_counter() - started
            history.commit(logits, state.index)
        except BaseException:
            history.discard()
            raise
        self.rounds_.append(
            {
                "round": state.index,
                "strategy": strategy.name or type(strategy).__name__,
                "n_new": n_rows(X),
                "n_history": n_history,
                "epochs": state.epochs,
                "samples_forwarded": state.samples_forwarded,
                "samples_backpropagated": state.samples_backpropagated,
                "train_seconds": seconds,
                "train_accuracy": state.train_accuracy,
            }
        )

    @contextmanager
    def _round(self, strategy: ReplayStrategy) -> Iterator[_RoundState]:
        """Set up the round's state and, with ``random_state``, a private torch RNG."""
        seed = int(self.rng_.integers(2**62))
        device = torch.device(self.device)
        cuda = [device] if device.type == "cuda" else []
        state = _RoundState(
            index=len(self.rounds_),
            strategy=strategy,
            replay_size=self._replay_size(),
            rng=np.random.default_rng(seed),
            shuffle_generator=torch.Generator().manual_seed(seed),
            stop_accuracy=self.train_accuracy_stop if strategy.trains_on_labelled_set else None,
        )
        with torch.random.fork_rng(devices=cuda, enabled=self.random_state is not None):
            if self.random_state is not None:
                torch.manual_seed(seed)
            self.round_state_ = state
            try:
                yield state
            finally:
                self.round_state_ = None
                for group, lr in zip(getattr(self.optimizer_, "param_groups", []), state.saved_lrs, strict=False):
                    group["lr"] = lr

    def _logits(self, X: Any, device: Any) -> torch.Tensor:
        """Compute module outputs for ``X`` in eval mode, batched like prediction.

        The same as skorch's ``forward`` without its per-batch checks, which
        cost more than the forward pass of a small model.
        """
        self._set_training(False)
        with torch.no_grad():
            batches = self.get_iterator(self.get_dataset(X), training=False)
            return torch.cat([self.infer(Xb).to(device) for Xb, _ in batches])

    def _batch_size(self) -> int:
        return self.get_params_for("iterator_train").get("batch_size", self.batch_size)

    def _replay_size(self) -> int:
        size = self._batch_size() if self.replay_size is None else self.replay_size
        if not isinstance(size, (int, np.integer)) or size < 0:
            raise ValueError(f"replay_size must be a non-negative integer or None; got {self.replay_size!r}.")
        return int(size)

    def _scale_learning_rate(self, state: _RoundState) -> None:
        """In replay rounds with ``scale_lr``, use ``lr * (m + m') / m`` for this round."""
        groups = self.optimizer_.param_groups
        state.saved_lrs = [group["lr"] for group in groups]
        if self.scale_lr and state.strategy.replays and not state.strategy.trains_on_labelled_set:
            m = self._batch_size()
            for group in groups:
                group["lr"] = group["lr"] * (m + state.replay_size) / m

    def _reinitialize_module(self) -> None:
        """Fresh random weights: a new module, or ``reset_parameters`` on a module instance."""
        previous = self.module_
        self._initialize_module()
        if self.module_ is previous:
            for layer in self.module_.modules():
                if hasattr(layer, "reset_parameters"):
                    layer.reset_parameters()
        self._initialize_criterion()
        self._initialize_optimizer()

    def _check_criterion(self) -> None:
        if isinstance(self.criterion_, torch.nn.NLLLoss):
            raise ValueError(
                "ContinualActiveClassifier needs a module that returns logits and a criterion on "
                "logits (CrossEntropyLoss); NLLLoss on probabilities is not supported."
            )

    def _count_step(self, state: _RoundState, loss: torch.Tensor, outputs: torch.Tensor, labels: Any) -> None:
        value = loss.item()  # skorch reads it right after the step anyway
        if not math.isfinite(value):
            raise FloatingPointError(
                f"Round {state.index}, epoch {state.epochs + 1}: the loss is {value}; "
                "training diverged (try a lower learning rate)."
            )
        state.epoch_predictions.append(outputs.detach().argmax(dim=1))
        state.epoch_labels.extend(labels if isinstance(labels, tuple) else (labels,))
        state.samples_forwarded += len(outputs)
        state.samples_backpropagated += len(outputs)
