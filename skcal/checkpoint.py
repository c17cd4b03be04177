r"""Checkpoint files of a campaign: format, integrity and atomic writing.

A checkpoint is one file, ``<directory>/checkpoint.pt``::

    SKCAL-CHECKPOINT 2\n
    sha256 <64 hex digits of the payload>\n
    <payload: torch.save of the campaign state>

The payload is :meth:`ContinualActiveClassifier.campaign_state` (tensors and
plain Python values only), read with ``torch.load(weights_only=True)``, so
loading executes no code. Before anything is handed to the estimator, the
checksum must match (any changed byte is caught) and the contents must be
consistent: every key present, labels inside the class range, one stored
logit row per point and one logit per class, round ids in order, sparse
indices inside the matrix. Every failure is a :class:`CheckpointError`, and
the estimator is left untouched.

The file is written to a temporary file, flushed to disk and moved into place
with ``os.replace``, so a crash while writing leaves the previous checkpoint
intact; temporary files an interrupted save left behind are removed by the
next save. The estimator's configuration is not stored: build the estimator
with the same parameters, then load (as with skorch's ``load_params``).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from sklearn.exceptions import NotFittedError

from ._version import __version__ as SKCAL_VERSION
from .exceptions import CheckpointError
from .history import LabelledHistory
from .utils.io import atomic_write
from .utils.network import check_optimizer_state, check_state_dict
from .utils.validation import check_classes

FORMAT_VERSION = 2
FILENAME = "checkpoint.pt"
MAGIC = b"SKCAL-CHECKPOINT"
_TEMPORARY_PREFIX = f".{FILENAME}."
_TEMPORARY_SUFFIX = ".tmp"
_KEYS = ("module", "optimizer", "history", "rounds", "classes", "rng", "training_log")
_ROUND_KEYS = ("round", "strategy", "n_new", "n_history", "epochs", "samples_backpropagated", "train_seconds")


class Checkpointable(Protocol):
    """What a checkpoint needs of an estimator (a :class:`~skcal.ContinualActiveClassifier`).

    Attributes
    ----------
    device : str, torch.device or None
        Where the restored history goes (None: the CPU).
    """

    device: Any

    def __sklearn_is_fitted__(self) -> bool:
        """Whether the seed round has trained."""

    def campaign_state(self) -> dict:
        """Return the campaign as tensors and plain values."""

    def load_campaign_state(self, state: dict) -> Any:
        """Continue the campaign in ``state``, or raise and change nothing.

        Parameters
        ----------
        state : dict
            A campaign state, as ``campaign_state()`` returns it.

        Returns
        -------
        Checkpointable
            The estimator itself.
        """


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into Python values, which ``weights_only`` accepts."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return value


def save_checkpoint(net: Checkpointable, directory: str | Path) -> Path:
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
    if not net.__sklearn_is_fitted__():
        raise NotFittedError("Nothing to checkpoint yet: fit the seed round first.")
    state = net.campaign_state()
    classes = np.asarray(state["classes"])
    state["classes"] = {"kind": classes.dtype.kind, "values": classes.tolist()}
    state = {"format": FORMAT_VERSION, "skcal_version": SKCAL_VERSION, **_plain(state)}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    header = MAGIC + b" %d\nsha256 %s\n" % (FORMAT_VERSION, hashlib.sha256(payload).hexdigest().encode())

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(directory)
    target = directory / FILENAME
    with atomic_write(target, prefix=f"{_TEMPORARY_PREFIX}{os.getpid()}.", suffix=_TEMPORARY_SUFFIX) as file:
        file.write(header)
        file.write(payload)
    return target


def _remove_stale_temporaries(directory: Path) -> None:
    """Remove temporary files of saves that were interrupted: their writer process is gone."""
    for stale in directory.glob(f"{_TEMPORARY_PREFIX}*{_TEMPORARY_SUFFIX}"):
        pid = stale.name[len(_TEMPORARY_PREFIX) :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue  # another process is saving into this folder right now
        if stale.is_file():
            stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_checkpoint(path: str | Path) -> dict:
    """Read and verify a checkpoint file: its format, checksum and contents.

    Parameters
    ----------
    path : str or Path
        The checkpoint file.

    Returns
    -------
    dict
        The campaign state, ``classes`` as an array and ``history`` as a
        :class:`~skcal.LabelledHistory` on the CPU.

    Raises
    ------
    FileNotFoundError
        No such file.
    CheckpointError
        Anything else wrong with it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No checkpoint at {path}.")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise CheckpointError(f"{path} cannot be read: {error}") from None
    first, _, rest = raw.partition(b"\n")
    second, _, payload = rest.partition(b"\n")
    if not first.startswith(MAGIC + b" "):
        raise CheckpointError(f"{path} is not an skcal checkpoint (format {FORMAT_VERSION}), or its header is corrupt.")
    if first != MAGIC + b" %d" % FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {first[len(MAGIC) + 1 :].decode(errors='replace')!r}; "
            f"this skcal ({SKCAL_VERSION}) reads format {FORMAT_VERSION}."
        )
    if second != b"sha256 " + hashlib.sha256(payload).hexdigest().encode():
        raise CheckpointError(f"{path} is corrupt: its checksum does not match its contents (truncated or corrupt).")
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a readable skcal checkpoint: {error}") from None
    try:
        return _checked(state)
    except Exception as error:  # whatever a crafted payload trips over, it is a bad checkpoint
        raise CheckpointError(f"{path} has inconsistent contents: {type(error).__name__}: {error}") from None


def _require(condition: Any, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _checked(state: Any) -> dict:
    """Validate the payload's structure and consistency; return it with classes and history rebuilt."""
    _require(isinstance(state, dict), "the payload is not a dict")
    _require(all(t.layout == torch.strided for t in _tensors(state)), "a tensor is not a dense (strided) tensor")
    missing = [key for key in _KEYS if key not in state]
    _require(not missing, f"missing entries {missing}")
    _require(isinstance(state["module"], dict), "'module' is not a state dict")
    _require(all(isinstance(value, torch.Tensor) for value in state["module"].values()), "'module' holds non-tensors")
    _require(
        all(not t.is_floating_point() or bool(torch.isfinite(t).all()) for t in state["module"].values()),
        "the module's weights are not finite",
    )
    optimizer = state["optimizer"]
    _require(isinstance(optimizer, dict) and {"state", "param_groups"} <= set(optimizer), "'optimizer' is malformed")

    values, kind = state["classes"]["values"], state["classes"]["kind"]
    _require(isinstance(values, list) and len(values) > 0, "'classes' is empty")
    classes = np.array(values, dtype=str if kind in "US" else None)
    _require(classes.dtype.kind in "biuUS", f"'classes' has labels of dtype {classes.dtype}")
    _require(classes.ndim == 1 and len(np.unique(classes)) == len(classes), "'classes' has duplicates")
    n_classes = len(classes)

    history = state["history"]
    y, logits, rounds = history["y"], history["logits"], history["rounds"]
    n = len(y)
    _require(n > 0, "the history is empty")
    _require(y.dtype == torch.int64 and y.ndim == 1, "history labels are not a 1-D int64 tensor")
    _require(int(y.min()) >= 0 and int(y.max()) < n_classes, f"history labels outside the {n_classes} classes")
    _require(
        logits.ndim == 2 and tuple(logits.shape) == (n, n_classes),
        f"stored logits have shape {tuple(logits.shape)}, expected ({n}, {n_classes})",
    )
    _require(bool(torch.isfinite(logits.float()).all()), "stored logits are not finite in float32")
    _require(rounds.dtype == torch.int64 and tuple(rounds.shape) == (n,), "round ids do not match the labels")
    _require(int(rounds[0]) >= 0 and bool((rounds.diff() >= 0).all()), "round ids are not in order from 0")
    records = state["rounds"]
    _require(isinstance(records, list) and len(records) > int(rounds[-1]), "'rounds' does not match the history")
    for position, record in enumerate(records):
        _require(isinstance(record, dict) and all(key in record for key in _ROUND_KEYS), f"round {position} malformed")
        _require(record["round"] == position, f"round record {position} has id {record['round']}")
        # points withdrawn later (ContinualActiveClassifier.forget) are counted in n_forgotten
        forgotten = record.get("n_forgotten", 0)
        _require(isinstance(forgotten, int) and 0 <= forgotten <= record["n_new"], f"round {position}'s n_forgotten")
        _require(
            int((rounds == position).sum()) == record["n_new"] - forgotten, f"round {position}'s n_new does not match"
        )
    _check_features(history, n)
    retained = history.get("retained")
    if retained is not None:
        _require(isinstance(retained, torch.Tensor) and retained.ndim == 1, "the replay memory is malformed")
        _require(len(retained) == len(torch.unique(retained)), "the replay memory has duplicate positions")
        _require(len(retained) == 0 or (int(retained.min()) >= 0 and int(retained.max()) < n), "bad memory positions")
        _require(0 <= int(history.get("retained_seen", n)) <= n, "the replay memory has seen more points than exist")
    deferred = history.get("deferred")
    if deferred is not None:
        _require(isinstance(deferred, torch.Tensor) and deferred.ndim == 1, "the deferred stop set is malformed")
        _require(len(deferred) == len(torch.unique(deferred)), "the deferred stop set has duplicate positions")
        _require(len(deferred) == 0 or (int(deferred.min()) >= 0 and int(deferred.max()) < n), "bad deferred positions")

    rng = state["rng"]
    _require(isinstance(rng, dict) and rng.get("bit_generator") == "PCG64", "'rng' is not a PCG64 generator state")
    np.random.default_rng().bit_generator.state = rng  # raises on a malformed state
    _require(isinstance(state["training_log"], list), "'training_log' is not a list")
    _require(all(isinstance(epoch, dict) for epoch in state["training_log"]), "'training_log' holds non-dicts")
    return {**state, "classes": classes, "history": LabelledHistory.from_state(history)}


def _tensors(value: Any) -> list:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors(item)]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors(item)]
    return []


def _check_features(history: dict, n: int) -> None:
    features, kind = history["features"], history["kind"]
    if kind == "sparse":
        data, indices, indptr = features["data"], features["indices"], features["indptr"]
        n_features = features["n_features"]
        _require(isinstance(n_features, int) and n_features > 0, "sparse features have no width")
        _require(tuple(indptr.shape) == (n + 1,) and int(indptr[0]) == 0, "sparse row pointers do not match")
        _require(bool((indptr.diff() >= 0).all()) and int(indptr[-1]) == len(data) == len(indices), "bad row pointers")
        _require(len(indices) == 0 or (int(indices.min()) >= 0 and int(indices.max()) < n_features), "bad indices")
        _require(bool(torch.isfinite(data).all()), "sparse features are not finite")
        return
    _require(kind in ("dense", "dict"), f"unknown feature kind {kind!r}")
    _require(isinstance(features, dict) == (kind == "dict"), f"features do not have the {kind} layout")
    arrays = features.values() if kind == "dict" else [features]
    for array in arrays:
        _require(isinstance(array, torch.Tensor) and len(array) == n, "features do not match the labels")
        _require(kind == "dict" or array.dtype == torch.float32, f"dense features of dtype {array.dtype}")
        _require(not array.is_floating_point() or bool(torch.isfinite(array).all()), "features are not finite")


def load_checkpoint(net: Checkpointable, directory: str | Path) -> Checkpointable:
    """Restore ``net`` from ``directory/checkpoint.pt``; the next ``partial_fit`` continues the campaign.

    Every check runs before ``net`` changes, and a failure while loading
    into it restores it: on any error it is left as it was.

    Parameters
    ----------
    net : ContinualActiveClassifier
        Built with the parameters the checkpoint was made with (initialised here if needed).
    directory : str or Path
        The folder holding ``checkpoint.pt``.

    Returns
    -------
    ContinualActiveClassifier
        ``net``.

    Raises
    ------
    FileNotFoundError
        No checkpoint in ``directory``.
    CheckpointError
        A truncated, corrupt or inconsistent file, another checkpoint
        format, or a module or optimizer that does not match.
    """
    path = Path(directory) / FILENAME
    state = read_checkpoint(path)
    state["history"].to(net.device if net.device is not None else "cpu")
    try:
        net.load_campaign_state(state)
    except Exception as error:  # the estimator rolled itself back; any mismatch is a bad checkpoint for it
        raise CheckpointError(f"{path} cannot be loaded into this estimator: {type(error).__name__}: {error}") from None
    return net


class CampaignState:
    """The campaign as tensors and plain values, and checkpoints of it, for :class:`~skcal.ContinualActiveClassifier`.

    A mixin: the estimator's state goes in and out of a checkpoint through
    these methods, and this module never imports the estimator.
    """

    def save_checkpoint(self, directory: Any) -> Any:
        """Write the campaign state (module, optimizer, history, ``rounds_``, RNG) atomically.

        See :mod:`skcal.checkpoint`.

        Parameters
        ----------
        directory : str or Path
            Receives ``checkpoint.pt``.

        Returns
        -------
        Path
            The checkpoint file.

        Notes
        -----
        Under an accelerator every process must call it; the main process
        writes the file (the unwrapped module's weights) and the others wait
        for it, so :meth:`load_checkpoint` on every process finds it when the
        directory is shared.
        """
        return self.processes().on_main_process(lambda: save_checkpoint(self, directory), what="save_checkpoint")

    def load_checkpoint(self, directory: Any) -> CampaignState:
        """Restore a campaign saved by :meth:`save_checkpoint`; nothing changes if it fails.

        Parameters
        ----------
        directory : str or Path
            The folder holding ``checkpoint.pt``.

        Returns
        -------
        self
            The estimator, restored.
        """
        return load_checkpoint(self, directory)

    def campaign_state(self) -> dict:
        """Return the campaign as tensors and plain values: what a checkpoint stores.

        Returns
        -------
        dict
            ``module``, ``optimizer`` (state dicts), ``history``
            (:meth:`LabelledHistory.state`), ``rounds``, ``classes``, ``rng``
            (the generator's state) and ``training_log`` (skorch's history).
        """
        return {
            "module": {key: value.cpu() for key, value in self.unwrapped_module().state_dict().items()},
            "optimizer": self.optimizer_.state_dict(),
            "history": self.labelled_history_.state(),
            "rounds": [dict(record) for record in self.rounds_],
            "classes": np.asarray(self.classes_),
            "rng": self.rng_.bit_generator.state,
            "training_log": [dict(epoch) for epoch in self.history],
            "n_features_in": getattr(self, "n_features_in_", None),
            "feature_names_in": None if not hasattr(self, "feature_names_in_") else list(self.feature_names_in_),
        }

    def load_campaign_state(self, state: dict) -> CampaignState:
        """Continue the campaign in ``state`` (from :meth:`campaign_state`); nothing changes if it fails.

        The module is initialised if needed (sized from the stored history
        and classes, with the output grown if ``grow_output`` added classes),
        then the weights, optimizer state, history, ``rounds_``, ``rng_`` and
        skorch's training log are replaced.

        Parameters
        ----------
        state : dict
            As :meth:`campaign_state` returns it, with ``history`` already a
            :class:`LabelledHistory` and ``classes`` an array.

        Returns
        -------
        self
            The estimator, at the state's round.

        Raises
        ------
        ValueError
            If the module or optimizer does not match the state (the message
            names the first mismatch).
        """
        if self.classes is not None and not self.grow_output:
            declared = check_classes(self.classes)
            if len(declared) != len(state["classes"]) or np.any(declared != np.sort(np.asarray(state["classes"]))):
                raise ValueError(f"classes={declared.tolist()} differs from the state's {list(state['classes'])}")
        with self._rolled_back_on_failure():
            self.labelled_history_, self.fitted_classes_ = state["history"], np.asarray(state["classes"])
            for attribute in ("n_features_in_", "feature_names_in_"):
                self.__dict__.pop(attribute, None)
            if state.get("n_features_in") is not None:
                self.n_features_in_ = int(state["n_features_in"])
            if state.get("feature_names_in") is not None:
                self.feature_names_in_ = np.asarray(state["feature_names_in"], dtype=object)
            if not self.initialized_:
                with torch.random.fork_rng(devices=[]):  # weights about to be replaced: leave the user's RNG alone
                    self.initialize()
            self._widen_output_to_classes()
            module = self.unwrapped_module()
            check_state_dict(module, state["module"])
            module.load_state_dict(state["module"])
            self.initialize_optimizer()
            check_optimizer_state(self.optimizer_, state["optimizer"])
            self.optimizer_.load_state_dict(state["optimizer"])
            self.rounds_ = [dict(record) for record in state["rounds"]]
            rng = np.random.default_rng()
            rng.bit_generator.state = state["rng"]
            self.rng_ = rng
            self.history.clear()
            for epoch in state["training_log"]:
                self.history.append(dict(epoch))
            # the stored points must go through the module and come out as one finite logit per class
            logits = self._logits(self.labelled_history_.batch(torch.arange(1)).X, device="cpu")
            if logits.shape != (1, len(self.fitted_classes_)) or not bool(torch.isfinite(logits).all()):
                raise ValueError(f"the module gives {tuple(logits.shape)} logits (finite: {logits.isfinite().all()})")
        return self


__all__ = [
    "CampaignState",
    "CheckpointError",
    "Checkpointable",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
]
