"""Atomic commits of the served campaign in its state folder.

:class:`CampaignStore` commits a campaign to disk atomically: the
checkpoint (:meth:`~skcal.ContinualActiveClassifier.save_checkpoint`) and the
ledger go to a new folder, which a pointer file, replaced with ``os.replace``,
then names. The ledger records the journal position it has used; a backend
restarted from the commit replays the journal's later events. Replaying an
event twice is harmless (a label event for a trained annotation with the
same label changes nothing), so the position can safely be that of the
oldest annotation still pending.

A commit that is corrupt (unreadable ledger or checkpoint, or the two
disagree) raises :class:`~skcal.serve.campaign.CorruptCommitError`: the
backend moves it aside (:meth:`CampaignStore.quarantine`, into
``<folder>/corrupt/``, never deleted) and rebuilds the campaign from the
journal, which holds every label. A sound checkpoint made by another
factory's classifier is a :class:`~skcal.serve.campaign.CampaignStateError`:
a setting to fix, not damage to repair.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from pathlib import Path

from ..checkpoint import FILENAME as CHECKPOINT_FILENAME
from ..checkpoint import CheckpointError, read_checkpoint
from ..estimator import ContinualActiveClassifier
from ..utils.io import atomic_write
from .campaign import Campaign, CampaignStateError, CorruptCommitError, Ledger

LEDGER_FILENAME = "ledger.json"
POINTER_FILENAME = "CURRENT"
COMMITS_FOLDER = "commits"
CORRUPT_FOLDER = "corrupt"
LEDGER_FORMAT = 1


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
            raise CorruptCommitError(f"{pointer} does not name a commit folder: it is not text.") from None
        if not name or "/" in name or name.startswith("."):
            raise CorruptCommitError(f"{pointer} does not name a commit folder: {name!r}.")
        folder = self.commits / name
        if not (folder / LEDGER_FILENAME).is_file():
            raise CorruptCommitError(f"{pointer} names {folder}, which has no {LEDGER_FILENAME}.")
        return folder

    def quarantine(self) -> Path:
        """Move the newest commit (and ``CURRENT``) aside, into ``<folder>/corrupt/``; never delete it.

        Returns
        -------
        Path
            Where it went.
        """
        target = self.folder / CORRUPT_FOLDER / time.strftime("%Y%m%dT%H%M%S") / secrets.token_hex(3)
        target.mkdir(parents=True)
        pointer = self.folder / POINTER_FILENAME
        if pointer.is_file():
            try:
                name = pointer.read_bytes().decode("utf-8").strip()
            except UnicodeDecodeError:
                name = ""
            folder = self.commits / name
            if name and "/" not in name and not name.startswith(".") and folder.is_dir():
                os.replace(folder, target / name)
            os.replace(pointer, target / POINTER_FILENAME)
        _fsync_folder(self.folder)
        return target

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
        CorruptCommitError
            When the commit is unreadable, truncated or corrupt, or its ledger
            does not match its checkpoint (point count or labels).
        CampaignStateError
            When the checkpoint is sound but not for this factory's classifier.
        """
        folder = self.current()
        if folder is None:
            return None
        try:
            stored = json.loads((folder / LEDGER_FILENAME).read_text())
            ledger = Ledger.from_json(stored["ledger"])
            campaign_id, commit = str(stored["campaign"]), int(stored["commit"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise CorruptCommitError(f"{folder / LEDGER_FILENAME} is unreadable: {error}") from None
        classifier = None
        if (folder / CHECKPOINT_FILENAME).is_file():
            from sklearn.base import clone

            try:
                read_checkpoint(folder / CHECKPOINT_FILENAME)
            except (CheckpointError, OSError) as error:
                raise CorruptCommitError(f"{folder}'s checkpoint is damaged: {error}") from None
            try:
                classifier = clone(template).load_checkpoint(folder)
            except (CheckpointError, FileNotFoundError) as error:
                raise CampaignStateError(
                    f"{folder}'s checkpoint cannot be loaded with this factory's classifier: {error}"
                ) from None
            history_labels = classifier.classes_[classifier.labelled_history_.y.cpu().numpy()]
            expected = [ledger.labels[annotation] for annotation in ledger.order]
            if len(expected) != len(history_labels) or list(history_labels) != expected:
                raise CorruptCommitError(
                    f"{folder}: the checkpoint's {len(history_labels)} labelled points do not match the ledger's "
                    f"{len(expected)} annotations."
                )
        elif ledger.order:
            raise CorruptCommitError(
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


__all__ = ["COMMITS_FOLDER", "CORRUPT_FOLDER", "CampaignStore", "LEDGER_FILENAME", "POINTER_FILENAME"]
