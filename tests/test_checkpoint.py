import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import TokenBag, make_net, module_state, same_state
from skorch.callbacks import Callback

from skcal import query as Q
from skcal.checkpoint import CheckpointError
from skcal.modal import ContinualActiveLearner


def campaign(X, y, params, rounds=(slice(0, 60), slice(60, 90), slice(90, 120))):
    net = make_net(**params)
    first, *rest = rounds
    net.fit(X[first], y[first])
    for rows in rest:
        net.partial_fit(X[rows], y[rows])
    return net


@pytest.mark.parametrize(
    "params",
    [{}, {"optimizer": torch.optim.SGD, "optimizer__momentum": 0.9, "reset_optimizer": False, "replay": "der"}],
)
def test_resume_equals_an_uninterrupted_run(digits, tmp_path, params):
    X, y = digits
    interrupted = campaign(X, y, params)
    interrupted.save_checkpoint(tmp_path)
    uninterrupted = campaign(X, y, params)
    uninterrupted.partial_fit(X[120:150], y[120:150])

    resumed = make_net(**params).load_checkpoint(tmp_path)
    assert resumed.rounds_ == interrupted.rounds_
    resumed.partial_fit(X[120:150], y[120:150])
    assert same_state(module_state(resumed), module_state(uninterrupted))
    drop_time = [{k: v for k, v in r.items() if k != "train_seconds"} for r in resumed.rounds_]
    assert drop_time == [{k: v for k, v in r.items() if k != "train_seconds"} for r in uninterrupted.rounds_]
    pool = X[150:700]
    np.testing.assert_array_equal(Q.entropy_sampling(resumed, pool, 10), Q.entropy_sampling(uninterrupted, pool, 10))


def test_history_and_labels_round_trip(digits, tmp_path):
    X, y = digits
    names = np.array(list("abcdefghij"))[y]
    net = make_net().fit(sp.csr_matrix(X[:50]), names[:50]).partial_fit(sp.csr_matrix(X[50:70]), names[50:70])
    net.save_checkpoint(tmp_path)
    restored = make_net().load_checkpoint(tmp_path)
    assert restored.labelled_history_.is_sparse
    np.testing.assert_array_equal(restored.labelled_history_.X.toarray(), X[:70])
    assert restored.labelled_history_.rounds.tolist() == [0] * 50 + [1] * 20
    torch.testing.assert_close(restored.labelled_history_.logits, net.labelled_history_.logits)
    assert restored.classes_.tolist() == net.classes_.tolist() and restored.classes_.dtype.kind == "U"
    assert restored.predict(sp.csr_matrix(X[:5])).tolist() == net.predict(sp.csr_matrix(X[:5])).tolist()


def test_dict_history_round_trip(tmp_path):
    ids = np.random.default_rng(0).integers(1, 50, size=(60, 5))
    X = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    net = make_net(module=TokenBag).fit(X, ids[:, 0] % 3)
    net.save_checkpoint(tmp_path)
    restored = make_net(module=TokenBag).load_checkpoint(tmp_path)
    assert torch.equal(restored.labelled_history_.X["input_ids"], net.labelled_history_.X["input_ids"])


def test_learner_checkpoint(digits, tmp_path):
    X, y = digits
    learner = ContinualActiveLearner(make_net(), X_training=X[:40], y_training=y[:40])
    learner.teach(X[40:60], y[40:60])
    learner.save_checkpoint(tmp_path)
    resumed = ContinualActiveLearner(make_net()).load_checkpoint(tmp_path)
    np.testing.assert_array_equal(resumed.X_training, X[:60])
    resumed.teach(X[60:70], y[60:70])
    assert len(resumed.y_training) == 70


def test_crash_while_writing_keeps_the_previous_checkpoint(digits, tmp_path, monkeypatch):
    X, y = digits
    net = campaign(X, y, {})
    net.save_checkpoint(tmp_path)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    net.partial_fit(X[120:150], y[120:150])

    def crash(state, file, **kwargs):
        file.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        net.save_checkpoint(tmp_path)
    monkeypatch.undo()
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint.pt"]
    assert len(make_net().load_checkpoint(tmp_path).rounds_) == 3


def snapshot(net):
    return module_state(net), list(net.rounds_), len(net.labelled_history_)


def assert_unchanged(net, before):
    after = snapshot(net)
    assert same_state(after[0], before[0]) and after[1:] == before[1:]


def test_truncated_checkpoint(digits, tmp_path):
    X, y = digits
    campaign(X, y, {}).save_checkpoint(tmp_path)
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    net = make_net().fit(X[:30], y[:30])
    before = snapshot(net)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        net.load_checkpoint(tmp_path)
    assert_unchanged(net, before)


def test_other_format_version(digits, tmp_path):
    X, y = digits
    campaign(X, y, {}).save_checkpoint(tmp_path)
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(path.read_bytes().replace(b"SKCAL-CHECKPOINT 2\n", b"SKCAL-CHECKPOINT 99\n", 1))
    with pytest.raises(CheckpointError, match=r"format '99'; this skcal .* reads format 2"):
        make_net().load_checkpoint(tmp_path)


def test_mismatched_module_changes_nothing(digits, tmp_path):
    X, y = digits
    campaign(X, y, {}).save_checkpoint(tmp_path)
    net = make_net(module__n_hidden=16).fit(X[:30], y[:30])
    before = snapshot(net)
    with pytest.raises(CheckpointError, match=r"hidden.weight has shape \(32, 64\) there, \(16, 64\) here"):
        net.load_checkpoint(tmp_path)
    assert_unchanged(net, before)


class Payload:
    marker = None

    def __reduce__(self):
        return (Path.touch, (Payload.marker,))


def test_loading_never_executes_code(tmp_path):
    Payload.marker = tmp_path / "executed"
    torch.save({"format": 1, "payload": Payload()}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError):
        make_net().load_checkpoint(tmp_path)
    # the same pickle behind a valid header and checksum: torch.load(weights_only=True) refuses it
    buffer = io.BytesIO()
    torch.save({"format": 2, "payload": Payload()}, buffer)
    payload = buffer.getvalue()
    header = b"SKCAL-CHECKPOINT 2\nsha256 " + hashlib.sha256(payload).hexdigest().encode() + b"\n"
    (tmp_path / "checkpoint.pt").write_bytes(header + payload)
    with pytest.raises(CheckpointError, match="not a readable skcal checkpoint"):
        make_net().load_checkpoint(tmp_path)
    assert not Payload.marker.exists()


def test_missing_checkpoint_and_nothing_to_save(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(FileNotFoundError):
        make_net().load_checkpoint(tmp_path)
    with pytest.raises(NotFittedError, match="fit the seed round first"):
        make_net().save_checkpoint(tmp_path)


def test_an_interrupted_round_leaves_history_and_rounds(digits):
    X, y = digits

    class Interrupt(Callback):
        armed = True

        def on_batch_end(self, net, **kwargs):
            if self.armed and len(net.rounds_) == 2:
                raise KeyboardInterrupt

    interrupt = Interrupt()
    net = make_net(callbacks=[interrupt]).fit(X[:50], y[:50]).partial_fit(X[50:70], y[50:70])
    with pytest.raises(KeyboardInterrupt):
        net.partial_fit(X[70:90], y[70:90])
    assert len(net.labelled_history_) == 70 and len(net.rounds_) == 2 and net.labelled_history_.n_staged == 0
    interrupt.armed = False
    net.partial_fit(X[70:90], y[70:90])  # the same points can be taught again
    assert len(net.labelled_history_) == 90 and net.labelled_history_.rounds.tolist()[-1] == 2
