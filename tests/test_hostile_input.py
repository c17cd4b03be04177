"""Property-based checks: every input to partial_fit works or is rejected cleanly, leaving state as it was."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skcal import ContinualActiveClassifier

N_FEATURES = 6
CLASSES = np.array([0, 1, 2])


def fitted():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, N_FEATURES)).astype(np.float32)
    return ContinualActiveClassifier(
        torch.nn.Linear,
        module__in_features=N_FEATURES,
        module__out_features=3,
        max_epochs=1,
        round_epochs=1,
        batch_size=4,
        verbose=0,
        random_state=0,
        classes=CLASSES,
    ).fit(X, np.arange(12) % 3)


def state(net):
    history = net.labelled_history_
    return (
        len(history),
        history.n_staged,
        len(net.rounds_),
        history.X.clone(),
        history.y.clone(),
        {key: value.clone() for key, value in net.module_.state_dict().items()},
    )


def unchanged(before, after):
    return (
        before[:3] == after[:3]
        and torch.equal(before[3], after[3])
        and torch.equal(before[4], after[4])
        and all(torch.equal(before[5][key], after[5][key]) for key in before[5])
    )


DTYPES = ["float16", "float32", "float64", "int32", "int64", "bool", "object", "complex64", "str"]


@st.composite
def batches(draw):
    n = draw(st.integers(0, 5))
    width = draw(st.sampled_from([N_FEATURES, N_FEATURES - 1, N_FEATURES + 2]))
    dtype = draw(st.sampled_from(DTYPES))
    values = draw(
        st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=n * width, max_size=n * width)
    )
    X = np.array(values, dtype=np.float64).reshape(n, width)
    if dtype == "str":
        X = X.astype(str)
    elif dtype == "object":
        X = X.astype(object)
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            X = np.nan_to_num(X, nan=0, posinf=1e4, neginf=-1e4).astype(dtype) if dtype[0] in "ib" else X.astype(dtype)
    container = draw(st.sampled_from(["numpy", "torch", "sparse", "dict"]))
    if container == "torch" and dtype in ("float16", "float32", "float64", "int32", "int64", "bool"):
        X = torch.from_numpy(X)
    elif container == "sparse" and dtype in ("float32", "float64", "int32", "int64"):
        X = sp.csr_matrix(X)
        X.data[:1] = 0  # an explicit zero
    elif container == "dict":
        X = {"inputs": X, "mask": np.ones((n + draw(st.integers(0, 1)), width))}
    n_labels = n + draw(st.sampled_from([0, 0, 0, 1, -1]))
    label_kind = draw(st.sampled_from(["int", "string", "float", "unseen"]))
    labels = np.arange(max(n_labels, 0)) % 3
    y = {
        "int": labels,
        "string": labels.astype(str),
        "float": np.where(np.arange(len(labels)) == 0, np.nan, labels.astype(float)),
        "unseen": labels + 3,
    }[label_kind]
    return X, y


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_partial_fit_works_or_rejects_cleanly(batch):
    X, y = batch
    net = fitted()
    before = state(net)
    try:
        net.partial_fit(X, y)
    except (ValueError, TypeError) as error:
        assert str(error), "an error must say what is wrong"
        assert unchanged(before, state(net)), f"rejected input changed the state: {error}"
    else:
        assert len(net.labelled_history_) == before[0] + len(y)
        assert net.predict(net.labelled_history_.X[:2]).shape == (2,)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_fit_works_or_rejects_cleanly(batch):
    X, y = batch
    net = fitted()
    before = state(net)
    try:
        net.fit(X, y)
    except (ValueError, TypeError) as error:
        assert str(error) and unchanged(before, state(net)), f"rejected input changed the state: {error}"
    else:
        assert len(net.labelled_history_) == len(y) and len(net.rounds_) == 1


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_predict_works_or_rejects_cleanly(batch):
    X, _ = batch
    net = fitted()
    try:
        predicted = net.predict(X)
    except (ValueError, TypeError) as error:
        assert str(error)
    else:
        assert set(predicted) <= set(CLASSES)


@pytest.mark.parametrize("duplicates", [1, 4])
def test_duplicate_points_are_fine(duplicates):
    net = fitted()
    X = np.repeat(np.ones((1, N_FEATURES), np.float32), duplicates, axis=0)
    net.partial_fit(X, np.zeros(duplicates, int))
    assert len(net.labelled_history_) == 12 + duplicates
