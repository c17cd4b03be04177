"""Checkpoints of a campaign: everything a resumed ``ContinualActiveClassifier`` needs.

A checkpoint is one file, ``<directory>/checkpoint.pt``, holding only tensors
and plain Python values, so it is read with ``torch.load(weights_only=True)``
and loading it executes no code. It is written to a temporary file, flushed to
disk and moved into place with ``os.replace``, so a crash while writing leaves
the previous checkpoint intact. The estimator's configuration is not stored:
build the estimator with the same parameters, then load (as with skorch's
``load_params``); a module that does not match is rejected before anything
changes.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ._version import __version__ as SKCAL_VERSION
from .history import LabelledHistory

if TYPE_CHECKING:
    from .estimator import ContinualActiveClassifier

FORMAT_VERSION = 1
FILENAME = "checkpoint.pt"


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded: corrupt, of another format, or for another module."""


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into Python values, which ``weights_only`` accepts."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return value


def _plain_classes(classes: np.ndarray) -> dict:
    return {"kind": classes.dtype.kind, "values": classes.tolist()}


def save_checkpoint(net: ContinualActiveClassifier, directory: str | Path) -> Path:
    """Write ``net``'s campaign state to ``directory/checkpoint.pt``, atomically.

    Parameters
    ----------
    net : ContinualActiveClassifier
        A fitted estimator (at least the seed round done).
    directory : str or Path
        Created if missing.

    Returns
    -------
    Path
        The checkpoint file.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        Before the seed round.
    """
    from sklearn.exceptions import NotFittedError

    if not net._has_history():
        raise NotFittedError("Nothing to checkpoint yet: fit the seed round first.")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        "format": FORMAT_VERSION,
        "skcal_version": SKCAL_VERSION,
        "module": {key: value.cpu() for key, value in net.module_.state_dict().items()},
        "optimizer": net.optimizer_.state_dict(),
        "history": net.labelled_history_.state(),
        "rounds": _plain(net.rounds_),
        "classes": _plain_classes(np.asarray(net.classes_)),
        "rng": _plain(net.rng_.bit_generator.state),
        "skorch_history": _plain([dict(epoch) for epoch in net.history]),
    }
    target = directory / FILENAME
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{FILENAME}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def _read(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"No checkpoint at {path}.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, OSError) as error:
        raise CheckpointError(f"{path} is not a readable skcal checkpoint (truncated or corrupt): {error}") from None
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(f"{path} is not an skcal checkpoint.")
    if state["format"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {state['format']} (written by skcal {state.get('skcal_version')}); "
            f"this skcal ({SKCAL_VERSION}) reads format {FORMAT_VERSION}."
        )
    return state


def _check_module(net: ContinualActiveClassifier, saved: dict, path: Path) -> None:
    current = net.module_.state_dict()
    missing, unexpected = sorted(set(current) - set(saved)), sorted(set(saved) - set(current))
    if missing or unexpected:
        raise CheckpointError(
            f"{path} is for a different module: missing {missing[:5]}, unexpected {unexpected[:5]}. "
            "Build the estimator with the parameters the checkpoint was made with."
        )
    shapes = [
        (key, tuple(saved[key].shape), tuple(value.shape))
        for key, value in current.items()
        if tuple(saved[key].shape) != tuple(value.shape)
    ]
    if shapes:
        key, old, new = shapes[0]
        raise CheckpointError(f"{path} is for a different module: {key} has shape {old} there, {new} here.")


def load_checkpoint(net: ContinualActiveClassifier, directory: str | Path) -> ContinualActiveClassifier:
    """Restore ``net`` from ``directory/checkpoint.pt``; the next ``partial_fit`` continues the campaign.

    Every check runs before ``net`` changes: on any error it is left as it was.

    Parameters
    ----------
    net : ContinualActiveClassifier
        Built with the parameters the checkpoint was made with (initialised here if needed).
    directory : str or Path

    Returns
    -------
    ContinualActiveClassifier
        ``net``.

    Raises
    ------
    FileNotFoundError
        No checkpoint in ``directory``.
    CheckpointError
        A truncated or corrupt file, another checkpoint format, or another module.
    """
    path = Path(directory) / FILENAME
    state = _read(path)
    kind, values = state["classes"]["kind"], state["classes"]["values"]
    classes = np.array(values, dtype=str if kind in "US" else None)
    history = LabelledHistory.from_state(state["history"], net.device)

    with net._restored_on_failure():
        # the history and classes first: a module sized from the data is initialised to match them
        net.labelled_history_, net.fitted_classes_ = history, classes
        if not net.initialized_:
            net.initialize()
        _check_module(net, state["module"], path)
    net.module_.load_state_dict(state["module"])
    net.optimizer_.load_state_dict(state["optimizer"])
    net.rounds_ = list(state["rounds"])
    net.rng_ = np.random.default_rng()
    net.rng_.bit_generator.state = state["rng"]
    net.history.clear()
    for epoch in state["skorch_history"]:
        net.history.append(epoch)
    return net


__all__ = ["CheckpointError", "load_checkpoint", "save_checkpoint"]
