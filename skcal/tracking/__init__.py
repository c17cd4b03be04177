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

The code is split by concern: :mod:`skcal.tracking.logger` (:class:`RoundLogger`),
:mod:`skcal.tracking.campaign` (:func:`log_campaign`), ``_params`` (what
parameters and records become), ``_sinks`` (MLflow runs, TensorBoard writers,
the skorch loggers') and ``_checks`` (the logger's parameters); every public
name is re-exported here.
"""

from __future__ import annotations

from . import _sinks
from ._params import describe, loggable_params, record_metrics
from ._sinks import check_tracking_uri, mlflow_client
from .campaign import log_campaign
from .logger import RoundLogger

#: The sinks :class:`RoundLogger` can log to.
SINKS = _sinks.SINKS
#: Prefix of the metrics logged once per round, at step = round index.
ROUND_PREFIX = _sinks.ROUND_PREFIX
#: Prefix of the metrics the direct sinks log once per epoch, at step = skorch's epoch.
EPOCH_PREFIX = _sinks.EPOCH_PREFIX
#: MLflow run statuses that :meth:`RoundLogger.end_campaign` accepts.
RUN_STATUSES = _sinks.RUN_STATUSES

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
