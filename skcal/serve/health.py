"""``GET /health``: what the backend is doing, and every fault it has met.

Label Studio's connection check reads ``status`` (always ``"UP"`` while the
process answers) and ``model_class``; the rest is for people and monitoring:
the model version and rounds, labelled and pending counts (``set_aside``:
annotated images that could not be fetched), whether a round is training and
when a failed one is retried, the faults active now and the recent ones
(:class:`~skcal.serve.faults.FaultBoard`), labels refused with a 507, the
resident memory and the feature cache's size.
"""

from __future__ import annotations

import time
from typing import Any

from .faults import StorageError
from .memory import rss_bytes


def health_report(backend: Any) -> dict:
    """Return the ``/health`` answer of a :class:`~skcal.serve.backend.LabelStudioBackend`.

    Parameters
    ----------
    backend : LabelStudioBackend
        The backend to describe.

    Returns
    -------
    dict
        Plain JSON values.
    """
    campaign = backend.campaign
    worker = backend.worker
    with worker.condition:
        training, last_error = worker.busy, worker.last_error
        failures, retry_at = worker.failures, worker.retry_at
    try:
        journal_events: int | None = backend.journal.last_seq()
    except StorageError as error:
        backend.faults.report("journal", str(error))
        journal_events = None
    faults, recent = backend.faults.snapshot()
    rss = rss_bytes()
    pipeline = backend.pipeline
    config = backend.config
    return {
        "status": "UP",
        "model_class": backend.model_class,
        "model_version": campaign.model_version,
        "project": backend.project,
        "labelling": None if config is None else config.describe(),
        "rounds": campaign.n_rounds,
        "labelled": len(campaign.ledger.order),
        "pending": len(campaign.ledger.pending),
        "set_aside": len(campaign.ledger.set_aside),
        "train_every": backend.train_every,
        "journal_events": journal_events,
        "training": training,
        "ready": backend.ready,
        "last_error": last_error,
        "failed_steps": failures,
        "retry_in": None if retry_at is None else round(max(retry_at - time.monotonic(), 0.0), 1),
        "last_refresh_error": None if backend.refresher is None else backend.refresher.last_error,
        "labels_refused": backend.labels_refused,
        "faults": faults,
        "recent_faults": recent,
        "rss_mb": None if rss is None else round(rss / 2**20, 1),
        "feature_cache": None if pipeline is None else pipeline.cache_info(),
        "score": backend.score,
    }


__all__ = ["health_report"]
