"""``ContinualActiveClassifier.relabel`` / ``forget`` and ``LabelledHistory.relabel`` / ``without``.

What ``skcal serve`` does when an annotation is updated (the stored label is
corrected) or deleted (the point leaves the replay memory): atomic, checked
first, kept by checkpoints, and followed by rounds that train on the result.
"""

import hashlib

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import TokenBag, make_net
from sklearn.exceptions import NotFittedError

from skcal import ContinualActiveClassifier
from skcal.checkpoint import read_checkpoint


def campaign(digits, replay="er", n_rounds=3, **params):
    X, y = digits
    net = make_net(replay=replay, **params)
    net.partial_fit(X[:60], y[:60])
    for start in range(60, 60 + 30 * (n_rounds - 1), 30):
        net.partial_fit(X[start : start + 30], y[start : start + 30])
    return net


def digest(net):
    """A hash of everything relabel/forget may touch."""
    h = hashlib.sha256()
    history = net.labelled_history_
    for tensor in (history.X, history.y, history.logits, history.rounds):
        h.update(np.ascontiguousarray(tensor.cpu().numpy()).tobytes())
    records = [{key: value for key, value in record.items() if key != "train_seconds"} for record in net.rounds_]
    h.update(repr(history.retained).encode() + repr(records).encode())
    for value in net.module_.state_dict().values():
        h.update(value.cpu().numpy().tobytes())
    return h.hexdigest()


def test_relabel_changes_only_the_labels(digits):
    net = campaign(digits)
    history = net.labelled_history_
    X, logits, rounds = history.X.clone(), history.logits.clone(), history.rounds.clone()
    old = net.classes_[history.y.numpy()]
    net.relabel([3, 70], [9, 0])
    new = net.classes_[net.labelled_history_.y.numpy()]
    assert new[3] == 9 and new[70] == 0
    assert np.array_equal(np.delete(new, [3, 70]), np.delete(old, [3, 70]))
    assert torch.equal(history.X, X) and torch.equal(history.logits, logits) and torch.equal(history.rounds, rounds)
    assert history._labels()[3] == 9  # the class-balanced memory's label cache sees the change


def test_forget_removes_points_and_counts_them(digits):
    X, y = digits
    net = campaign(digits)
    history = net.labelled_history_
    keep = np.setdiff1d(np.arange(len(history)), [0, 61, 119])
    expected = (history.X[keep].clone(), history.y[keep].clone(), history.logits[keep].clone(), history.rounds[keep])
    net.forget([61, 0, 119])
    after = net.labelled_history_
    assert after is not history and len(history) == 120  # the old history is untouched
    assert len(after) == 117
    for got, want in zip((after.X, after.y, after.logits, after.rounds), expected, strict=True):
        assert torch.equal(got, want)
    assert [record.get("n_forgotten", 0) for record in net.rounds_] == [1, 1, 1]
    assert [record["n_new"] for record in net.rounds_] == [60, 30, 30]
    net.partial_fit(X[200:230], y[200:230])  # the campaign goes on
    assert len(net.labelled_history_) == 147 and net.rounds_[-1]["n_history"] == 117


def test_forget_keeps_a_bounded_replay_memory_consistent(digits):
    X, y = digits
    net = campaign(digits, replay__memory_size=50, replay__retention="reservoir")
    retained = net.labelled_history_.retained.copy()
    gone = retained[:5]
    kept_rows = net.labelled_history_.X[np.sort(retained[5:])].clone()
    net.forget(gone)
    memory = net.labelled_history_.retained
    assert len(memory) == 45 and len(np.unique(memory)) == 45 and memory.max() < len(net.labelled_history_)
    assert torch.equal(net.labelled_history_.X[np.sort(memory)], kept_rows)
    net.partial_fit(X[200:230], y[200:230])
    assert len(net.labelled_history_.retained) == 50


def test_retrain_after_forget_trains_on_the_remaining_points_only(digits):
    X, y = digits
    net = campaign(digits, replay="retrain", n_rounds=2)
    forgotten = net.labelled_history_.X[:10].clone()
    net.forget(np.arange(10))
    net.partial_fit(X[200:230], y[200:230])
    assert net.rounds_[-1]["n_history"] == 80
    assert not any(torch.equal(row, candidate) for row in net.labelled_history_.X for candidate in forgotten[:1])


@pytest.mark.parametrize(
    "call, args, message",
    [
        ("relabel", ([500], [1]), "outside the history's 120 points"),
        ("relabel", ([1, 1], [2, 2]), "repeated"),
        ("relabel", ([1.5], [2]), "1-D array of integers"),
        ("relabel", ([1, 2], [3]), "X has 2 samples but y has 1 labels"),
        ("relabel", ([1], [42]), "not among the classes"),
        ("relabel", ([1], [np.nan]), "NaN"),
        ("forget", ([-1],), "outside"),
        ("forget", (np.arange(120),), "would remove all 120 labelled points"),
        ("forget", ([[1, 2]],), "1-D array"),
    ],
)
def test_bad_corrections_change_nothing(digits, call, args, message):
    net = campaign(digits)
    before = digest(net)
    with pytest.raises(ValueError, match=message):
        getattr(net, call)(*args)
    assert digest(net) == before


def test_corrections_need_a_campaign():
    net = make_net()
    with pytest.raises(NotFittedError):
        net.relabel([0], [1])
    with pytest.raises(NotFittedError):
        net.forget([0])


def test_corrections_survive_a_checkpoint(digits, tmp_path):
    X, y = digits
    net = campaign(digits, random_state=3)
    net.relabel([5], [7])
    net.forget(list(range(60)))  # the whole seed round
    net.save_checkpoint(tmp_path)
    state = read_checkpoint(tmp_path / "checkpoint.pt")
    assert state["rounds"][0]["n_forgotten"] == 60 and len(state["history"]) == 60
    loaded = make_net(random_state=3).load_checkpoint(tmp_path)
    assert digest(loaded) == digest(net)
    net.partial_fit(X[300:330], y[300:330])
    loaded.partial_fit(X[300:330], y[300:330])
    assert digest(loaded) == digest(net)  # and the campaign continues identically


def test_sparse_and_dict_histories(digits):
    X, y = digits
    sparse = make_net()
    sparse.partial_fit(sp.csr_matrix(X[:40]), y[:40]).partial_fit(sp.csr_matrix(X[40:60]), y[40:60])
    sparse.forget([0, 45])
    assert sparse.labelled_history_.is_sparse and len(sparse.labelled_history_) == 58
    assert np.allclose(sparse.labelled_history_.X.toarray(), np.delete(X[:60], [0, 45], axis=0))
    sparse.partial_fit(sp.csr_matrix(X[60:80]), y[60:80])

    rng = np.random.default_rng(0)
    tokens = {"input_ids": rng.integers(0, 50, (40, 6)), "attention_mask": np.ones((40, 6), dtype=np.int64)}
    labels = rng.integers(0, 3, 40)
    text = ContinualActiveClassifier(TokenBag, max_epochs=2, round_epochs=1, verbose=0, random_state=0)
    text.partial_fit({k: v[:30] for k, v in tokens.items()}, labels[:30])
    text.forget([2])
    text.relabel([0], [(labels[0] + 1) % 3])
    assert torch.equal(text.labelled_history_.X["input_ids"][2], torch.as_tensor(tokens["input_ids"][3]))
    text.partial_fit({k: v[30:] for k, v in tokens.items()}, labels[30:])
    assert len(text.labelled_history_) == 39
