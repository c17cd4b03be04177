"""Where rounds are logged: MLflow runs, TensorBoard writers and the skorch loggers' own.

A campaign logs to *targets*, one per MLflow run or TensorBoard folder:
:class:`_MlflowTarget` and :class:`_TensorBoardTarget`, opened by
:class:`_SinkTargets` (the part of :class:`~skcal.tracking.RoundLogger` that
opens them: a new run or writer per campaign, the one given, or the skorch
``MlflowLogger``'s and ``TensorBoard``'s). :func:`mlflow_client` and
:func:`check_tracking_uri` reach MLflow; MLflow and TensorBoard are imported
only when a sink needs them. Part of :mod:`skcal.tracking`, which re-exports
the public names.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from skorch.callbacks import MlflowLogger, TensorBoard

#: The sinks :class:`RoundLogger` can log to.
SINKS = ("skorch", "mlflow", "tensorboard")
#: Prefix of the metrics logged once per round, at step = round index.
ROUND_PREFIX = "round/"
#: Prefix of the metrics the direct sinks log once per epoch, at step = skorch's epoch.
EPOCH_PREFIX = "epoch/"
#: MLflow run statuses that :meth:`RoundLogger.end_campaign` accepts.
RUN_STATUSES = ("FINISHED", "FAILED", "KILLED")
_CLIENT_METHODS = ("log_batch", "create_run", "log_artifacts", "get_run", "set_terminated")  # what the sink calls
_WRITER_METHODS = ("add_scalar", "add_text", "flush", "get_logdir")
_MLFLOW_BATCH = {"metrics": 1000, "params": 100}  # MLflow's limits on one log_batch call


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


def _skorch_loggers(net: Any) -> list:
    return [
        callback for _, callback in getattr(net, "callbacks_", []) if isinstance(callback, (MlflowLogger, TensorBoard))
    ]


class _SinkTargets:
    """Open a campaign's targets from :class:`~skcal.tracking.RoundLogger`'s parameters (a mixin)."""

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
