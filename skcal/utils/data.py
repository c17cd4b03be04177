"""Canonical in-memory forms of feature data and one-gather batching.

skcal keeps features in one of three *storage forms*:

* a dense ``float32`` :class:`torch.Tensor` (integer and boolean arrays too:
  counts and one-hot features feed float layers),
* a :class:`scipy.sparse.csr_matrix` (``float32``), densified one batch at a time,
* a ``dict`` of dense tensors (tokenised text), all with the same first
  dimension; here integer arrays (token ids, masks) stay ``int64``.

Every batch, for training, replay or prediction, is a single indexed gather on
one of these forms; no per-sample ``__getitem__`` and no collate step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import Dataset, Subset

Features = Union[torch.Tensor, sp.csr_matrix, dict]


def _tensor_from_array(values: Any, name: str, keep_integers: bool = False) -> torch.Tensor:
    """Convert one numeric array-like to a tensor of skcal's storage dtype."""
    if isinstance(values, torch.Tensor):
        tensor = values.detach()
    else:
        array = np.asarray(values)
        if array.dtype.kind == "O":
            try:  # object arrays of numbers are numbers
                array = array.astype(np.float64)
            except TypeError as error:
                raise TypeError(f"{name} holds values that are not numbers: {error}") from None
            except ValueError:
                array = array.astype(str)
        if array.dtype.kind in "USV":
            raise TypeError(
                f"{name} holds strings; skcal needs numeric features. Raw text "
                "must be tokenised first, e.g. with skorch's "
                "HuggingfacePretrainedTokenizer in an sklearn Pipeline."
            )
        if array.dtype.kind == "c":
            raise ValueError(f"Complex data not supported: {name} has dtype {array.dtype}; use real numbers.")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.is_complex():
        raise ValueError(f"Complex data not supported: {name} has dtype {tensor.dtype}; use real numbers.")
    if keep_integers and not tensor.is_floating_point() and tensor.dtype != torch.bool:
        return tensor.to(torch.int64)
    return tensor.to(torch.float32)


def to_storage(X: Any) -> Features:
    """Convert user input to its storage form, without copying where possible.

    Parameters
    ----------
    X : array-like, torch.Tensor, scipy.sparse matrix or dict of array-likes
        Feature data with samples along the first axis.

    Returns
    -------
    Features
        A tensor, a CSR matrix, or a dict of tensors.

    Raises
    ------
    TypeError
        If ``X`` is of a type or dtype skcal cannot train on.
    """
    if sp.issparse(X):
        if X.dtype.kind not in "biuf":
            raise TypeError(f"Sparse X has dtype {X.dtype}; skcal needs numeric features.")
        X = sp.csr_matrix(X, dtype=np.float32)
        if not X.has_canonical_format:  # duplicate entries mean their sum; rows are gathered assuming none
            X = X.copy()
            X.sum_duplicates()
        return X
    if isinstance(X, Mapping):
        if not X:
            raise ValueError("X is an empty dict; expected at least one array of features.")
        out = {}
        for key, value in X.items():
            if sp.issparse(value):
                raise TypeError(f"X[{key!r}] is sparse; sparse arrays inside a dict are not supported.")
            out[key] = _tensor_from_array(value, f"X[{key!r}]", keep_integers=True)
        return out
    if hasattr(X, "to_numpy") and not isinstance(X, torch.Tensor):  # pandas
        X = X.to_numpy()
    return _tensor_from_array(X, "X")


def n_rows(X: Features) -> int:
    """Return the number of samples in storage-form data."""
    if isinstance(X, dict):
        return len(next(iter(X.values())))
    return X.shape[0]


def n_samples(X: Any) -> int:
    """Count the samples in user input of any supported container, before conversion.

    Raises
    ------
    ValueError
        For a dict whose arrays have different lengths.
    """
    if isinstance(X, Mapping):
        lengths = {len(value) for value in X.values()}
        if len(lengths) > 1:
            raise ValueError(f"The arrays in dict X have different lengths: {sorted(lengths)}.")
        return lengths.pop() if lengths else 0
    return X.shape[0] if hasattr(X, "shape") else len(X)


def select_rows(X: Any, rows: np.ndarray) -> Any:
    """Return rows ``rows`` of numpy, torch, sparse or dict-of-arrays data, in the same container."""
    if isinstance(X, dict):
        return {key: value[rows] for key, value in X.items()}
    if isinstance(X, torch.Tensor):
        return X[torch.as_tensor(rows)]
    if sp.issparse(X):
        return X.tocsr()[rows]
    return np.asarray(X)[rows]


def feature_shape(X: Features) -> Any:
    """Shape of one sample: ``X.shape[1:]``, or a dict of those for dict input."""
    if isinstance(X, dict):
        return {key: tuple(value.shape[1:]) for key, value in X.items()}
    return tuple(X.shape[1:])


@dataclass(frozen=True)
class ValidatedFeatures:
    """Features that passed validation, in storage form, with what downstream code needs to know of them.

    Built once, at the boundary (:func:`skcal.utils.validation.validate_features`);
    the labelled history and the round use these fields instead of
    re-deriving them from the data.

    Attributes
    ----------
    data : Features
        The features in storage form.
    n_rows : int
        The number of samples.
    shape : tuple or dict of tuple
        The shape of one sample (:func:`feature_shape`).
    sparse : bool
        Whether ``data`` is a sparse CSR matrix.
    """

    data: Features
    n_rows: int
    shape: Any
    sparse: bool


def take_rows(X: Features, indices: torch.Tensor) -> Any:
    """Gather the rows ``indices`` as dense tensors (one gather per array).

    Sparse rows are densified here, one batch at a time.
    """
    if isinstance(X, dict):
        return {key: value[indices.to(value.device)] for key, value in X.items()}
    if sp.issparse(X):
        return torch.from_numpy(X[indices.cpu().numpy()].toarray())
    return X[indices.to(X.device)]


def concat_rows(first: Any, second: Any) -> Any:
    """Concatenate two dense batches (tensors or dicts of tensors) along rows."""
    if isinstance(first, dict):
        return {key: torch.cat([first[key], second[key].to(first[key].device)]) for key in first}
    return torch.cat([first, second.to(first.device)])


def move_to(X: Any, device: Any) -> Any:
    """Move a dense batch (tensor or dict of tensors) to ``device``."""
    if isinstance(X, dict):
        return {key: value.to(device) for key, value in X.items()}
    return X.to(device)


class BatchedDataset(Dataset):
    """A dataset whose batches are fetched by one indexed gather.

    PyTorch's ``DataLoader`` calls ``__getitems__`` with a whole batch of
    indices, so a batch costs one gather instead of ``batch_size`` calls to
    ``__getitem__`` plus a collate. The loader must use
    :func:`collate_batch` (``ContinualActiveClassifier.get_iterator`` sets it).

    Parameters
    ----------
    X : Features or convertible
        Features; converted with :func:`to_storage`.
    y : array-like of int, optional
        Encoded labels (``0 .. n_classes - 1``).
    """

    def __init__(self, X: Any, y: Any = None):
        self.X = to_storage(X)  # no copy for data already in storage form
        self.y = None if y is None else torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
        self._len = n_rows(self.X)
        if self.y is not None and len(self.y) != self._len:
            raise ValueError(f"X has {self._len} rows but y has {len(self.y)}.")

    def __len__(self) -> int:
        return self._len

    def __getitems__(self, indices: Any) -> tuple:
        if isinstance(indices, slice):  # consecutive rows: views, not copies
            Xb = {key: value[indices] for key, value in self.X.items()} if isinstance(self.X, dict) else self.X[indices]
            if sp.issparse(Xb):
                Xb = torch.from_numpy(Xb.toarray())
            n = len(range(*indices.indices(self._len)))
            return Xb, torch.zeros(n) if self.y is None else self.y[indices]
        index = torch.as_tensor(indices, dtype=torch.int64)
        Xb = take_rows(self.X, index)
        yb = torch.zeros(len(index)) if self.y is None else self.y[index.to(self.y.device)]
        return Xb, yb

    def __getitem__(self, i: int) -> tuple:
        Xb, yb = self.__getitems__([i])
        if isinstance(Xb, dict):
            return {key: value[0] for key, value in Xb.items()}, yb[0]
        return Xb[0], yb[0]


class BatchIterator:
    """A minimal loader over a :class:`BatchedDataset`: one gather per batch.

    Used in place of ``torch.utils.data.DataLoader`` when the loader's
    arguments ask for nothing a plain batch loop cannot give (no workers,
    samplers or pinning), which saves the loader's per-batch machinery.

    Parameters
    ----------
    dataset : BatchedDataset or Subset of one
        The data.
    batch_size : int
        Rows per batch.
    shuffle : bool, default=False
        Visit rows in a random order each pass.
    generator : torch.Generator, optional
        Source of the shuffle order.
    drop_last : bool, default=False
        Skip a last, smaller batch.
    collate_fn : callable, optional
        Ignored; batches are already whole.
    """

    accepted = frozenset({"batch_size", "shuffle", "generator", "drop_last", "collate_fn"})

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        shuffle: bool = False,
        generator: Any = None,
        drop_last: bool = False,
        collate_fn: Any = None,
    ):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.drop_last = drop_last

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Any:
        n = len(self.dataset)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        # Unshuffled batches of a BatchedDataset (prediction) are slices, i.e. views.
        sliceable = order is None and isinstance(self.dataset, BatchedDataset)
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            if self.drop_last and stop - start < self.batch_size:
                return
            if sliceable:
                yield self.dataset.__getitems__(slice(start, stop))
            else:
                rows = torch.arange(start, stop) if order is None else order[start:stop]
                yield self.dataset.__getitems__(rows)


def collate_batch(batch: tuple) -> tuple:
    """Collate function for :class:`BatchedDataset`: the batch is already whole."""
    return batch


def is_batched_dataset(dataset: Any) -> bool:
    """Whether ``dataset`` (or the dataset under a ``Subset``) is a :class:`BatchedDataset`."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return isinstance(dataset, BatchedDataset)
