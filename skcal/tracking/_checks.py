"""The checks of :class:`~skcal.tracking.RoundLogger`'s parameters, alone and against the sinks chosen.

Part of :mod:`skcal.tracking`: :class:`_ParameterChecks` is a mixin of
:class:`~skcal.tracking.RoundLogger`, whose ``initialize`` runs the checks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..utils.data import n_samples
from ._sinks import _CLIENT_METHODS, _WRITER_METHODS, SINKS, _import_mlflow, _summary_writer_class

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


def _accuracy(net: Any, X: Any, y: Any) -> float:
    return net.score(X, y)


class _ParameterChecks:
    """Check :class:`~skcal.tracking.RoundLogger`'s parameters (a mixin)."""

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
