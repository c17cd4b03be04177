"""A finished campaign's records as one MLflow run: :func:`log_campaign`.

Part of :mod:`skcal.tracking`, which re-exports it; it logs through a
:class:`~skcal.tracking.RoundLogger` with the MLflow sink.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._params import record_metrics
from .logger import RoundLogger


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
