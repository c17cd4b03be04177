"""The state folder: one backend at a time, and a fingerprint of everything a request could change.

:func:`lock_state_dir` holds an advisory lock on ``<state-dir>/lock`` for the
backend's life: two backends on one folder would each train on the shared
journal and remove each other's commits. :func:`fingerprint` turns the
backend's state into comparable plain values, for tests and diagnostics
(a refused request must leave it unchanged).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .campaign import CampaignStateError

logger = logging.getLogger(__name__)

LOCK_FILENAME = "lock"


def lock_state_dir(folder: Path) -> Any:
    """Hold an exclusive lock on a state folder for as long as the returned file stays open.

    Two backends on one folder would each train on the shared journal and
    remove each other's commits (leaving ``CURRENT`` naming a deleted one).

    Parameters
    ----------
    folder : Path

    Returns
    -------
    file object
        Close it to release the lock.

    Raises
    ------
    CampaignStateError
        When another backend (in this process or another) holds the folder.
    """
    handle = open(folder / LOCK_FILENAME, "a+b")  # noqa: SIM115 (held open: it is the lock)
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise CampaignStateError(
            f"{folder} is in use by another skcal serve backend; each backend needs a --state-dir of its own."
        ) from None
    except OSError as error:  # a file system without locks (some network file systems)
        logger.warning("skcal serve: cannot lock %s (%s); run one backend on it at a time", folder, error)
    return handle


def fingerprint(backend: Any) -> dict:
    """Everything a request could change, as comparable plain values (for tests and diagnostics).

    Parameters
    ----------
    backend : LabelStudioBackend

    Returns
    -------
    dict
        Model weights and history (as bytes), the ledger, pending labels,
        the journal's events, project, config and model version.
    """
    campaign = backend.campaign
    classifier: Any = campaign.classifier
    weights = history = None
    if classifier is not None:
        weights = {
            key: value.detach().cpu().numpy().tobytes() for key, value in classifier.module_.state_dict().items()
        }
        state = classifier.labelled_history_.state()
        history = (state["y"].numpy().tobytes(), state["logits"].numpy().tobytes(), state["rounds"].numpy().tobytes())
    ledger = campaign.ledger
    return {
        "weights": weights,
        "history": history,
        "order": list(ledger.order),
        "labels": dict(ledger.labels),
        "pending": {key: (item.label, item.value) for key, item in ledger.pending.items()},
        "corrections": (dict(ledger.relabel), list(ledger.forget)),
        "journal": [(seq, event.to_json()) for seq, event in backend.journal.events_after(0)],
        "project": backend._project,
        "config": None if backend.config is None else backend.config.describe(),
        "model_version": campaign.model_version,
    }


__all__ = ["LOCK_FILENAME", "fingerprint", "lock_state_dir"]
