"""The round logger: :class:`RoundLogger`, a skorch callback that logs each committed round.

See :mod:`skcal.tracking` (which re-exports it) for what is logged, where,
and at which steps; its parameter checks are in ``_checks``, the opening of
its runs and writers in ``_sinks``.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
from skorch.callbacks import Callback
from skorch.callbacks.logging import filter_log_keys

from ._checks import _ParameterChecks
from ._params import _dotted_name, _write_json, loggable_params, record_metrics
from ._sinks import (
    EPOCH_PREFIX,
    ROUND_PREFIX,
    RUN_STATUSES,
    _MlflowTarget,
    _SinkTargets,
    _skorch_loggers,
    _TensorBoardTarget,
)


def _round_folder(index: int) -> str:
    """Name round ``index``'s own folder: ``round-000`` for the seed round, ``round-001``, ..."""
    return f"round-{int(index):03d}"


#: Loggers with a campaign open: their runs are ended and their writers closed when Python exits.
_OPEN_LOGGERS: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _end_open_campaigns() -> None:
    for logger in list(_OPEN_LOGGERS):
        try:
            logger.end_campaign()
        except Exception:  # the tracking server may be gone at exit; the data logged so far is kept
            pass


class RoundLogger(_ParameterChecks, _SinkTargets, Callback):
    """Log every round of a CAL campaign to MLflow or TensorBoard: metrics per round, parameters once, files per round.

    A skorch callback for :class:`~skcal.ContinualActiveClassifier`: after
    each committed round (the seed round included) it logs the round's
    metrics at step = the round's index, named ``round/<name>``:

    ``n_labelled`` (the labelled count), ``n_new``, ``n_history``, ``epochs``,
    ``samples_forwarded`` and ``samples_backpropagated`` with their
    ``cumulative_`` sums, ``train_seconds`` and ``cumulative_train_seconds``,
    ``train_accuracy``, and whatever else the round's record holds as a
    number (``held_out_accuracy``, ``start_accuracy``, ``best_epoch``,
    ``n_forgotten`` when the round measured them), plus ``val_<score>`` on
    ``X_val, y_val`` when they are given. Subclass and extend
    :meth:`round_metrics` to add your own.

    A campaign starts with the seed round (``fit``, or a first
    ``partial_fit``): the MLflow sink opens a new run for it, the
    TensorBoard sink a new log folder, the previous campaign's are ended,
    and the estimator's parameters (``get_params``, as :func:`describe`
    writes them, and ``estimator``, its class) are logged once. A campaign
    has no last round of its own: its run stays ``RUNNING`` until
    :meth:`end_campaign`, the next campaign, or the end of the Python
    process (``ActiveLearningSimulator`` ends it with ``fit``). Each round
    writes ``record.json`` (its record and the metrics logged), and with
    ``log_checkpoint`` the estimator's checkpoint
    (:meth:`~skcal.ContinualActiveClassifier.save_checkpoint`), to a folder
    of its own, ``round-000/``, ``round-001/``, ...: an MLflow artifact
    folder, or a folder in the TensorBoard log folder.

    Parameters
    ----------
    sink : {"skorch", "mlflow", "tensorboard"} or sequence of them, default="skorch"
        Where to log. ``"skorch"`` uses the run and client of every skorch
        ``MlflowLogger`` and the writer of every skorch ``TensorBoard`` on
        the net (they log the epochs; give them ``terminate_after_train=False``
        and ``create_artifact=False``, and ``close_after_train=False``, as
        they would otherwise end the run, overwrite their artifacts and
        close the writer at every round). ``"mlflow"`` and
        ``"tensorboard"`` log directly, epochs included (``log_epochs``).
    tracking_uri : str, optional
        MLflow sink: the tracking URI of the client built when ``client``
        is None; None is MLflow's current one. A folder (``./mlruns``) is
        MLflow's file store, which this allows (:func:`mlflow_client`).
    experiment_name : str, optional
        MLflow sink: the experiment of each campaign's run, created if
        missing. By default the experiment of the active MLflow run, if any
        (each campaign's run is then its child, tagged ``mlflow.parentRunId``),
        else ``$MLFLOW_EXPERIMENT_NAME``, else ``"Default"``.
    run : mlflow.entities.Run or str, optional
        MLflow sink: log to this run (or run id) instead of a new run per
        campaign; it is not ended. Every campaign logs to it, so give it
        one campaign: a second one's rounds would reuse the steps (this
        warns).
    client : mlflow.tracking.MlflowClient, optional
        MLflow sink: the client to log with; by default one for ``tracking_uri``.
    run_name : str, optional
        MLflow sink: the name of each campaign's run (MLflow makes one up
        by default). TensorBoard sink: the start of each campaign's folder
        name, ``<run_name>-<time>-<random>`` (``campaign-...`` by default).
    tags : dict of str, optional
        MLflow sink: tags of each campaign's run.
    writer : torch.utils.tensorboard.SummaryWriter, optional
        TensorBoard sink: log to this writer (it is flushed, never closed).
        As with ``run``, give it one campaign.
    log_dir : str or path, optional
        TensorBoard sink, when ``writer`` is None: each campaign gets a new
        writer on a new folder in ``log_dir``, closed when the campaign ends;
        None is the ``SummaryWriter`` default, ``runs/<time>_<host>``.
    X_val, y_val : array-like, optional
        Scored after every round, logged as ``round/val_<score>``.
    scoring : str or callable, optional
        The score on ``X_val, y_val``: None is accuracy (the estimator's
        ``score``), a string a scikit-learn scorer name (``"balanced_accuracy"``),
        a callable ``scoring(net, X_val, y_val) -> float``. The metric is
        ``val_accuracy``, ``val_<name>`` or ``val_<function name>``.
    log_epochs : bool, default=True
        Direct sinks: also log skorch's per-epoch values (``train_loss``,
        ``dur``, ...) as ``epoch/<name>`` at step = skorch's ``epoch``,
        which grows across the rounds of a campaign. The ``"skorch"`` sink
        leaves the epochs to the skorch logger.
    log_record : bool, default=True
        Write each round's ``record.json``.
    log_checkpoint : bool, default=False
        Write each round's checkpoint, ``round-XXX/checkpoint.pt``
        (:meth:`skcal.checkpoint.load_checkpoint` resumes from it).

    Attributes
    ----------
    run_id_ : str or None
        The MLflow run of the current (or last) campaign; None without an MLflow sink.
    log_dir_ : Path or None
        The TensorBoard log folder of the current (or last) campaign.

    Raises
    ------
    ValueError, TypeError, ImportError
        From ``initialize`` (the net calls it when a campaign starts, before
        training): an unknown sink, a parameter of a sink that is not chosen,
        a writer that is not a ``SummaryWriter``, a client that is not an
        ``MlflowClient``, ``X_val`` without ``y_val``, an unknown scorer, a
        missing package. The ``"skorch"`` sink on a net without skorch's
        ``MlflowLogger`` or ``TensorBoard`` fails when the seed round starts
        to train. Either way the round fails and the estimator is left as it was.

    Examples
    --------
    >>> from skcal.tracking import RoundLogger
    >>> net = ContinualActiveClassifier(MLP, callbacks=[                        # doctest: +SKIP
    ...     ("tracker", RoundLogger("mlflow", tracking_uri="mlruns", experiment_name="cal"))])
    >>> net.fit(X_seed, y_seed).partial_fit(X_new, y_new)                      # doctest: +SKIP
    >>> dict(net.callbacks_)["tracker"].run_id_                                # doctest: +SKIP
    """

    def __init__(
        self,
        sink: str | Sequence[str] = "skorch",
        *,
        tracking_uri: str | None = None,
        experiment_name: str | None = None,
        run: Any = None,
        client: Any = None,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        writer: Any = None,
        log_dir: str | os.PathLike | None = None,
        X_val: Any = None,
        y_val: Any = None,
        scoring: str | Callable | None = None,
        log_epochs: bool = True,
        log_record: bool = True,
        log_checkpoint: bool = False,
    ):
        self.sink = sink
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.run = run
        self.client = client
        self.run_name = run_name
        self.tags = tags
        self.writer = writer
        self.log_dir = log_dir
        self.X_val = X_val
        self.y_val = y_val
        self.scoring = scoring
        self.log_epochs = log_epochs
        self.log_record = log_record
        self.log_checkpoint = log_checkpoint

    def initialize(self) -> RoundLogger:
        """Check the parameters (see Raises); keep the open campaign, if any, until the next seed round commits.

        Returns
        -------
        self
            The callback itself.
        """
        self.sinks_ = self._check_params()
        self.scorer_, self.score_name_ = self._check_validation_set()
        for name, empty in (("targets_", None), ("epoch_entries_", []), ("run_id_", None), ("log_dir_", None)):
            if not hasattr(self, name):
                setattr(self, name, empty)
        if not hasattr(self, "last_steps_"):
            self.last_steps_ = {}  # the last round logged to each run or folder, across campaigns
        return self

    def __getstate__(self) -> dict:
        """Leave the open runs and writers out of a pickled copy; it starts a new campaign if trained."""
        state = dict(self.__dict__)
        state["targets_"], state["epoch_entries_"] = None, []
        return state

    # -- skorch events ---------------------------------------------------------
    def on_train_begin(self, net: Any, **kwargs: Any) -> None:
        """Forget the epochs of a round that failed; check that the ``"skorch"`` sink has a skorch logger.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator.
        **kwargs : dict
            Skorch's other event arguments.
        """
        self.epoch_entries_ = []
        if "skorch" in self.sinks_ and not _skorch_loggers(net):
            raise ValueError(
                "RoundLogger(sink='skorch') logs through skorch's MlflowLogger or TensorBoard callbacks, and the "
                "net has neither: add one to callbacks=, or use sink='mlflow' or sink='tensorboard'."
            )

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        """Keep the epoch's values for the direct sinks, logged when the round is committed.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator.
        **kwargs : dict
            Skorch's other event arguments.
        """
        if not self.log_epochs or not set(self.sinks_) & {"mlflow", "tensorboard"}:
            return
        entry = net.history[-1]
        for key in filter_log_keys(entry.keys(), keys_ignored={"batches"}):
            value = entry[key]
            if isinstance(value, (Real, np.number)) and not isinstance(value, (bool, np.bool_)):
                self.epoch_entries_.append((EPOCH_PREFIX + key, float(value), int(entry["epoch"])))

    def on_round_end(self, net: Any, record: Mapping[str, Any], **kwargs: Any) -> None:
        """Log the committed round: open a campaign at the seed round, then metrics, epochs and the round's files.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator, its round committed.
        record : dict
            The round's entry in ``net.rounds_``.
        **kwargs : dict
            Other event arguments.
        """
        if not hasattr(self, "sinks_"):
            self.initialize()
        index = int(record["round"])
        if index == 0 or self.targets_ is None:
            self.start_campaign(net)
        metrics = self.round_metrics(net, record)
        for target in self.targets_:
            self._warn_on_reused_step(target, index)
            if target.direct and self.log_epochs:
                target.log_scalars(self.epoch_entries_)
        self.epoch_entries_ = []
        self.log_metrics(metrics, step=index)
        files = {"record.json": {"record": dict(record), "metrics": metrics}} if self.log_record else {}
        self._log_files(index, files, checkpoint_of=net if self.log_checkpoint else None)

    # -- what is logged --------------------------------------------------------
    def round_metrics(self, net: Any, record: Mapping[str, Any]) -> dict[str, float]:
        """Return the metrics of a committed round, without the ``round/`` prefix.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator, its round committed.
        record : dict
            The round's entry in ``net.rounds_``.

        Returns
        -------
        dict of str to float
            The record's numbers (:func:`record_metrics`), ``n_labelled``,
            the ``cumulative_`` sums of samples and seconds up to this round,
            and ``val_<score>`` with ``X_val, y_val``.
        """
        index = int(record["round"])
        metrics = record_metrics(record)
        metrics["n_labelled"] = float(len(net.labelled_history_))
        done = net.rounds_[: index + 1]
        for name in ("samples_forwarded", "samples_backpropagated", "train_seconds"):
            metrics[f"cumulative_{name}"] = float(sum(entry[name] for entry in done))
        if self.scorer_ is not None:
            metrics[self.score_name_] = float(self.scorer_(net, self.X_val, self.y_val))
        return metrics

    def campaign_params(self, net: Any) -> dict[str, str]:
        """Return the parameters logged once per campaign: ``estimator`` (the net's class) and its ``get_params()``.

        Parameters
        ----------
        net : ContinualActiveClassifier
            The estimator.

        Returns
        -------
        dict of str to str
            The parameters, as :func:`loggable_params` writes them.
        """
        return {"estimator": _dotted_name(type(net)), **loggable_params(net.get_params(deep=False))}

    # -- campaigns -------------------------------------------------------------
    def start_campaign(self, net: Any = None) -> None:
        """End the open campaign, open the sinks for a new one and log its parameters.

        :meth:`on_round_end` calls it at every seed round; call it yourself
        only to log without a net (as :func:`log_campaign` does).

        Parameters
        ----------
        net : ContinualActiveClassifier, optional
            Its parameters are logged; the ``"skorch"`` sink needs it.
        """
        if not hasattr(self, "sinks_"):
            self.initialize()
        self.end_campaign()
        targets = []
        if "skorch" in self.sinks_:
            targets += self._skorch_targets(net)
        if "mlflow" in self.sinks_:
            targets.append(self._open_mlflow_run())
        if "tensorboard" in self.sinks_:
            targets.append(self._open_writer())
        self.targets_ = targets
        _OPEN_LOGGERS.add(self)
        mlflow_runs = [target.run_id for target in targets if isinstance(target, _MlflowTarget)]
        writers = [target.log_dir for target in targets if isinstance(target, _TensorBoardTarget)]
        self.run_id_ = mlflow_runs[0] if mlflow_runs else None
        self.log_dir_ = writers[0] if writers else None
        if net is not None:
            self.log_params(self.campaign_params(net))

    def end_campaign(self, status: str = "FINISHED") -> None:
        """End the open campaign, if any: end the runs and close the writers this logger opened, flush the others.

        Parameters
        ----------
        status : {"FINISHED", "FAILED", "KILLED"}, default="FINISHED"
            The MLflow status of the runs this logger opened.
        """
        if status not in RUN_STATUSES:
            raise ValueError(f"status={status!r} is not valid: it must be one of {RUN_STATUSES}.")
        targets, self.targets_ = getattr(self, "targets_", None), None
        _OPEN_LOGGERS.discard(self)
        for target in targets or ():
            target.end(status)

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        """Log numbers of round ``step`` to the open campaign's sinks, as ``round/<name>``.

        Parameters
        ----------
        metrics : mapping of str to real
            The numbers, by name.
        step : int
            The round's index.

        Raises
        ------
        RuntimeError
            No campaign is open (before the seed round, or after :meth:`end_campaign`).
        TypeError
            A value that is not a real number; nothing is logged.
        """
        targets = self._open_targets("log_metrics")
        for name, value in metrics.items():
            if not isinstance(value, (Real, np.number)) or isinstance(value, (bool, np.bool_)):
                raise TypeError(f"Metric {name!r} is {value!r}; a metric must be a real number.")
        entries = [(ROUND_PREFIX + name, float(value), int(step)) for name, value in metrics.items()]
        for target in targets:
            target.log_scalars(entries)
            target.flush()
            self.last_steps_[target.key] = max(int(step), self.last_steps_.get(target.key, -1))

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log ``params`` (as :func:`loggable_params` writes them) to the open campaign; RuntimeError if none is.

        Parameters
        ----------
        params : mapping of str to object
            The parameters, by name.
        """
        targets = self._open_targets("log_params")
        loggable = loggable_params(params)
        for target in targets:
            target.log_params(loggable)

    def log_round_files(self, step: int, files: Mapping[str, Any]) -> None:
        """Write ``files`` (names such as ``"simulation.json"`` to JSON-ready data) to round ``step``'s folder.

        The folder is ``round-XXX/`` in each sink of the open campaign; RuntimeError if none is open.

        Parameters
        ----------
        step : int
            The round's index.
        files : mapping of str to object
            File names to JSON-ready data.
        """
        self._open_targets("log_round_files")
        self._log_files(step, files)

    def _open_targets(self, what: str) -> list:
        targets = getattr(self, "targets_", None)
        if targets is None:
            raise RuntimeError(
                f"RoundLogger.{what}: no campaign is open; the seed round (fit, or a first partial_fit) opens "
                "one, and start_campaign() does without a net."
            )
        return targets

    def _log_files(self, step: int, files: Mapping[str, Any], checkpoint_of: Any = None) -> None:
        if not files and checkpoint_of is None:
            return
        with tempfile.TemporaryDirectory(prefix="skcal-round-") as temporary:
            folder = Path(temporary) / _round_folder(step)
            folder.mkdir()
            for name, data in files.items():
                _write_json(folder / name, data)
            if checkpoint_of is not None:
                checkpoint_of.save_checkpoint(folder)
            for target in self.targets_:
                target.log_directory(folder, folder.name)

    def _warn_on_reused_step(self, target: Any, index: int) -> None:
        last = self.last_steps_.get(target.key)
        if last is not None and index <= last:
            warnings.warn(
                f"Round {index} is logged to the {target.key}, which already has rounds up to {last} "
                "(from an earlier campaign): their steps overlap. Give each campaign a run or writer of its own "
                "(RoundLogger opens one per campaign unless given run= or writer=).",
                UserWarning,
                stacklevel=4,
            )
