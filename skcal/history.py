"""The labelled history: every point labelled so far, with what replay needs.

The history is the replay memory ``M = D_{1:t-1}`` of the paper's Algorithm 2.
Alongside each point's features and encoded label it keeps the round in which
the point was labelled and the logits the model gave it at the end of that
round (the targets ``z'`` of DER and SD, written once and never overwritten).

Storage grows by doubling its capacity, so appending ``n`` points costs
amortised ``O(n)`` whatever the history's size, and a replay batch is one
indexed gather on the device where training runs.

A round *stages* its new points first (they are then visible to the round as
``staged``, but not to replay draws), and *commits* them with their logits
when training succeeded. :meth:`LabelledHistory.discard` drops a failed
round's points in ``O(1)``, leaving the history exactly as it was.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from .memory import balanced_draw, class_balanced, reservoir
from .utils.data import Features, ValidatedFeatures, concat_rows, feature_shape, move_to, n_rows, take_rows


class _GrowableTensor:
    """A tensor with spare capacity along its first axis."""

    def __init__(self, row_shape: tuple, dtype: torch.dtype, device: Any):
        self.row_shape = tuple(row_shape)
        self.buffer = torch.empty((0, *self.row_shape), dtype=dtype, device=device)

    def reserve(self, rows: int, keep: int) -> None:
        if rows <= len(self.buffer):
            return
        capacity = max(rows, 2 * len(self.buffer), 16)
        # zeros, not empty: touching the pages here, during the copy, keeps
        # first-touch page faults out of every later append.
        grown = torch.zeros((capacity, *self.row_shape), dtype=self.buffer.dtype, device=self.buffer.device)
        grown[:keep] = self.buffer[:keep]
        self.buffer = grown

    def write(self, start: int, values: torch.Tensor) -> None:
        self.reserve(start + len(values), keep=start)
        self.buffer[start : start + len(values)] = values.to(self.buffer.device, self.buffer.dtype)

    def to(self, device: Any) -> None:
        self.buffer = self.buffer.to(device)


class _GrowableCSR:
    """CSR rows with spare capacity; rows are appended, never edited."""

    def __init__(self, n_features: int):
        self.n_features = n_features
        self.data = np.empty(0, dtype=np.float32)
        self.indices = np.empty(0, dtype=np.int64)
        self.indptr = np.zeros(1, dtype=np.int64)

    @staticmethod
    def _grown(array: np.ndarray, size: int, keep: int) -> np.ndarray:
        if size <= len(array):
            return array
        grown = np.empty(max(size, 2 * len(array), 16), dtype=array.dtype)
        grown[:keep] = array[:keep]
        return grown

    def write(self, start: int, values: sp.csr_matrix) -> None:
        nnz_start = int(self.indptr[start])
        nnz_end = nnz_start + values.nnz
        self.data = self._grown(self.data, nnz_end, nnz_start)
        self.indices = self._grown(self.indices, nnz_end, nnz_start)
        self.indptr = self._grown(self.indptr, start + values.shape[0] + 1, start + 1)
        self.data[nnz_start:nnz_end] = values.data
        self.indices[nnz_start:nnz_end] = values.indices
        self.indptr[start + 1 : start + values.shape[0] + 1] = values.indptr[1:] + nnz_start

    def rows(self, start: int, stop: int) -> sp.csr_matrix:
        lo, hi = int(self.indptr[start]), int(self.indptr[stop])
        return sp.csr_matrix(
            (self.data[lo:hi], self.indices[lo:hi], self.indptr[start : stop + 1] - lo),
            shape=(stop - start, self.n_features),
        )

    def take_dense(self, indices: np.ndarray) -> torch.Tensor:
        """Densify the rows ``indices`` in one vectorised pass over their non-zeros."""
        starts = self.indptr[indices]
        lengths = self.indptr[indices + 1] - starts
        row_of_value = np.repeat(np.arange(len(indices)), lengths)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        positions = np.repeat(starts, lengths) + offsets
        dense = np.zeros((len(indices), self.n_features), dtype=np.float32)
        dense[row_of_value, self.indices[positions]] = self.data[positions]
        return torch.from_numpy(dense)


class ReplayBatch:
    """Points drawn from the history for one replay step.

    Features and labels are gathered at once; stored logits and round ids are
    gathered on first access, so methods that do not use them pay nothing.

    Parameters
    ----------
    history : LabelledHistory
        The history the points come from.
    indices : torch.Tensor
        Their positions in the history.
    device : str, torch.device or None, default=None
        Where the batch goes (the training device); None means the history's.

    Attributes
    ----------
    indices : torch.Tensor
        Positions of the points in the history, on the history's device.
    X : torch.Tensor or dict of torch.Tensor
        Their features, dense.
    y : torch.Tensor
        Their encoded labels.
    """

    def __init__(self, history: LabelledHistory, indices: torch.Tensor, device: Any = None):
        self._history = history
        self.device = history.device if device is None else torch.device(device)
        self.indices = indices.to(history.device)
        self.X = move_to(history.take_features(indices), self.device)
        self.y = history._y.buffer[self.indices].to(self.device, non_blocking=True)

    def __len__(self) -> int:
        return len(self.indices)

    @cached_property
    def logits(self) -> torch.Tensor:
        """Logits the model gave the points at the end of their labelling round.

        These are the ``z'`` of the paper's equations (2) and (3).
        """
        return self._history._logits.buffer[self.indices].to(self.device, non_blocking=True)

    @cached_property
    def rounds(self) -> torch.Tensor:
        """The round each point was labelled in."""
        return self._history._rounds.buffer[self.indices].to(self.device)


class LabelledHistory:
    """Every labelled point, in rounds, with its label, round id and stored logits.

    Parameters
    ----------
    device : str or torch.device, default="cpu"
        Where dense features, labels and logits live (the training device).
        Sparse features stay on the CPU as CSR rows and are densified per batch.

    Attributes
    ----------
    n_staged : int
        Points of the current round written but not yet committed.
    retained : ndarray of int64 or None
        Positions replay draws from when the replay memory is bounded
        (:meth:`retain`); None means every committed point.
    deferred : ndarray of int64
        Positions of the points the last round held out of its training (its
        stop set): the next replay round trains on them with its own new
        points (:meth:`new_points`).
    """

    def __init__(self, device: Any = "cpu"):
        self.device = torch.device(device)
        self._n = 0
        self.n_staged = 0
        self._X: Any = None
        self._y: _GrowableTensor | None = None
        self._logits: _GrowableTensor | None = None
        self._rounds: _GrowableTensor | None = None
        self._feature_shape: Any = None
        self._sparse = False
        self.retained: np.ndarray | None = None
        self.deferred = np.empty(0, dtype=np.int64)
        self._retained_seen = 0
        self._version = 0  # changes whenever the committed points change
        self._label_cache: tuple = (None, None)

    def __len__(self) -> int:
        return self._n

    @property
    def is_sparse(self) -> bool:
        """Whether features are stored as sparse CSR rows."""
        return self._sparse

    @property
    def feature_shape(self) -> Any:
        """Shape of one sample (a dict of shapes for dict features), or None if empty."""
        return self._feature_shape

    @property
    def n_rounds(self) -> int:
        """Number of committed rounds."""
        return 0 if self._n == 0 else int(self._rounds.buffer[self._n - 1]) + 1

    # -- writing -----------------------------------------------------------
    def _allocate(self, points: ValidatedFeatures) -> None:
        X = points.data
        self._feature_shape = points.shape
        self._sparse = points.sparse
        if self._sparse:
            self._X = _GrowableCSR(X.shape[1])
        elif isinstance(X, dict):
            self._X = {key: _GrowableTensor(value.shape[1:], value.dtype, self.device) for key, value in X.items()}
        else:
            self._X = _GrowableTensor(X.shape[1:], X.dtype, self.device)
        self._y = _GrowableTensor((), torch.int64, self.device)
        self._rounds = _GrowableTensor((), torch.int64, self.device)

    def stage(self, X: Features | ValidatedFeatures, y: torch.Tensor) -> None:
        """Write a round's new points after the committed ones, without committing them.

        Parameters
        ----------
        X : ValidatedFeatures or Features
            New points. Validated features (from
            :func:`~skcal.utils.validation.validate_features` against this
            history's feature shape) are trusted; plain storage-form features
            are checked against the history's feature shape here.
        y : torch.Tensor
            Their encoded labels.

        Raises
        ------
        ValueError
            If plain features do not have the history's feature shape or sparsity.
        """
        points = X
        if not isinstance(X, ValidatedFeatures):
            points = ValidatedFeatures(X, n_rows(X), feature_shape(X), sp.issparse(X))
        if self._feature_shape is None:
            self._allocate(points)
        elif not isinstance(X, ValidatedFeatures) and (
            points.shape != self._feature_shape or points.sparse != self._sparse
        ):
            raise ValueError(f"New points have feature shape {points.shape}, the history has {self._feature_shape}.")
        X = points.data
        start, count = self._n, points.n_rows
        if isinstance(self._X, dict):
            for key, store in self._X.items():
                store.write(start, X[key])
        else:
            self._X.write(start, X)
        self._y.write(start, y)
        self.n_staged = count

    def commit(self, logits: torch.Tensor, round_id: int, deferred: Any = None) -> None:
        """Make the staged points part of the history, with their end-of-round logits.

        Parameters
        ----------
        logits : torch.Tensor of shape (n_staged, n_classes)
            The model's outputs on the staged points at the end of their round.
        round_id : int
            The round they were labelled in.
        deferred : array-like of int, optional
            Positions, among the staged points, that the round held out of
            its training; they become :attr:`deferred` (replacing the
            previous round's).
        """
        start, count = self._n, self.n_staged
        if len(logits) != count:
            raise ValueError(f"Got logits for {len(logits)} points, {count} are staged.")
        if self._logits is None:
            self._logits = _GrowableTensor(logits.shape[1:], torch.float32, self.device)
        self._logits.write(start, logits.detach())
        self._rounds.write(start, torch.full((count,), round_id, dtype=torch.int64))
        self.deferred = start + np.asarray([] if deferred is None else deferred, dtype=np.int64)
        self._n += count
        self.n_staged = 0
        self._version += 1

    def reserve(self, n_points: int) -> None:
        """Allocate room for ``n_points`` in total, so appends up to it never copy.

        Only useful once the first round fixed the feature shape; for sparse
        features it reserves the row index, not the non-zeros.

        Parameters
        ----------
        n_points : int
            The total number of points expected (e.g. the labelling budget).
        """
        if self._feature_shape is None:
            raise ValueError("reserve() needs the feature shape: call it after the first round.")
        used = self._n + self.n_staged
        stores = [self._y, self._rounds] + ([self._logits] if self._logits is not None else [])
        stores += list(self._X.values()) if isinstance(self._X, dict) else [self._X]
        for store in stores:
            if isinstance(store, _GrowableTensor):
                store.reserve(n_points, keep=used)
            else:
                store.indptr = store._grown(store.indptr, n_points + 1, used + 1)

    def widen_logits(self, n_classes: int) -> None:
        """Give the stored logits ``n_classes`` columns, the new ones a low score.

        Used when the output layer grows for a new class: the model that
        produced a stored row gave the new class no logit, so it gets the
        row's minimum minus 10 (almost no probability after a softmax).

        Parameters
        ----------
        n_classes : int
            The new number of classes.
        """
        if self._logits is None or self._logits.row_shape[0] >= n_classes:
            return
        old = self._logits.buffer[: self._n]
        low = old.min(dim=1, keepdim=True).values - 10 if len(old) else old[:, :1]
        extra = n_classes - self._logits.row_shape[0]
        widened = _GrowableTensor((n_classes,), torch.float32, self.device)
        widened.write(0, torch.cat([old, low.expand(len(old), extra)], dim=1))
        self._logits = widened

    def discard(self) -> None:
        """Drop the staged points; the history is as before :meth:`stage`."""
        self.n_staged = 0

    def mark(self) -> tuple:
        """Return a marker of the committed state, for :meth:`rollback`; ``O(1)``.

        Rows past the committed ones are never read, and committed rows are
        never overwritten, so the marker needs no copy of the data.

        Returns
        -------
        tuple
            The marker, for :meth:`rollback` only.
        """
        return (self._n, self._logits, self.device, self.retained, self._retained_seen, self.deferred)

    def rollback(self, mark: tuple) -> None:
        """Return to the state of :meth:`mark`, dropping rounds staged or committed since.

        Parameters
        ----------
        mark : tuple
            A marker from :meth:`mark`.
        """
        self._n, self._logits, device, self.retained, self._retained_seen, self.deferred = mark
        self.n_staged = 0
        self._version += 1
        if device != self.device:
            self.to(device)

    def retain(self, capacity: int | None, policy: str, rng: np.random.Generator) -> None:
        """Bound the replay memory to ``capacity`` points, updated with the points committed since the last call.

        Every point stays in the history (and labelled); only replay draws are
        limited to :attr:`retained`. See :mod:`skcal.memory` for the policies.

        Parameters
        ----------
        capacity : int or None
            Points kept for replay; None keeps every point (the paper's protocol).
        policy : {"reservoir", "class_balanced"}
            How the retained points are chosen.
        rng : numpy.random.Generator
            The source of the policy's random choices.
        """
        if capacity is None:
            self.retained, self._retained_seen = None, self._n
            return
        if self.retained is None:  # a memory that starts bounded now has seen nothing yet
            self.retained, self._retained_seen = np.empty(0, dtype=np.int64), 0
        if policy == "reservoir":
            retained = reservoir(self.retained, self._retained_seen, self._n, capacity, rng)
        else:
            retained = class_balanced(self.retained, self._labels()[: self._n], self._retained_seen, capacity, rng)
        self.retained, self._retained_seen = retained, self._n

    def _labels(self) -> np.ndarray:
        """Return the committed labels as a numpy array, cached until the committed points change."""
        version, labels = self._label_cache
        if version != self._version:
            labels = self.y.cpu().numpy()
            self._label_cache = (self._version, labels)
        return labels

    def to(self, device: Any, pin: bool = False) -> LabelledHistory:
        """Move dense storage to ``device`` (in place) and return self.

        Parameters
        ----------
        device : str or torch.device
            Where the storage goes.
        pin : bool, default=False
            On the CPU, page-lock the storage so batches copy to a GPU faster.

        Returns
        -------
        LabelledHistory
            The history itself.
        """
        self.device = torch.device(device)
        stores = [self._y, self._logits, self._rounds]
        stores += list(self._X.values()) if isinstance(self._X, dict) else [self._X]
        for store in stores:
            if isinstance(store, _GrowableTensor):
                store.to(self.device)
                if pin and self.device.type == "cpu":
                    store.buffer = store.buffer.pin_memory()
        return self

    # -- reading -----------------------------------------------------------
    def _features(self, start: int, stop: int) -> Features:
        if self._sparse:
            return self._X.rows(start, stop)
        if isinstance(self._X, dict):
            return {key: store.buffer[start:stop] for key, store in self._X.items()}
        return self._X.buffer[start:stop]

    @property
    def X(self) -> Features:
        """Committed features, a view (no copy for dense and dict storage): read it, never write to it."""
        return self._features(0, self._n)

    @property
    def y(self) -> torch.Tensor:
        """Committed encoded labels (a view: writing to it would change the replay memory)."""
        return self._y.buffer[: self._n] if self._y is not None else torch.empty(0, dtype=torch.int64)

    @property
    def logits(self) -> torch.Tensor:
        """Stored end-of-round logits of the committed points (a view)."""
        return self._logits.buffer[: self._n] if self._logits is not None else torch.empty(0, 0)

    @property
    def rounds(self) -> torch.Tensor:
        """Round id of each committed point (a view)."""
        return self._rounds.buffer[: self._n] if self._rounds is not None else torch.empty(0, dtype=torch.int64)

    @property
    def staged_X(self) -> Features:
        """Features of the staged points (a view)."""
        return self._features(self._n, self._n + self.n_staged)

    @property
    def staged_y(self) -> torch.Tensor:
        """Encoded labels of the staged points (a view)."""
        return self._y.buffer[self._n : self._n + self.n_staged]

    def rows(self, positions: np.ndarray) -> Features:
        """Return the committed points at ``positions`` in storage form (sparse rows stay sparse).

        Parameters
        ----------
        positions : ndarray of int64
            Positions of committed points.

        Returns
        -------
        Features
            Their features: a tensor, a dict of tensors or a CSR matrix.
        """
        if self._sparse:
            return self._X.rows(0, self._n)[positions]
        index = torch.from_numpy(np.asarray(positions, dtype=np.int64))
        if isinstance(self._X, dict):
            return {key: store.buffer[index.to(store.buffer.device)] for key, store in self._X.items()}
        return self._X.buffer[index.to(self._X.buffer.device)]

    def new_points(self) -> tuple[Features, torch.Tensor]:
        """Return what a replay round trains on as new: the staged points, then the :attr:`deferred` ones.

        Returns
        -------
        X : Features
            A view of the staged points when nothing is deferred, else a copy.
        y : torch.Tensor
            Their encoded labels.
        """
        if len(self.deferred) == 0:
            return self.staged_X, self.staged_y
        deferred_y = self._y.buffer[torch.from_numpy(self.deferred).to(self._y.buffer.device)]
        X, deferred_X = self.staged_X, self.rows(self.deferred)
        X = sp.vstack([X, deferred_X], format="csr") if self._sparse else concat_rows(X, deferred_X)
        return X, torch.cat([self.staged_y, deferred_y])

    @property
    def labelled_X(self) -> Features:
        """Committed and staged features together (a view for dense storage)."""
        return self._features(0, self._n + self.n_staged)

    @property
    def labelled_y(self) -> torch.Tensor:
        """Committed and staged labels together (a view)."""
        return self._y.buffer[: self._n + self.n_staged]

    def sample(self, size: int, rng: np.random.Generator, balanced: bool = False) -> torch.Tensor:
        """Draw up to ``size`` committed points without replacement, from :attr:`retained` if the memory is bounded.

        Parameters
        ----------
        size : int
            Number of points wanted (the replay size ``m'``).
        rng : numpy.random.Generator
            Source of randomness.
        balanced : bool, default=False
            Give each class an equal share of the draw
            (:func:`skcal.memory.balanced_draw`) instead of drawing uniformly.

        Returns
        -------
        torch.Tensor
            History positions, ``int64``.
        """
        pool = self.retained
        n = self._n if pool is None else len(pool)
        if balanced:
            labels = self._labels()
            chosen = balanced_draw(labels if pool is None else labels[pool], size, rng)
        else:
            # numpy switches to an O(size) set-based draw for large histories.
            chosen = rng.choice(n, size=min(size, n), replace=False)
        return torch.from_numpy(chosen if pool is None else pool[chosen])

    def take_features(self, indices: torch.Tensor) -> Any:
        """Return dense features of the committed points at ``indices`` (one gather).

        Parameters
        ----------
        indices : torch.Tensor
            Positions of committed points.

        Returns
        -------
        torch.Tensor or dict of torch.Tensor
            Their features, dense, on the history's device.
        """
        if self._sparse:
            return self._X.take_dense(indices.cpu().numpy())
        if isinstance(self._X, dict):
            return {key: store.buffer[indices.to(self.device)] for key, store in self._X.items()}
        return take_rows(self._X.buffer, indices)

    def batch(self, indices: torch.Tensor, device: Any = None) -> ReplayBatch:
        """Gather a :class:`ReplayBatch` of committed points, on ``device`` (default: the history's).

        Parameters
        ----------
        indices : torch.Tensor
            Positions of committed points.
        device : str, torch.device or None, default=None
            Where the batch goes.

        Returns
        -------
        ReplayBatch
            The points, their labels, and (on first access) their stored logits and rounds.
        """
        return ReplayBatch(self, indices, device)

    # -- checkpoints -------------------------------------------------------
    def state(self) -> dict:
        """Return the committed history as tensors and plain values (no code), for checkpoints.

        Returns
        -------
        dict
            Loadable with ``torch.load(..., weights_only=True)``; see :meth:`from_state`.
        """
        n = self._n
        if self._sparse:
            end = int(self._X.indptr[n])
            features = {
                "data": torch.from_numpy(self._X.data[:end].copy()),
                "indices": torch.from_numpy(self._X.indices[:end].copy()),
                "indptr": torch.from_numpy(self._X.indptr[: n + 1].copy()),
                "n_features": self._X.n_features,
            }
        elif isinstance(self._X, dict):
            features = {key: store.buffer[:n].cpu().clone() for key, store in self._X.items()}
        else:
            features = None if self._X is None else self._X.buffer[:n].cpu().clone()
        return {
            "kind": "sparse" if self._sparse else "dict" if isinstance(self._X, dict) else "dense",
            "features": features,
            "y": self.y.cpu().clone(),
            "logits": self.logits.cpu().clone(),
            "rounds": self.rounds.cpu().clone(),
            "retained": None if self.retained is None else torch.from_numpy(self.retained.copy()),
            "retained_seen": self._retained_seen,
            "deferred": torch.from_numpy(self.deferred.copy()),
        }

    @classmethod
    def from_state(cls, state: dict, device: Any = "cpu") -> LabelledHistory:
        """Rebuild a history from :meth:`state`.

        Parameters
        ----------
        state : dict
            As returned by :meth:`state`.
        device : str or torch.device, default="cpu"
            Where the history lives.

        Returns
        -------
        LabelledHistory
            The history, every point committed.
        """
        history = cls(device)
        if len(state["y"]) == 0:
            return history
        features = state["features"]
        if state["kind"] == "sparse":
            n = len(state["y"])
            features = sp.csr_matrix(
                (features["data"].numpy(), features["indices"].numpy(), features["indptr"].numpy()),
                shape=(n, features["n_features"]),
            )
        history.stage(features, state["y"])
        history.commit(state["logits"], 0)
        history._rounds.buffer[: len(history)] = state["rounds"].to(history.device)
        retained = state.get("retained")
        history.retained = None if retained is None else retained.numpy().astype(np.int64)
        history._retained_seen = int(state.get("retained_seen", len(history)))
        deferred = state.get("deferred")
        history.deferred = np.empty(0, dtype=np.int64) if deferred is None else deferred.numpy().astype(np.int64)
        return history

    # -- pickling ----------------------------------------------------------
    def __getstate__(self) -> dict:
        # Pickle CPU tensors trimmed to the used rows, so a history trained on
        # CUDA loads on a CPU-only machine.
        state = self.__dict__.copy()
        state["device"] = str(self.device)
        used = self._n + self.n_staged

        def trimmed(store: Any) -> Any:
            if isinstance(store, _GrowableTensor):
                copy = _GrowableTensor(store.row_shape, store.buffer.dtype, "cpu")
                copy.buffer = store.buffer[:used].cpu().clone()
                return copy
            return store

        for name in ("_y", "_logits", "_rounds"):
            state[name] = trimmed(state[name])
        if isinstance(self._X, dict):
            state["_X"] = {key: trimmed(store) for key, store in self._X.items()}
        else:
            state["_X"] = trimmed(self._X)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.device = torch.device("cpu")

    # -- corrections: a label changed or withdrawn after its round ---------
    def checked_positions(self, positions: Any) -> np.ndarray:
        """Return ``positions`` as distinct int64 positions of committed points, or raise.

        Parameters
        ----------
        positions : array-like of int
            Positions in the history (``0 <= position < len(self)``).

        Returns
        -------
        ndarray of int64
            The positions, checked.

        Raises
        ------
        ValueError
            With staged points (a round in progress), or for positions that
            are not whole numbers, out of range or repeated.
        """
        if self.n_staged:
            raise ValueError("The history has staged points of a round in progress; correct it between rounds.")
        array = np.asarray(positions.cpu() if isinstance(positions, torch.Tensor) else positions)
        if array.ndim != 1 or (len(array) and array.dtype.kind not in "iu"):
            raise ValueError(
                f"positions must be a 1-D array of integers, got shape {array.shape}, dtype {array.dtype}."
            )
        array = array.astype(np.int64)
        outside = array[(array < 0) | (array >= self._n)]
        if len(outside):
            raise ValueError(f"positions {outside[:5].tolist()} are outside the history's {self._n} points.")
        if len(np.unique(array)) != len(array):
            raise ValueError("positions has repeated entries.")
        return array

    def relabel(self, positions: Any, labels: torch.Tensor) -> None:
        """Give committed points new encoded labels, in place; features, logits and round ids stay.

        Everything is checked before the first label is written, so a call
        that raises changes nothing. The stored logits keep what the model
        said at the end of the point's round (the targets of DER and SD).

        Parameters
        ----------
        positions : array-like of int
            Distinct positions of committed points.
        labels : torch.Tensor of int64
            Their new encoded labels, one per position.

        Raises
        ------
        ValueError
            For bad positions (see :meth:`checked_positions`), a label count
            that differs from the position count, or a label outside the
            stored logits' classes.
        """
        positions = self.checked_positions(positions)
        labels = torch.as_tensor(labels)
        if labels.dtype != torch.int64 or labels.shape != (len(positions),):
            raise ValueError(
                f"labels must be {len(positions)} encoded int64 labels, got dtype {labels.dtype}, "
                f"shape {tuple(labels.shape)}."
            )
        n_classes = self._logits.row_shape[0] if self._logits is not None else None
        if len(labels) and (int(labels.min()) < 0 or (n_classes is not None and int(labels.max()) >= n_classes)):
            raise ValueError(f"encoded labels must lie in [0, {n_classes}), got {labels.tolist()[:5]}...")
        if len(positions):
            self._y.buffer[torch.from_numpy(positions).to(self.device)] = labels.to(self.device)
            self._version += 1

    def without(self, positions: Any) -> LabelledHistory:
        """Return a new history without the committed points at ``positions``; this one is unchanged.

        The remaining points keep their order, labels, stored logits and
        round ids. A bounded replay memory (:attr:`retained`) loses the
        removed points and keeps the others (renumbered).

        Parameters
        ----------
        positions : array-like of int
            Distinct positions of committed points.

        Returns
        -------
        LabelledHistory
            On this history's device.

        Raises
        ------
        ValueError
            For bad positions (see :meth:`checked_positions`).
        """
        positions = self.checked_positions(positions)
        keep = np.ones(self._n, dtype=bool)
        keep[positions] = False
        state = self.state()
        rows = torch.from_numpy(np.flatnonzero(keep))
        if state["kind"] == "sparse":
            features = state["features"]
            matrix = sp.csr_matrix(
                (features["data"].numpy(), features["indices"].numpy(), features["indptr"].numpy()),
                shape=(self._n, features["n_features"]),
            )[keep]
            state["features"] = {
                "data": torch.from_numpy(matrix.data.astype(np.float32)),
                "indices": torch.from_numpy(matrix.indices.astype(np.int64)),
                "indptr": torch.from_numpy(matrix.indptr.astype(np.int64)),
                "n_features": features["n_features"],
            }
        elif state["kind"] == "dict":
            state["features"] = {key: value[rows] for key, value in state["features"].items()}
        else:
            state["features"] = state["features"][rows]
        for name in ("y", "logits", "rounds"):
            state[name] = state[name][rows]
        new_position = np.cumsum(keep) - 1
        if self.retained is not None:
            retained = self.retained[keep[self.retained]]
            state["retained"] = torch.from_numpy(new_position[retained].astype(np.int64))
        state["retained_seen"] = int(keep[: self._retained_seen].sum())
        state["deferred"] = torch.from_numpy(new_position[self.deferred[keep[self.deferred]]].astype(np.int64))
        if len(state["y"]) == 0:
            history = LabelledHistory(self.device)
            history.retained = None if self.retained is None else np.empty(0, dtype=np.int64)
            return history
        return LabelledHistory.from_state(state, self.device)
