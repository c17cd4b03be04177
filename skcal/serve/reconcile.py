"""Reconciliation with Label Studio: the annotation changes the backend missed.

Label Studio sends each webhook once and never resends one that failed, so
annotations made while the backend was down, or while its state folder could
not be written (its webhooks were answered 507), would never arrive. With a
Label Studio token the backend reads the project's annotations (Label
Studio's JSON export) and journals the differences: annotations it does not
have, labels that changed, and annotations that are gone. It does so at
start and again once a storage fault clears.

The comparison uses the journal as it was before Label Studio's list was
read; an annotation with a newer journal event (a webhook that arrived
meanwhile) is left to that event.
"""

from __future__ import annotations

import logging
from typing import Any

from .campaign import Ledger
from .labelconfig import LabellingConfig
from .protocol import LabelEvent, ProtocolError, annotation_event

logger = logging.getLogger(__name__)


def missed_events(journal: Any, committed: Ledger, before: int, tasks: list, config: LabellingConfig) -> list:
    """Return the label events that bring the journal in line with Label Studio's annotations.

    Parameters
    ----------
    journal : AnnotationJournal
    committed : Ledger
        The published campaign's ledger (not modified).
    before : int
        The journal's last sequence number when Label Studio's list was requested.
    tasks : list of dict
        Label Studio's export: tasks with ``annotations``.
    config : LabellingConfig

    Returns
    -------
    list of LabelEvent
        Creations and changes Label Studio has that the journal lacks, then
        withdrawals (``label=None``) of annotations Label Studio no longer has.
    """
    ledger = committed.copy()
    live = set()
    for seq, event in journal.events_after(ledger.seq):
        if seq <= before:
            ledger.apply(seq, event)
        else:
            live.add(event.annotation_id)
    known = {annotation: item.label for annotation, item in ledger.pending.items()}
    for annotation, label in ledger.labels.items():
        if annotation not in ledger.forget:
            known[annotation] = ledger.relabel.get(annotation, label)
    seen, missed = set(), []
    for task in tasks:
        annotations = task.get("annotations") if isinstance(task, dict) else None
        for annotation in annotations if isinstance(annotations, list) else []:
            try:
                event = annotation_event(annotation, task, config, f"Label Studio's task {task.get('id')}")
            except ProtocolError as error:
                logger.warning("skcal serve: skipping an annotation Label Studio has: %s", error.message)
                continue
            seen.add(event.annotation_id)
            if event.annotation_id not in live and event.label != known.get(event.annotation_id):
                missed.append(event)
    gone = [annotation for annotation in known if annotation not in seen and annotation not in live]
    return missed + [LabelEvent(annotation, None, None, None) for annotation in gone]


__all__ = ["missed_events"]
