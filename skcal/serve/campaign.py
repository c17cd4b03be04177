"""The served campaign: which annotation is which labelled point, rounds, and atomic commits.

Three pieces of state move together:

- the :class:`Ledger`: for every point of the classifier's labelled history,
  the annotation it came from (in history order) and its label; the
  annotations waiting for the next round (*pending*); and corrections to
  apply before it (labels changed, annotations withdrawn);
- the classifier (a :class:`~skcal.ContinualActiveClassifier`, None before
  the seed round);
- the model version, which names the campaign and its last round.

:func:`advance` makes the next :class:`Campaign` from the current one and new
journal events, on copies: corrections first (``relabel``/``forget`` on the
classifier), then, when enough labels wait (or training was asked for), one
CAL round on the pending labels only (``partial_fit``; the first is the seed
round). The current campaign is never modified, so predictions keep reading
it while a round trains, and a round that fails leaves nothing half done. A
pending label whose input cannot be loaded (an image that cannot be fetched)
is *set aside*: the round trains on the others, and it stays pending, tried
again at every later round, until it loads or its annotation changes.

Campaigns are committed to disk by :class:`~skcal.serve.store.CampaignStore`.
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..estimator import ContinualActiveClassifier
from .protocol import LabelEvent


class CampaignStateError(RuntimeError):
    """A state folder whose commit cannot be used (corrupt, or for another labelling config)."""


class CorruptCommitError(CampaignStateError):
    """The newest commit is damaged (unreadable, truncated, or its ledger and checkpoint disagree)."""


@dataclass
class PendingLabel:
    """An annotation waiting for the next round.

    Attributes
    ----------
    first_seq : int
        Journal position of the event that first brought it (a restart replays from before it).
    task_id : int or None
    value : str
        The task's field (text or image URL).
    label : str
    """

    first_seq: int
    task_id: int | None
    value: str
    label: str


@dataclass
class Ledger:
    """Annotations behind the classifier's labelled points, and what waits for the next round.

    Attributes
    ----------
    order : list of int
        The annotation behind each point of the labelled history, in history order.
    labels : dict of int to str
        The label each of those annotations has in the history.
    tasks : dict of int to int or None
        Their tasks.
    pending : dict of int to PendingLabel
        Annotations not trained on yet, in arrival order.
    relabel : dict of int to str
        Trained annotations whose label changed.
    forget : dict of int to None
        Trained annotations withdrawn (deleted, cancelled, or left without a choice).
    set_aside : dict of int to str
        Pending annotations whose input could not be loaded at the last round
        (an image that cannot be fetched), with the error: they do not count
        towards ``train_every`` and are tried again at every round.
    seq : int
        The newest journal event applied.
    """

    order: list = field(default_factory=list)
    labels: dict = field(default_factory=dict)
    tasks: dict = field(default_factory=dict)
    pending: dict = field(default_factory=dict)
    relabel: dict = field(default_factory=dict)
    forget: dict = field(default_factory=dict)
    set_aside: dict = field(default_factory=dict)
    seq: int = 0

    def copy(self) -> Ledger:
        """Return an independent copy.

        Returns
        -------
        Ledger
        """
        return copy.deepcopy(self)

    def apply(self, seq: int, event: LabelEvent) -> None:
        """Apply one journal event (idempotent for an event already reflected).

        Parameters
        ----------
        seq : int
            Its journal position.
        event : LabelEvent
        """
        annotation = event.annotation_id
        self.seq = max(self.seq, seq)
        self.set_aside.pop(annotation, None)  # changed: its input may load now
        if event.label is None:
            self.pending.pop(annotation, None)
            self.relabel.pop(annotation, None)
            if annotation in self.labels:
                self.forget[annotation] = None
            return
        if annotation in self.labels:
            self.forget.pop(annotation, None)
            if self.labels[annotation] != event.label:
                self.relabel[annotation] = event.label
            else:
                self.relabel.pop(annotation, None)
            return
        previous = self.pending.get(annotation)
        first_seq = previous.first_seq if previous is not None else seq
        self.pending[annotation] = PendingLabel(first_seq, event.task_id, event.value, event.label)

    @property
    def ready(self) -> int:
        """Pending labels that count towards the next round (those not set aside)."""
        return len(self.pending) - len(self.set_aside.keys() & self.pending.keys())

    @property
    def has_corrections(self) -> bool:
        """Whether labels changed or were withdrawn since the last commit."""
        return bool(self.relabel or self.forget)

    def replay_position(self) -> int:
        """Return the journal position a restart replays after: before the oldest pending annotation.

        Returns
        -------
        int
        """
        if self.pending:
            return min(item.first_seq for item in self.pending.values()) - 1
        return self.seq

    def to_json(self) -> dict:
        """Return the committed part (no pending labels or corrections) as plain values.

        Returns
        -------
        dict
        """
        return {
            "order": list(self.order),
            "labels": {str(key): value for key, value in self.labels.items()},
            "tasks": {str(key): value for key, value in self.tasks.items()},
            "seq": self.replay_position(),
        }

    @classmethod
    def from_json(cls, data: dict) -> Ledger:
        """Rebuild the committed ledger of :meth:`to_json`.

        Parameters
        ----------
        data : dict

        Returns
        -------
        Ledger
        """
        order = [int(annotation) for annotation in data["order"]]
        labels = {int(key): str(value) for key, value in data["labels"].items()}
        tasks = {int(key): value for key, value in data.get("tasks", {}).items()}
        if set(order) != set(labels) or len(order) != len(set(order)):
            raise CampaignStateError("the ledger's annotation order and labels do not match.")
        return cls(order=order, labels=labels, tasks=tasks, seq=int(data["seq"]))


@dataclass
class Campaign:
    """One committed state of the served campaign; never modified once published.

    Attributes
    ----------
    campaign_id : str
        Random hex naming the campaign (part of every model version).
    classifier : ContinualActiveClassifier or None
        None before the seed round.
    ledger : Ledger
    commit : int
        Commits so far.
    """

    campaign_id: str
    classifier: ContinualActiveClassifier | None
    ledger: Ledger
    commit: int = 0

    @property
    def n_rounds(self) -> int:
        """Rounds trained so far."""
        return 0 if self.classifier is None else len(self.classifier.rounds_)

    @property
    def model_version(self) -> str:
        """``skcal-<campaign>-untrained``, then ``skcal-<campaign>-round-<k>`` after round k (0 is the seed)."""
        if self.classifier is None:
            return f"skcal-{self.campaign_id}-untrained"
        return f"skcal-{self.campaign_id}-round-{self.n_rounds - 1}"


def new_campaign_id() -> str:
    """Return a fresh random campaign id (8 hex digits).

    Returns
    -------
    str
    """
    return secrets.token_hex(4)


def new_campaign(campaign_id: str | None = None) -> Campaign:
    """Start an empty campaign.

    Parameters
    ----------
    campaign_id : str, optional
        A fresh one by default.

    Returns
    -------
    Campaign
    """
    return Campaign(campaign_id=campaign_id or new_campaign_id(), classifier=None, ledger=Ledger())


def advance(
    current: Campaign,
    events: list,
    pipeline: Any,
    loader: Any,
    config: Any,
    train_every: int,
    train_now: bool = False,
) -> tuple[Campaign, bool]:
    """Apply journal events and, if due, one round; return the next campaign and whether it must be committed.

    ``current`` is not modified. Corrections (changed or withdrawn labels of
    trained points) are applied to a copy of the classifier; a round runs
    when at least ``train_every`` labels are pending (not counting those set
    aside), or when ``train_now`` and any are. It trains on every pending
    label whose input loads; the others are set aside
    (:attr:`Ledger.set_aside`). Withdrawing every trained point starts a new
    campaign.

    Parameters
    ----------
    current : Campaign
    events : list of (int, LabelEvent)
        Journal events after ``current.ledger.seq``.
    pipeline : ServedPipeline
    loader : TaskValueLoader
        Turns pending task values into pipeline inputs (``load_each``: an
        input, or the ``MediaError`` that loading it raised).
    config : LabellingConfig
    train_every : int
    train_now : bool, default=False

    Returns
    -------
    (Campaign, bool)
        The next campaign, and True when it differs from ``current`` in
        what a commit stores (a round ran, or corrections were applied).

    Raises
    ------
    Exception
        Whatever the round (or loading an input, other than a ``MediaError``)
        raised; ``current`` is intact.
    """
    ledger = current.ledger.copy()
    for seq, event in events:
        ledger.apply(seq, event)
    due = ledger.ready >= train_every or (train_now and ledger.pending)
    usable: list = []
    if due:
        pending = list(ledger.pending.items())
        loaded = loader.load_each([item.value for _, item in pending], config)
        ledger.set_aside = {}
        for (annotation, item), value in zip(pending, loaded, strict=True):
            if isinstance(value, Exception):
                ledger.set_aside[annotation] = str(value)
            else:
                usable.append((annotation, item, value))
    if not usable and not ledger.has_corrections:
        return Campaign(current.campaign_id, current.classifier, ledger, current.commit), False
    classifier = None if current.classifier is None else copy.deepcopy(current.classifier)
    campaign_id = current.campaign_id
    if ledger.forget:
        position = {annotation: index for index, annotation in enumerate(ledger.order)}
        positions = [position[annotation] for annotation in ledger.forget]
        if len(positions) == len(ledger.order):
            classifier, campaign_id = None, secrets.token_hex(4)  # every label withdrawn: a new campaign
        else:
            classifier.forget(positions)
        removed = set(ledger.forget)
        ledger.order = [annotation for annotation in ledger.order if annotation not in removed]
        for annotation in removed:
            ledger.labels.pop(annotation, None)
            ledger.tasks.pop(annotation, None)
        ledger.forget.clear()
    if ledger.relabel:
        annotations = list(ledger.relabel)
        position = {annotation: index for index, annotation in enumerate(ledger.order)}
        positions = [position[annotation] for annotation in annotations]
        classifier.relabel(positions, np.array([ledger.relabel[annotation] for annotation in annotations], dtype=str))
        ledger.labels.update(ledger.relabel)
        ledger.relabel.clear()
    if usable:
        features = pipeline.features([value for _, _, value in usable])
        labels = np.array([item.label for _, item, _ in usable], dtype=str)
        if classifier is None:
            classifier = pipeline.new_classifier()
        classifier.partial_fit(features, labels)
        for annotation, item, _ in usable:
            ledger.order.append(annotation)
            ledger.labels[annotation] = item.label
            ledger.tasks[annotation] = item.task_id
            del ledger.pending[annotation]
    return Campaign(campaign_id, classifier, ledger, current.commit + 1), True


__all__ = [
    "Campaign",
    "CampaignStateError",
    "CorruptCommitError",
    "Ledger",
    "PendingLabel",
    "advance",
    "new_campaign",
    "new_campaign_id",
]
