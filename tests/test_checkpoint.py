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


# -- integrity -----------------------------------------------------------------


def fingerprint(net):
    from test_atomic_rounds import fingerprint as full

    return full(net)


def rewrite(path, edit):
    """Load a checkpoint's payload, apply ``edit``, write it back with a valid header and checksum."""
    raw = path.read_bytes()
    payload = raw.split(b"\n", 2)[2]
    state = torch.load(io.BytesIO(payload), weights_only=True)
    edit(state)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    path.write_bytes(b"SKCAL-CHECKPOINT 2\nsha256 " + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)


def test_150_random_bit_flips_are_150_checkpoint_errors_and_change_nothing(digits, tmp_path):
    X, y = digits
    campaign(X, y, {"optimizer": torch.optim.SGD, "optimizer__momentum": 0.9, "replay": "der"}).save_checkpoint(
        tmp_path
    )
    path = tmp_path / "checkpoint.pt"
    original = path.read_bytes()
    net = make_net().fit(X[:30], y[:30])
    before = fingerprint(net)
    rng = np.random.default_rng(0)
    errors = 0
    for _ in range(150):
        flipped = bytearray(original)
        position = int(rng.integers(len(flipped)))
        flipped[position] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(flipped))
        try:
            net.load_checkpoint(tmp_path)
        except CheckpointError:
            errors += 1
        assert fingerprint(net) == before
    assert errors == 150


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s["history"]["y"].__setitem__(3, 12), "labels outside the 10 classes"),
        (lambda s: s["history"].__setitem__("logits", s["history"]["logits"][:, :4]), "stored logits have shape"),
        (lambda s: s["history"]["rounds"].__setitem__(0, 2), "round ids are not in order"),
        (lambda s: s.pop("rng"), r"missing entries \['rng'\]"),
        (lambda s: s.pop("optimizer"), r"missing entries \['optimizer'\]"),
        (lambda s: s["rounds"].pop(), "'rounds' does not match the history"),
        (lambda s: s["rng"].__setitem__("bit_generator", "MT19937"), "not a PCG64"),
        (lambda s: s["classes"].__setitem__("values", [0, 0, 1]), "duplicates"),
        (lambda s: s["history"].__setitem__("features", s["history"]["features"][:5]), "features do not match"),
        (lambda s: s["rng"]["state"].__setitem__("state", 2**200), "inconsistent contents"),
        (lambda s: s["history"].__setitem__("y", s["history"]["y"].to_sparse()), "not a dense"),
        (lambda s: s["optimizer"].__setitem__("state", []), "cannot be loaded|malformed"),
        (
            lambda s: s["history"].__setitem__("logits", s["history"]["logits"].double() * 1e300),
            "not finite in float32",
        ),
        (lambda s: s["history"].__setitem__("features", s["history"]["features"].double()), "dtype torch.float64"),
        (lambda s: s["history"].__setitem__("features", s["history"]["features"][:, :3].clone()), "cannot be loaded"),
        (lambda s: s["module"]["hidden.weight"].fill_(float("nan")), "weights are not finite"),
        (lambda s: s["classes"].__setitem__("values", [0.5, float("nan"), 2.0] + list(range(3, 10))), "dtype float64"),
        (lambda s: s["optimizer"]["param_groups"][0].__setitem__("lr", "fast"), "learning rate is 'fast'"),
    ],
)
def test_crafted_checkpoints_with_a_valid_checksum_are_rejected_before_any_change(digits, tmp_path, edit, message):
    X, y = digits
    campaign(X, y, {}).save_checkpoint(tmp_path)
    rewrite(tmp_path / "checkpoint.pt", edit)
    net = make_net().fit(X[:30], y[:30])
    before = fingerprint(net)
    with pytest.raises(CheckpointError, match=message):
        net.load_checkpoint(tmp_path)
    assert fingerprint(net) == before


def test_an_optimizer_with_another_param_group_layout_changes_nothing(digits, tmp_path):
    X, y = digits
    campaign(X, y, {}).save_checkpoint(tmp_path)

    def two_groups(state):
        group = state["optimizer"]["param_groups"][0]
        state["optimizer"]["param_groups"] = [dict(group, params=group["params"][:2]), dict(group, params=[9])]

    rewrite(tmp_path / "checkpoint.pt", two_groups)
    net = make_net().fit(X[:30], y[:30])
    before = fingerprint(net)
    with pytest.raises(CheckpointError, match="cannot be loaded into this estimator"):
        net.load_checkpoint(tmp_path)
    assert fingerprint(net) == before
    fresh = make_net()
    with pytest.raises(CheckpointError):
        fresh.load_checkpoint(tmp_path)
    assert not fresh.initialized_ and not fresh.__sklearn_is_fitted__()


def test_a_grow_output_campaign_on_a_module_instance_resumes(digits, tmp_path):
    from conftest import MLP

    X, y = digits
    seed, later = np.isin(y, [0, 1, 2]), np.isin(y, [3, 4])
    net = make_net(module=MLP(n_out=3), grow_output=True).fit(X[seed][:60], y[seed][:60])
    net.partial_fit(X[later][:30], y[later][:30])
    net.save_checkpoint(tmp_path)
    resumed = make_net(module=MLP(n_out=3), grow_output=True).load_checkpoint(tmp_path)
    assert list(resumed.classes_) == [0, 1, 2, 3, 4]
    assert fingerprint(resumed) == fingerprint(net)
    np.testing.assert_array_equal(resumed.predict(X[:200]), net.predict(X[:200]))
    nxt = slice(500, 540)
    net.partial_fit(X[nxt], y[nxt])
    resumed.partial_fit(X[nxt], y[nxt])
    for key, value in net.module_.state_dict().items():
        assert torch.equal(value, resumed.module_.state_dict()[key])


def test_a_save_removes_the_temporary_files_of_an_interrupted_save(digits, tmp_path):
    X, y = digits
    net = campaign(X, y, {})
    stale = tmp_path / ".checkpoint.pt.abc123.tmp"
    tmp_path.mkdir(exist_ok=True)
    stale.write_bytes(b"half a checkpoint")
    unrelated = tmp_path / "notes.tmp"
    unrelated.write_text("mine")
    net.save_checkpoint(tmp_path)
    assert not stale.exists() and unrelated.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "notes.tmp"]


def test_a_directory_in_place_of_the_file_is_a_checkpoint_error(digits, tmp_path):
    (tmp_path / "checkpoint.pt").mkdir()
    with pytest.raises(CheckpointError, match="cannot be read"):
        make_net().load_checkpoint(tmp_path)


def test_momentum_of_another_shape_is_rejected(digits, tmp_path):
    X, y = digits
    params = {"optimizer": torch.optim.SGD, "optimizer__momentum": 0.9, "reset_optimizer": False}
    campaign(X, y, params).save_checkpoint(tmp_path)
    rewrite(
        tmp_path / "checkpoint.pt", lambda s: s["optimizer"]["state"][0].__setitem__("momentum_buffer", torch.ones(3))
    )
    net = make_net(**params).fit(X[:30], y[:30])
    before = fingerprint(net)
    with pytest.raises(CheckpointError, match="momentum_buffer for parameter 0 has shape"):
        net.load_checkpoint(tmp_path)
    assert fingerprint(net) == before


def test_pandas_feature_names_survive_a_checkpoint(digits, tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = digits
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(64)])
    make_net().fit(frame[:60], y[:60]).save_checkpoint(tmp_path)
    resumed = make_net().load_checkpoint(tmp_path)
    assert list(resumed.feature_names_in_) == list(frame.columns) and resumed.n_features_in_ == 64
    with pytest.raises(ValueError, match="same names, other order"):
        resumed.partial_fit(frame[list(reversed(frame.columns))][60:70], y[60:70])
