"""Rounds reach experiment trackers: :class:`RoundLogger`, a skorch callback, and :func:`log_campaign`.

skorch's loggers (``MlflowLogger``, ``TensorBoard``) log every *epoch*, at
a step that keeps growing across a campaign's rounds (skorch's training log
is not cleared between rounds, only when a new campaign starts). What a CAL
campaign is judged on happens once per *round*: the labelled count, what the
round cost (samples backpropagated, seconds) and the accuracy it reached.
:class:`RoundLogger` logs those at step = the round's index (0 for the seed
round), under metric names of their own (``round/<name>``), so that they
never collide with the epoch steps; the campaign's parameters are logged
once, and each round's files go to a folder of their own (``round-003/``).

It logs to one or more *sinks*:

* ``"skorch"``: the run and writer of skorch's ``MlflowLogger`` or
  ``TensorBoard`` callbacks on the same net (they keep logging the epochs);
* ``"mlflow"``: MLflow directly, a new run per campaign (or a run you give);
* ``"tensorboard"``: a ``torch.utils.tensorboard.SummaryWriter``, a new log
  folder per campaign (or a writer you give).

The direct sinks log the epochs too (``epoch/<name>``, step = skorch's
``epoch``, counted across the campaign), when the round that trained them
is committed: a round that fails and is rolled back logs nothing.

:func:`log_campaign` logs a finished campaign's per-round records (those of
:class:`~skcal.simulation.ActiveLearningSimulator`, or ``skcal bench``'s) as
one MLflow run. MLflow and TensorBoard are optional dependencies
(``pip install skcal[tracking]``), imported only when a sink needs them.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import json
import os
import shutil
import tempfile
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from numbers import Real
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
from skorch.callbacks import Callback, MlflowLogger, TensorBoard
from skorch.callbacks.logging import filter_log_keys

from .utils.data import n_samples

#: The sinks :class:`RoundLogger` can log to.
SINKS = ("skorch", "mlflow", "tensorboard")
#: Prefix of the metrics logged once per round, at step = round index.
ROUND_PREFIX = "round/"
#: Prefix of the metrics the direct sinks log once per epoch, at step = skorch's epoch.
EPOCH_PREFIX = "epoch/"
#: MLflow run statuses that :meth:`RoundLogger.end_campaign` accepts.
RUN_STATUSES = ("FINISHED", "FAILED", "KILLED")

# Parameters that only make sense for one sink, and the sinks they belong to.
_SINK_PARAMETERS = {
    "tracking_uri": ("mlflow",),
    "experiment_name": ("mlflow",),
    "run": ("mlflow",),
    "client": ("mlflow",),
    "tags": ("mlflow",),
    "run_name": ("mlflow", "tensorboard"),
    "writer": ("tensorboard",),
    "log_dir": ("tensorboard",),
}
_CLIENT_METHODS = ("log_batch", "create_run", "log_artifacts", "get_run", "set_terminated")  # what the sink calls
_WRITER_METHODS = ("add_scalar", "add_text", "flush", "get_logdir")
_MAX_PARAM_LENGTH = 500  # MLflow allows 6,000 characters; past a few hundred a value is unreadable anyway
_MLFLOW_BATCH = {"metrics": 1000, "params": 100}  # MLflow's limits on one log_batch call


def _round_folder(index: int) -> str:
    """Name round ``index``'s own folder: ``round-000`` for the seed round, ``round-001``, ..."""
    return f"round-{int(index):03d}"


def describe(value: Any) -> str:
    """Return a short, stable text for a parameter value: what a tracker can store and a person can read.

    Classes and functions are named by their dotted path, arrays by their
    values (or their shape, when large), objects with ``get_params`` (skorch
    callbacks, replay strategies) by their class and parameters, other
    objects by their class: never by a memory address, so that two
    campaigns with the same settings log the same text.

    Parameters
    ----------
    value : Any
        The parameter's value.

    Returns
    -------
    str
        At most 500 characters.
    """
    text = _describe(value)
    return text if len(text) <= _MAX_PARAM_LENGTH else text[: _MAX_PARAM_LENGTH - 3] + "..."


def _dotted_name(value: Any) -> str:
    return f"{getattr(value, '__module__', None) or '?'}.{getattr(value, '__qualname__', type(value).__name__)}"


def _describe(value: Any) -> str:
    if value is None or isinstance(value, (bool, int, float, str)):
        return str(value)
    if isinstance(value, np.generic):
        return str(value.item())
    if isinstance(value, (Path, torch.device, torch.dtype)):
        return str(value)
    if isinstance(value, type) or inspect.isroutine(value):
        return _dotted_name(value)
    if isinstance(value, functools.partial):
        arguments = [_describe(arg) for arg in value.args] + [f"{k}={_describe(v)}" for k, v in value.keywords.items()]
        return f"partial({', '.join([_dotted_name(value.func), *arguments])})"
    if isinstance(value, np.ndarray):
        return str(value.tolist()) if value.size <= 50 else f"array(shape={value.shape}, dtype={value.dtype})"
    if isinstance(value, torch.Tensor):
        return f"tensor(shape={tuple(value.shape)}, dtype={value.dtype})"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_describe(k)}: {_describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        text = ", ".join(_describe(item) for item in items)
        return f"({text})" if isinstance(value, tuple) else f"[{text}]"
    if callable(getattr(value, "get_params", None)):
        try:
            params = value.get_params(deep=False)
        except Exception:  # an object whose get_params needs more than this: name its class only
            params = {}
        return f"{type(value).__qualname__}({', '.join(f'{k}={_describe(v)}' for k, v in params.items())})"
    return f"{_dotted_name(type(value))} instance"


def loggable_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Return ``params`` as text a tracker can store: one entry per parameter, nested mappings flattened.

    Parameters
    ----------
    params : mapping
        Parameter names to values, such as an estimator's ``get_params(deep=False)``.
        Names starting with ``_`` (skorch's private entries) are left out.
    prefix : str, default=""
        Put before every name; a nested mapping's entries are named
        ``<name>__<key>``, as in scikit-learn.

    Returns
    -------
    dict of str to str
        Values as :func:`describe` writes them.
    """
    loggable = {}
    for key, value in params.items():
        if str(key).startswith("_"):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            loggable.update(loggable_params(value, prefix=f"{name}__"))
        else:
            loggable[name] = describe(value)
    return loggable


def record_metrics(record: Mapping[str, Any], exclude: Iterable[str] = ("round",)) -> dict[str, float]:
    """Return the numbers of a round's record as metrics: every real value that is not a bool, nor None.

    Parameters
    ----------
    record : mapping
        One entry of ``ContinualActiveClassifier.rounds_`` or of
        ``ActiveLearningSimulator.records_``.
    exclude : iterable of str, default=("round",)
        Keys that are not metrics (the round index is the step).

    Returns
    -------
    dict of str to float
        The metrics, by name.
    """
    excluded = set(exclude)
    return {
        key: float(value)
        for key, value in record.items()
        if key not in excluded and isinstance(value, (Real, np.number)) and not isinstance(value, (bool, np.bool_))
    }


def _accuracy(net: Any, X: Any, y: Any) -> float:
    return net.score(X, y)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return describe(value)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")


def _import_mlflow() -> Any:
    try:
        import mlflow
    except ImportError as error:
        raise ImportError(
            "Logging to MLflow needs the mlflow package: pip install 'skcal[tracking]' (or mlflow)."
        ) from error
    return mlflow


def _summary_writer_class() -> type:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ImportError(
            "Logging to TensorBoard needs the tensorboard package: pip install 'skcal[tracking]' (or tensorboard)."
        ) from error
    return SummaryWriter


def _is_file_store(uri: str) -> bool:
    scheme = urlparse(uri).scheme
    return scheme in ("", "file") or len(scheme) == 1  # a Windows drive letter parses as a one-letter scheme


def mlflow_client(tracking_uri: str | None = None) -> Any:
    """Return an ``MlflowClient`` for ``tracking_uri``, allowing MLflow's local file store when it names a folder.

    MLflow 3 refuses a file store (``./mlruns``, ``file:///...``) unless
    the environment variable ``MLFLOW_ALLOW_FILE_STORE`` is true; naming a
    folder as the tracking URI is taken as that choice, so this sets it
    (unless it is set already, to either value).

    Parameters
    ----------
    tracking_uri : str, optional
        A folder, ``file:``, ``sqlite:``, ``http(s):`` or ``databricks`` URI;
        None means MLflow's current one (``mlflow.get_tracking_uri()``).

    Returns
    -------
    mlflow.tracking.MlflowClient
        A client of the tracking URI.
    """
    mlflow = _import_mlflow()
    if _is_file_store(tracking_uri if tracking_uri is not None else mlflow.get_tracking_uri()):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return mlflow.tracking.MlflowClient(tracking_uri)


def check_tracking_uri(tracking_uri: str) -> None:
    """Check that MLflow is installed and its tracking server or store at ``tracking_uri`` answers.

    Parameters
    ----------
    tracking_uri : str
        A folder, ``file:``, ``sqlite:``, ``http(s):`` or ``databricks`` URI.

    Raises
    ------
    ValueError
        Naming the URI and the reason (no mlflow package, an unknown scheme,
        a store that cannot be created or read, a server that does not answer).
    """
    try:
        mlflow_client(tracking_uri).search_experiments(max_results=1)
    except Exception as error:  # MLflow raises its own exceptions, OSError and ImportError alike
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"cannot log to the MLflow tracking URI {tracking_uri!r}: {reason}") from error


def _experiment_id(client: Any, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    return experiment.experiment_id if experiment is not None else client.create_experiment(name)


class _MlflowTarget:
    """One MLflow run that a campaign logs to; ``owned`` runs are ended with the campaign."""

    def __init__(self, client: Any, run_id: str, owned: bool, direct: bool = True):
        self.client, self.run_id, self.owned, self.direct = client, run_id, owned, direct

    @property
    def key(self) -> str:
        return f"mlflow run {self.run_id}"

    def log_scalars(self, entries: Sequence[tuple[str, float, int]]) -> None:
        from mlflow.entities import Metric

        timestamp = int(time.time() * 1000)
        metrics = [Metric(name, value, timestamp, step) for name, value, step in entries]
        for start in range(0, len(metrics), _MLFLOW_BATCH["metrics"]):
            self.client.log_batch(self.run_id, metrics=metrics[start : start + _MLFLOW_BATCH["metrics"]])

    def log_params(self, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        logged = self.client.get_run(self.run_id).data.params
        differing = sorted(name for name, value in params.items() if name in logged and logged[name] != value)
        if differing:  # MLflow refuses to change a parameter: keep the run's first values, and say so
            warnings.warn(
                f"The MLflow run {self.run_id} already has parameters {differing[:5]} with other values "
                "(an earlier campaign logged to the same run); they keep their first values. "
                "Give each campaign a run of its own.",
                UserWarning,
                stacklevel=4,
            )
        new = [Param(name, value) for name, value in params.items() if name not in logged]
        for start in range(0, len(new), _MLFLOW_BATCH["params"]):
            self.client.log_batch(self.run_id, params=new[start : start + _MLFLOW_BATCH["params"]])

    def log_directory(self, directory: Path, artifact_path: str) -> None:
        self.client.log_artifacts(self.run_id, str(directory), artifact_path=artifact_path)

    def flush(self) -> None:
        """Nothing to flush: the client's calls are synchronous."""

    def end(self, status: str) -> None:
        if self.owned:
            self.client.set_terminated(self.run_id, status=status)


class _TensorBoardTarget:
    """One TensorBoard log folder (a ``SummaryWriter``); ``owned`` writers are closed with the campaign."""

    def __init__(self, writer: Any, owned: bool, direct: bool = True):
        self.writer, self.owned, self.direct = writer, owned, direct

    @property
    def log_dir(self) -> Path:
        return Path(self.writer.get_logdir())

    @property
    def key(self) -> str:
        return f"TensorBoard folder {self.log_dir}"

    def log_scalars(self, entries: Sequence[tuple[str, float, int]]) -> None:
        for name, value, step in entries:
            self.writer.add_scalar(name, value, global_step=step)

    def log_params(self, params: Mapping[str, str]) -> None:
        rows = "\n".join(f"| {name} | {value.replace('|', '&#124;')} |" for name, value in params.items())
        self.writer.add_text("params", f"| parameter | value |\n| --- | --- |\n{rows}", global_step=0)

    def log_directory(self, directory: Path, artifact_path: str) -> None:
        shutil.copytree(directory, self.log_dir / artifact_path, dirs_exist_ok=True)

    def flush(self) -> None:
        self.writer.flush()

    def end(self, status: str) -> None:
        if self.owned:
            self.writer.close()
        else:
            self.writer.flush()


#: Loggers with a campaign open: their runs are ended and their writers closed when Python exits.
_OPEN_LOGGERS: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _end_open_campaigns() -> None:
    for logger in list(_OPEN_LOGGERS):
        try:
            logger.end_campaign()
        except Exception:  # the tracking server may be gone at exit; the data logged so far is kept
            pass


def _skorch_loggers(net: Any) -> list:
    return [
        callback for _, callback in getattr(net, "callbacks_", []) if isinstance(callback, (MlflowLogger, TensorBoard))
    ]


class RoundLogger(Callback):
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

    # -- checks --------------------------------------------------------------
    def _check_params(self) -> tuple[str, ...]:
        """Check every parameter, alone and against the sinks; return the sinks."""
        sinks = (self.sink,) if isinstance(self.sink, str) else self.sink
        if not isinstance(sinks, Sequence) or not sinks or not all(isinstance(sink, str) for sink in sinks):
            raise TypeError(f"sink={self.sink!r} is not valid: it must be one of {SINKS} or a sequence of them.")
        unknown = [sink for sink in sinks if sink not in SINKS]
        if unknown:
            raise ValueError(f"sink={self.sink!r} is not valid: unknown sink(s) {unknown}; the sinks are {SINKS}.")
        if len(set(sinks)) < len(sinks):
            raise ValueError(f"sink={self.sink!r} is not valid: a sink is given more than once.")
        for name, used_by in _SINK_PARAMETERS.items():
            if getattr(self, name) is not None and not set(used_by) & set(sinks):
                owners = " and ".join(repr(sink) for sink in used_by)
                raise ValueError(f"{name}= is only used by the {owners} sink, and sink={self.sink!r}.")
        if self.client is not None and self.tracking_uri is not None:
            raise ValueError("Give client= or tracking_uri=, not both: the client has its own tracking URI.")
        if self.run is not None:
            run_id = self.run if isinstance(self.run, str) else getattr(getattr(self.run, "info", None), "run_id", None)
            if not isinstance(run_id, str):
                raise TypeError(f"run={self.run!r} is not valid: it must be an mlflow.entities.Run or a run id (str).")
            clashing = [name for name in ("experiment_name", "tags") if getattr(self, name) is not None]
            if clashing or ("tensorboard" not in sinks and self.run_name is not None):
                raise ValueError(
                    f"run= logs to an existing MLflow run, and {clashing or ['run_name']} describe the new runs "
                    "made without one: give one or the other."
                )
        if self.client is not None and not all(callable(getattr(self.client, m, None)) for m in _CLIENT_METHODS):
            raise TypeError(f"client={self.client!r} is not valid: it must be an mlflow.tracking.MlflowClient.")
        if self.tags is not None and not isinstance(self.tags, Mapping):
            raise TypeError(f"tags={self.tags!r} is not valid: it must be a dict of tag names to values.")
        if self.writer is not None:
            missing = [m for m in _WRITER_METHODS if not callable(getattr(self.writer, m, None))]
            if missing:
                raise TypeError(
                    f"writer={self.writer!r} is not valid: it must be a torch.utils.tensorboard.SummaryWriter "
                    f"(it has no {', '.join(missing)})."
                )
            if self.log_dir is not None:
                raise ValueError("Give writer= or log_dir=, not both: the writer has its own log folder.")
        if self.log_dir is not None and not isinstance(self.log_dir, (str, os.PathLike)):
            raise TypeError(f"log_dir={self.log_dir!r} is not valid: it must be a folder (str or path).")
        for name in ("run_name", "tracking_uri", "experiment_name"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise TypeError(f"{name}={getattr(self, name)!r} is not valid: it must be a str or None.")
        for name in ("log_epochs", "log_record", "log_checkpoint"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name}={getattr(self, name)!r} is not valid: it must be True or False.")
        if "mlflow" in sinks:
            _import_mlflow()
        if "tensorboard" in sinks and self.writer is None:
            _summary_writer_class()
        return tuple(sinks)

    def _check_validation_set(self) -> tuple[Callable | None, str | None]:
        """Check ``X_val``, ``y_val`` and ``scoring``; return the scorer and the metric's name."""
        if (self.X_val is None) != (self.y_val is None):
            given = "X_val" if self.y_val is None else "y_val"
            raise ValueError(
                f"{given}= is given without {'y_val' if given == 'X_val' else 'X_val'}=: give both or neither."
            )
        if self.X_val is None:
            if self.scoring is not None:
                raise ValueError("scoring= scores X_val, y_val, and neither is given.")
            return None, None
        if n_samples(self.X_val) != len(self.y_val):
            raise ValueError(f"X_val has {n_samples(self.X_val)} samples but y_val has {len(self.y_val)} labels.")
        if self.scoring is None:
            return _accuracy, "val_accuracy"
        if isinstance(self.scoring, str):
            from sklearn.metrics import get_scorer

            try:
                return get_scorer(self.scoring), f"val_{self.scoring}"
            except ValueError:
                raise ValueError(
                    f"scoring={self.scoring!r} is not valid: it is not a scikit-learn scorer name "
                    "(sklearn.metrics.get_scorer_names())."
                ) from None
        if callable(self.scoring):
            return self.scoring, f"val_{getattr(self.scoring, '__name__', 'score')}"
        raise TypeError(f"scoring={self.scoring!r} is not valid: it must be None, a scorer name or a callable.")

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

    # -- sinks -----------------------------------------------------------------
    def _skorch_targets(self, net: Any) -> list:
        loggers = _skorch_loggers(net) if net is not None else []
        if not loggers:
            raise ValueError(
                "RoundLogger(sink='skorch') logs through skorch's MlflowLogger or TensorBoard callbacks, and "
                + ("there is no net." if net is None else "the net has neither.")
            )
        targets = []
        for logger in loggers:
            if isinstance(logger, MlflowLogger):
                if getattr(logger, "run_", None) is None:
                    raise ValueError(
                        "skorch's MlflowLogger has no run: start one (mlflow.start_run()) before the net is "
                        "initialised, or pass run= and client= to it."
                    )
                targets.append(_MlflowTarget(logger.client_, logger.run_.info.run_id, owned=False, direct=False))
            else:
                targets.append(_TensorBoardTarget(logger.writer, owned=False, direct=False))
        return targets

    def _open_mlflow_run(self) -> _MlflowTarget:
        mlflow = _import_mlflow()
        client = self.client if self.client is not None else mlflow_client(self.tracking_uri)
        if self.run is not None:
            run_id = self.run if isinstance(self.run, str) else self.run.info.run_id
            return _MlflowTarget(client, run_id, owned=False)
        tags = {str(key): str(value) for key, value in (self.tags or {}).items()}
        active = mlflow.active_run()
        parent = active if active is not None and client.tracking_uri == mlflow.get_tracking_uri() else None
        if self.experiment_name is not None:
            experiment_id = _experiment_id(client, self.experiment_name)
        elif parent is not None:
            experiment_id = parent.info.experiment_id
        else:
            experiment_id = _experiment_id(client, os.environ.get("MLFLOW_EXPERIMENT_NAME") or "Default")
        if parent is not None and parent.info.experiment_id == experiment_id:
            tags.setdefault("mlflow.parentRunId", parent.info.run_id)
        run = client.create_run(experiment_id, run_name=self.run_name, tags=tags)
        return _MlflowTarget(client, run.info.run_id, owned=True)

    def _open_writer(self) -> _TensorBoardTarget:
        if self.writer is not None:
            return _TensorBoardTarget(self.writer, owned=False)
        SummaryWriter = _summary_writer_class()
        if self.log_dir is None:
            return _TensorBoardTarget(SummaryWriter(), owned=True)
        name = f"{self.run_name or 'campaign'}-{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        return _TensorBoardTarget(SummaryWriter(log_dir=str(Path(self.log_dir) / name)), owned=True)


def log_campaign(
    records: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any] | None = None,
    *,
    tracking_uri: str | None = None,
    experiment_name: str | None = None,
    run_name: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> str:
    """Log a finished campaign's per-round records as one MLflow run: parameters once, metrics per round.

    For campaigns already run, such as ``ActiveLearningSimulator.records_``
    or those ``skcal bench`` stores (``skcal bench --mlflow`` logs each with
    this). Each record's numbers (:func:`record_metrics`: ``n_labelled``,
    ``accuracy``, ``samples_backpropagated``, ``train_seconds`` and their
    cumulative sums, ...) are logged as ``round/<name>`` at step =
    ``record["round"]``, and the record itself as ``round-XXX/record.json``.

    Parameters
    ----------
    records : sequence of dict
        One per round, each with its ``round``.
    params : mapping, optional
        Logged once (:func:`loggable_params`).
    tracking_uri : str, optional
        The MLflow tracking URI, as for :class:`RoundLogger`.
    experiment_name : str, optional
        The MLflow experiment, as for :class:`RoundLogger`.
    run_name : str, optional
        The run's name, as for :class:`RoundLogger`.
    tags : mapping, optional
        The run's tags, as for :class:`RoundLogger`.

    Returns
    -------
    str
        The run's id. The run is ``FINISHED``, or ``FAILED`` if logging raised.

    Raises
    ------
    ValueError
        A record without its ``round``; nothing is logged.
    """
    missing = [position for position, record in enumerate(records) if "round" not in record]
    if missing:
        raise ValueError(f"records {missing[:5]} have no 'round': each record must say which round it is.")
    logger = RoundLogger(
        "mlflow", tracking_uri=tracking_uri, experiment_name=experiment_name, run_name=run_name, tags=tags
    )
    logger.start_campaign()
    try:
        if params:
            logger.log_params(params)
        for record in records:
            logger.log_metrics(record_metrics(record), step=int(record["round"]))
            logger.log_round_files(int(record["round"]), {"record.json": dict(record)})
    except BaseException:
        logger.end_campaign("FAILED")
        raise
    run_id = logger.run_id_
    logger.end_campaign()
    return run_id


__all__ = [
    "EPOCH_PREFIX",
    "ROUND_PREFIX",
    "SINKS",
    "RoundLogger",
    "check_tracking_uri",
    "describe",
    "log_campaign",
    "loggable_params",
    "mlflow_client",
    "record_metrics",
]
