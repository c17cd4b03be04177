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
it while a round trains, and a round that fails leaves nothing half done.

:class:`CampaignStore` commits a campaign to disk atomically: the
checkpoint (:meth:`~skcal.ContinualActiveClassifier.save_checkpoint`) and the
ledger go to a new folder, which a pointer file, replaced with ``os.replace``,
then names. The ledger records the journal position it has used; a backend
restarted from the commit replays the journal's later events. Replaying an
event twice is harmless (a label event for a trained annotation with the
same label changes nothing), so the position can safely be that of the
oldest annotation still pending.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import FILENAME as CHECKPOINT_FILENAME
from ..checkpoint import CheckpointError
from ..estimator import ContinualActiveClassifier
from ..utils.io import atomic_write
from .protocol import LabelEvent

LEDGER_FILENAME = "ledger.json"
POINTER_FILENAME = "CURRENT"
COMMITS_FOLDER = "commits"
LEDGER_FORMAT = 1


class CampaignStateError(RuntimeError):
    """A state folder whose commit cannot be used (corrupt, or for another labelling config)."""


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
    seq : int
        The newest journal event applied.
    """

    order: list = field(default_factory=list)
    labels: dict = field(default_factory=dict)
    tasks: dict = field(default_factory=dict)
    pending: dict = field(default_factory=dict)
    relabel: dict = field(default_factory=dict)
    forget: dict = field(default_factory=dict)
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


def new_campaign() -> Campaign:
    """Start an empty campaign with a fresh id.

    Returns
    -------
    Campaign
    """
    return Campaign(campaign_id=secrets.token_hex(4), classifier=None, ledger=Ledger())


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
    when at least ``train_every`` labels are pending, or when ``train_now``
    and any are. Withdrawing every trained point starts a new campaign.

    Parameters
    ----------
    current : Campaign
    events : list of (int, LabelEvent)
        Journal events after ``current.ledger.seq``.
    pipeline : ServedPipeline
    loader : TaskValueLoader
        Turns pending task values into pipeline inputs.
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
        Whatever loading the inputs or the round raised; ``current`` is intact.
    """
    ledger = current.ledger.copy()
    for seq, event in events:
        ledger.apply(seq, event)
    due = len(ledger.pending) >= train_every or (train_now and ledger.pending)
    if not due and not ledger.has_corrections:
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
    if due:
        pending = list(ledger.pending.items())
        features = pipeline.features(loader.load([item.value for _, item in pending], config))
        labels = np.array([item.label for _, item in pending], dtype=str)
        if classifier is None:
            classifier = pipeline.new_classifier()
        classifier.partial_fit(features, labels)
        for annotation, item in pending:
            ledger.order.append(annotation)
            ledger.labels[annotation] = item.label
            ledger.tasks[annotation] = item.task_id
        ledger.pending.clear()
    return Campaign(campaign_id, classifier, ledger, current.commit + 1), True


class CampaignStore:
    """Commits of a served campaign in a state folder, each one atomic.

    Layout::

        <folder>/CURRENT                 the name of the newest commit folder
        <folder>/commits/<n>-<hex>/      checkpoint.pt (once trained) and ledger.json

    A commit writes a new folder (each file flushed to disk), then replaces
    ``CURRENT``; a crash at any point leaves the previous commit in force.
    Older commit folders, and folders a crash left unnamed, are removed
    after the next commit and at start.

    Parameters
    ----------
    folder : str or Path
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.commits = self.folder / COMMITS_FOLDER

    def save(self, campaign: Campaign, settings: dict) -> Path:
        """Write ``campaign`` as the newest commit.

        Parameters
        ----------
        campaign : Campaign
        settings : dict
            Plain values stored with the ledger (project, classes, ...).

        Returns
        -------
        Path
            The commit folder.
        """
        self.commits.mkdir(parents=True, exist_ok=True)
        target = self.commits / f"{campaign.commit:06d}-{secrets.token_hex(3)}"
        target.mkdir()
        try:
            if campaign.classifier is not None:
                campaign.classifier.save_checkpoint(target)
            ledger = {
                "format": LEDGER_FORMAT,
                "campaign": campaign.campaign_id,
                "commit": campaign.commit,
                "model_version": campaign.model_version,
                "saved_at": time.time(),
                "ledger": campaign.ledger.to_json(),
                **settings,
            }
            _write_durably(target / LEDGER_FILENAME, json.dumps(ledger, indent=1).encode())
            _fsync_folder(target)
            _fsync_folder(self.commits)
            _write_durably(self.folder / POINTER_FILENAME, target.name.encode())
            _fsync_folder(self.folder)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        self.remove_stale(keep=target.name)
        return target

    def current(self) -> Path | None:
        """Return the newest commit folder, or None.

        Returns
        -------
        Path or None
        """
        pointer = self.folder / POINTER_FILENAME
        if not pointer.is_file():
            return None
        try:
            name = pointer.read_bytes().decode("utf-8").strip()
        except UnicodeDecodeError:
            raise CampaignStateError(f"{pointer} does not name a commit folder: it is not text.") from None
        if not name or "/" in name or name.startswith("."):
            raise CampaignStateError(f"{pointer} does not name a commit folder: {name!r}.")
        folder = self.commits / name
        if not (folder / LEDGER_FILENAME).is_file():
            raise CampaignStateError(f"{pointer} names {folder}, which has no {LEDGER_FILENAME}.")
        return folder

    def remove_stale(self, keep: str | None = None) -> None:
        """Remove commit folders other than ``keep`` (by default the current one).

        Parameters
        ----------
        keep : str, optional
        """
        if keep is None:
            current = self.current()
            keep = None if current is None else current.name
        if not self.commits.is_dir():
            return
        for folder in self.commits.iterdir():
            if folder.name != keep:
                shutil.rmtree(folder, ignore_errors=True)

    def load(self, template: ContinualActiveClassifier) -> tuple[Campaign, dict] | None:
        """Load the newest commit, the classifier into a copy of ``template``.

        Parameters
        ----------
        template : ContinualActiveClassifier
            Untrained, built as the campaign's was (the factory's classifier).

        Returns
        -------
        (Campaign, dict) or None
            The campaign and the settings stored with it; None without a commit.

        Raises
        ------
        CampaignStateError
            When the commit is unreadable or its ledger does not match its
            checkpoint (point count or labels).
        """
        folder = self.current()
        if folder is None:
            return None
        try:
            stored = json.loads((folder / LEDGER_FILENAME).read_text())
            ledger = Ledger.from_json(stored["ledger"])
            campaign_id, commit = str(stored["campaign"]), int(stored["commit"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CampaignStateError(f"{folder / LEDGER_FILENAME} is unreadable: {error}") from None
        classifier = None
        if (folder / CHECKPOINT_FILENAME).is_file():
            from sklearn.base import clone

            try:
                classifier = clone(template).load_checkpoint(folder)
            except (CheckpointError, FileNotFoundError) as error:
                raise CampaignStateError(
                    f"{folder}'s checkpoint cannot be loaded with this factory's classifier: {error}"
                ) from None
            history_labels = classifier.classes_[classifier.labelled_history_.y.cpu().numpy()]
            expected = [ledger.labels[annotation] for annotation in ledger.order]
            if len(expected) != len(history_labels) or list(history_labels) != expected:
                raise CampaignStateError(
                    f"{folder}: the checkpoint's {len(history_labels)} labelled points do not match the ledger's "
                    f"{len(expected)} annotations."
                )
        elif ledger.order:
            raise CampaignStateError(
                f"{folder}: the ledger lists {len(ledger.order)} trained annotations but there is no checkpoint."
            )
        return Campaign(campaign_id, classifier, ledger, commit), stored


def _write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a flushed temporary file and ``os.replace``."""
    with atomic_write(path, prefix=f".{path.name}.") as stream:
        stream.write(data)


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (new and renamed files) to disk, where the platform allows it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


__all__ = ["Campaign", "CampaignStateError", "CampaignStore", "Ledger", "PendingLabel", "advance", "new_campaign"]
