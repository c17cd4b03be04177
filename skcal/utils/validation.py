"""Input checks shared by the estimator and the modAL learner.

Every check runs before any state changes, and every error names the problem.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.multiclass import type_of_target

from .data import Features, ValidatedFeatures, feature_shape, n_rows, to_storage


def _is_finite(values: Any) -> bool:
    if isinstance(values, torch.Tensor):
        return not values.is_floating_point() or bool(torch.isfinite(values).all())
    return bool(np.isfinite(values).all())


def validate_features(X: Any, expected_shape: Any = None, expected_sparse: bool | None = None) -> ValidatedFeatures:
    """Convert ``X`` to storage form and check it can be trained on: the one check of features at the boundary.

    Parameters
    ----------
    X : array-like, torch.Tensor, scipy.sparse matrix or dict
        Features, samples along the first axis.
    expected_shape : tuple or dict, optional
        The feature shape of points seen before; ``X`` must match it.
    expected_sparse : bool, optional
        Whether earlier points were sparse.

    Returns
    -------
    ValidatedFeatures
        The data in storage form with its row count, feature shape and sparsity.

    Raises
    ------
    TypeError
        Unsupported container or dtype (object, strings, complex).
    ValueError
        Empty X, 1-D X, NaN or inf, dict arrays of different lengths, or a
        feature shape different from earlier rounds.
    """
    if X is None:
        raise ValueError("X is None; expected an array of features.")
    data = to_storage(X)
    if isinstance(data, dict):
        lengths = {key: len(value) for key, value in data.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"The arrays in dict X have different lengths: {lengths}.")
        for key, value in data.items():
            if value.ndim < 1:
                raise ValueError(f"X[{key!r}] is a scalar; expected one row per sample.")
            if not _is_finite(value):
                raise ValueError(f"X[{key!r}] contains NaN or infinity.")
    else:
        if data.ndim < 2:
            raise ValueError(
                f"X has shape {tuple(data.shape)}; expected 2 or more dimensions "
                "(n_samples, n_features, ...). Reshape your data: X.reshape(-1, 1) for a single feature, "
                "X.reshape(1, -1) for a single sample."
            )
        if not _is_finite(data.data if sp.issparse(data) else data):
            raise ValueError("X contains NaN or infinity.")
        if 0 in data.shape[1:]:
            raise ValueError(f"X has 0 feature(s) (shape={tuple(data.shape)}) while a minimum of 1 is required.")
    rows = n_rows(data)
    if rows == 0:
        raise ValueError("X is empty (0 samples).")
    if expected_sparse is not None and sp.issparse(data) != expected_sparse:
        kinds = ("dense", "sparse")
        raise ValueError(
            f"X is {kinds[sp.issparse(data)]} but earlier rounds were {kinds[expected_sparse]}; "
            "keep one representation for the whole campaign."
        )
    shape = feature_shape(data)
    if expected_shape is not None and shape != expected_shape:
        if isinstance(shape, tuple) and isinstance(expected_shape, tuple) and len(shape) == len(expected_shape) == 1:
            raise ValueError(
                f"X has {shape[0]} features, but ContinualActiveClassifier is expecting "
                f"{expected_shape[0]} features as input."
            )
        raise ValueError(f"X has feature shape {shape}, but the model was trained on {expected_shape}.")
    return ValidatedFeatures(data, rows, shape, sp.issparse(data))


def check_features(X: Any, expected_shape: Any = None, expected_sparse: bool | None = None) -> Features:
    """Return ``X`` in storage form once :func:`validate_features` accepts it (for prediction and queries).

    Parameters
    ----------
    X : array-like, torch.Tensor, scipy.sparse matrix or dict
        Features, samples along the first axis.
    expected_shape : tuple or dict, optional
        The feature shape of points seen before.
    expected_sparse : bool, optional
        Whether earlier points were sparse.

    Returns
    -------
    Features
    """
    return validate_features(X, expected_shape, expected_sparse).data


def check_labels(y: Any, n_samples: int) -> np.ndarray:
    """Return ``y`` as a 1-D numpy array of ``n_samples`` labels.

    Raises
    ------
    ValueError
        Missing labels, wrong length, more than one column, or NaN.
    """
    if y is None:
        raise ValueError(
            "ContinualActiveClassifier requires y to be passed, but the target y is None: "
            "a classifier needs one label per sample."
        )
    labels = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; pass labels as y.ravel().",
            DataConversionWarning,
            stacklevel=3,
        )
        labels = labels.ravel()
    if labels.ndim != 1:
        raise ValueError(f"y has shape {labels.shape}; expected a 1-D array of labels.")
    if len(labels) != n_samples:
        raise ValueError(f"X has {n_samples} samples but y has {len(labels)} labels.")
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise ValueError("y contains NaN or infinity.")
    if labels.dtype.kind == "O" and any(label is None or label != label for label in labels):
        raise ValueError("y contains None or NaN.")
    if labels.dtype.kind == "f" and type_of_target(labels) == "continuous":
        raise ValueError(
            "Unknown label type: continuous. y holds non-integer numbers; a classifier needs class labels."
        )
    return labels


def check_classes(classes: Any) -> np.ndarray:
    """Validate a declared label set: 1-D, non-empty, no duplicates; returned sorted."""
    values = np.asarray(classes)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"classes must be a non-empty 1-D list of labels; got {classes!r}.")
    unique = np.unique(values)
    if len(unique) != len(values):
        raise ValueError(f"classes contains duplicates: {classes!r}.")
    return unique


def encode_labels(labels: np.ndarray, classes: np.ndarray) -> torch.Tensor:
    """Map labels to positions in the sorted ``classes``.

    Raises
    ------
    ValueError
        If a label is not in ``classes`` (the message names it and says how
        to declare the label set), or if boolean labels meet non-boolean
        classes (``True == 1`` would silently train a 10-class model on two).
    """
    def boolean(values: np.ndarray) -> bool:
        if values.dtype.kind == "O":
            return len(values) > 0 and all(isinstance(value, (bool, np.bool_)) for value in values.tolist())
        return values.dtype.kind == "b"

    if boolean(labels) != boolean(classes):
        raise ValueError(
            f"y has labels of dtype {labels.dtype} but the classes are {classes.tolist()[:10]} "
            f"(dtype {classes.dtype}); booleans and numbers are not interchangeable labels."
        )
    if len(classes) > 1 and not np.all(classes[:-1] < classes[1:]):  # grown classes are not sorted
        lookup = {label: index for index, label in enumerate(classes.tolist())}
        unseen = np.array([label not in lookup for label in labels.tolist()], dtype=bool)
        if unseen.any():
            raise ValueError(f"y contains label(s) {np.unique(labels[unseen]).tolist()} not among the classes.")
        return torch.tensor([lookup[label] for label in labels.tolist()], dtype=torch.int64)
    try:
        positions = np.searchsorted(classes, labels)
    except TypeError:
        raise ValueError(
            f"y has labels of type {labels.dtype} that cannot be compared with the classes {classes!r}."
        ) from None
    positions = np.clip(positions, 0, len(classes) - 1)
    unseen = classes[positions] != labels
    if np.any(unseen):
        missing = np.unique(labels[unseen])
        raise ValueError(
            f"y contains label(s) {missing.tolist()} not among the classes {classes.tolist()}. "
            "Declare every label up front, with classes= on the estimator or on the first "
            "partial_fit call."
        )
    return torch.from_numpy(positions.astype(np.int64))


def feature_names(X: Any) -> np.ndarray | None:
    """Column names of a pandas DataFrame whose columns are all strings, else None (scikit-learn's rule)."""
    columns = getattr(X, "columns", None)
    if columns is None or isinstance(X, torch.Tensor) or not all(isinstance(name, str) for name in columns):
        return None
    return np.asarray(columns, dtype=object)


def check_feature_names(X: Any, expected: np.ndarray | None) -> None:
    """Check ``X``'s pandas columns against those seen at the seed round (scikit-learn's convention).

    Raises
    ------
    ValueError
        If the columns differ in names or order; the message names them.
    """
    names = feature_names(X)
    if expected is None:
        if names is not None and getattr(X, "columns", None) is not None:
            warnings.warn(
                "X has feature names, but the estimator was fitted without feature names.", UserWarning, stacklevel=3
            )
        return
    if names is None:
        warnings.warn(
            "X does not have valid feature names, but the estimator was fitted with feature names.",
            UserWarning,
            stacklevel=3,
        )
        return
    if len(names) != len(expected) or np.any(names != expected):
        unseen = [name for name in names if name not in set(expected)]
        missing = [name for name in expected if name not in set(names)]
        detail = f"unseen {unseen[:5]}, missing {missing[:5]}" if unseen or missing else "same names, other order"
        raise ValueError(
            f"The feature names should match those passed at the seed round: {detail}. "
            f"Expected columns {list(expected)[:10]}."
        )


@dataclass(frozen=True)
class LabelledBatch:
    """Labelled points that passed validation: what ``fit`` and ``partial_fit`` train on.

    Attributes
    ----------
    features : ValidatedFeatures
        The features in storage form, with row count, feature shape and sparsity.
    labels : ndarray of shape (n_rows,)
        The labels as given (not yet encoded).
    feature_names : ndarray of str or None
        The pandas column names, if any.
    """

    features: ValidatedFeatures
    labels: np.ndarray
    feature_names: np.ndarray | None


def validate_data(net: Any, X: Any, y: Any, reset: bool) -> LabelledBatch:
    """Check a round's labelled points once, into the canonical form every later step trusts.

    Parameters
    ----------
    net : ContinualActiveClassifier
        The estimator; with ``reset=False`` the points must match its
        labelled history's feature shape and sparsity, and its ``feature_names_in_``.
    X : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
        The points' features.
    y : array-like of shape (n_samples,)
        Their labels.
    reset : bool
        True for a seed round (``fit``, or the first ``partial_fit``), which
        sets the feature shape; False for later rounds, which must keep it.

    Returns
    -------
    LabelledBatch

    Raises
    ------
    ValueError, TypeError
        Naming the problem: see :func:`validate_features` and :func:`check_labels`.
    """
    names = feature_names(X)
    if reset:
        features = validate_features(X)
    else:
        check_feature_names(X, getattr(net, "feature_names_in_", None))
        history = net.labelled_history_
        features = validate_features(X, history.feature_shape, history.is_sparse)
    return LabelledBatch(features, check_labels(y, features.n_rows), names)

