"""round_epochs="auto": rounds that stop on held-out evidence (HeldOutRoundStop and the stop set)."""

import math

import numpy as np
import pytest
import torch
from conftest import RecordingMLP, make_net, rows_in
from skorch.callbacks import Callback
from test_atomic_rounds import FailAt, Failing, fingerprint

from skcal.callbacks import HeldOutRoundStop
from skcal.round import Round


class StopSets(Callback):
    """Keep each round's stop-set positions and its training points' count."""

    def initialize(self):
        self.rounds_ = []
        return self

    def on_train_end(self, net, X=None, y=None, **kwargs):
        round_ = net.round_
        held = None if round_.held_out is None else np.array(round_.held_out)
        self.rounds_.append((round_.index, held, len(y)))


def auto_net(**params):
    defaults = dict(module=RecordingMLP, replay="er", round_epochs="auto", max_epochs=40)
    defaults["callbacks"] = [("sets", StopSets())]
    return make_net(**{**defaults, **params})


def trained_rows(net):
    """Every input row the module saw in training mode since it was last cleared."""
    return torch.cat(net.module_.seen) if net.module_.seen else torch.zeros(0, 64)


def test_the_stop_set_never_trains_in_the_round_it_judges_and_trains_in_the_next(digits):
    X, y = digits
    net = auto_net().fit(X[:100], y[:100])
    new = torch.as_tensor(X[100:200])
    net.module_.seen.clear()
    net.partial_fit(X[100:200], y[100:200])
    _, held, _ = dict(net.callbacks_)["sets"].rounds_[-1]
    assert held is not None and len(held) > 0
    seen = trained_rows(net)
    assert not rows_in(new[held], seen).any()  # judged, never trained, in its own round
    others = np.setdiff1d(np.arange(100), held)
    assert rows_in(new[others], seen).all()
    assert np.array_equal(net.labelled_history_.deferred, 100 + held)
    net.module_.seen.clear()
    net.partial_fit(X[200:300], y[200:300])
    seen = trained_rows(net)
    assert rows_in(new[held], seen).all()  # the next round trains them as new points
    assert dict(net.callbacks_)["sets"].rounds_[-1][2] == 100 + len(held)  # its new points, then the deferred


def test_the_stop_set_is_stratified_and_its_size_is_exact_in_expectation():
    labels = np.repeat(np.arange(5), [50, 30, 10, 2, 1])
    sizes = []
    for seed in range(200):
        round_ = Round(index=1, strategy=None, n_new=len(labels), n_history=0, batch_size=8, replay_size=8,
                       seed=seed, stop_split=0.2)  # fmt: skip
        train, held = round_.split_stop_set(torch.as_tensor(labels))
        assert np.array_equal(np.sort(np.concatenate([train, held])), np.arange(len(labels)))
        counts = np.bincount(labels[held], minlength=5)
        assert 9 <= counts[0] <= 11 and 5 <= counts[1] <= 7 and 1 <= counts[2] <= 3
        assert counts[3] <= 1 and counts[4] == 0  # a class keeps at least one point for training
        sizes.append(len(held))
    assert abs(np.mean(sizes) - 0.2 * 92) < 0.6
    settings = dict(index=1, strategy=None, n_new=len(labels), n_history=0, batch_size=8, replay_size=8, seed=3)
    first, again = Round(**settings, stop_split=0.2), Round(**settings, stop_split=0.2)
    assert np.array_equal(again.split_stop_set(labels)[1], first.split_stop_set(labels)[1])


def test_points_deferred_from_the_last_round_are_never_held_out_again():
    labels = np.zeros(30, dtype=int)
    round_ = Round(index=2, strategy=None, n_new=20, n_history=50, batch_size=8, replay_size=8, seed=0, stop_split=0.5)
    train, held = round_.split_stop_set(labels)
    assert held.max() < 20 and set(range(20, 30)) <= set(train.tolist())


def test_the_round_stops_exactly_when_its_rule_says(digits):
    X, y = digits
    net = auto_net(callbacks__auto_stop__patience=2, callbacks__auto_stop__min_epochs=3).fit(X[:100], y[:100])
    for start in (100, 200, 300):
        net.partial_fit(X[start : start + 100], y[start : start + 100])
        epochs = [epoch for epoch in net.history if epoch.get("round", None) is None][-net.rounds_[-1]["epochs"] :]
        accuracies = [epoch["held_out_acc"] for epoch in epochs]
        losses = [epoch["held_out_loss"] for epoch in epochs]
        expected = rule(accuracies, losses, patience=2, min_epochs=3, min_loss_decrease=0.01, max_epochs=40)
        record = net.rounds_[-1]
        assert record["epochs"] == expected
        assert record["stopped_by"] == ("held_out" if expected < 40 else None)
        assert record["n_held_out"] > 0 and record["held_out_accuracy"] == accuracies[-1]


def rule(accuracies, losses, patience, min_epochs, min_loss_decrease, max_epochs):
    """The documented rule, written out independently: the epoch at which the round stops."""
    best, lowest, stalled = -math.inf, math.inf, 0
    for epoch, (accuracy, loss) in enumerate(zip(accuracies, losses, strict=True), start=1):
        improved = accuracy > best or loss < lowest * (1 - min_loss_decrease)
        best, lowest = max(best, accuracy), min(lowest, loss)
        stalled = 0 if improved else stalled + 1
        if epoch >= min_epochs and stalled >= patience:
            return epoch
    return max_epochs


def test_restore_best_ends_the_round_with_its_most_accurate_epoch(digits):
    X, y = digits
    net = auto_net(callbacks__auto_stop__restore_best=True, callbacks__auto_stop__patience=3).fit(X[:100], y[:100])
    net.partial_fit(X[100:300], y[100:300])
    record = net.rounds_[-1]
    epochs = list(net.history)[-record["epochs"] :]
    accuracies = [epoch["held_out_acc"] for epoch in epochs]
    best = int(np.argmax(accuracies)) + 1
    assert record["held_out_accuracy"] == max(accuracies)
    if best != record["epochs"]:
        assert record["best_epoch"] == best
    stop_set = np.array(dict(net.callbacks_)["sets"].rounds_[-1][1])
    predicted = net.predict(X[100:300][stop_set])
    assert np.mean(predicted == y[100:300][stop_set]) == pytest.approx(max(accuracies))


def test_a_round_too_small_to_hold_out_trains_min_epochs(digits):
    X, y = digits
    net = auto_net(callbacks__auto_stop__min_epochs=4).fit(X[:100], y[:100])
    net.partial_fit(X[100:101], y[100:101])
    assert net.rounds_[-1]["n_held_out"] == 0 and net.rounds_[-1]["epochs"] == 4
    assert net.rounds_[-1]["stopped_by"] == "held_out" and len(net.labelled_history_.deferred) == 0


def test_no_stop_set_without_auto_rounds_or_with_stop_split_none(digits):
    X, y = digits
    fixed = make_net(replay="er", round_epochs=3).fit(X[:100], y[:100]).partial_fit(X[100:200], y[100:200])
    assert fixed.rounds_[-1]["n_held_out"] == 0 and len(fixed.labelled_history_.deferred) == 0
    whole = auto_net(stop_split=None).fit(X[:100], y[:100]).partial_fit(X[100:200], y[100:200])
    assert whole.rounds_[-1]["n_held_out"] == 0 and whole.rounds_[-1]["epochs"] == 5  # min_epochs, no evidence


def test_held_out_rounds_are_deterministic_and_count_their_scoring(digits):
    X, y = digits
    first = auto_net().fit(X[:100], y[:100]).partial_fit(X[100:200], y[100:200])
    again = auto_net().fit(X[:100], y[:100]).partial_fit(X[100:200], y[100:200])
    strip = [{k: v for k, v in r.items() if k != "train_seconds"} for r in first.rounds_]
    assert strip == [{k: v for k, v in r.items() if k != "train_seconds"} for r in again.rounds_]
    record = first.rounds_[-1]
    trained = record["samples_backpropagated"]
    # forwarded = trained samples + the stop set once per epoch + the new points' stored logits
    assert record["samples_forwarded"] == trained + record["n_held_out"] * record["epochs"] + 100


def test_a_failed_held_out_round_changes_nothing_deferred_included_and_the_retry_is_identical(digits):
    X, y = digits
    params = dict(callbacks=[("fail", FailAt())], plasticity="shrink_perturb")
    reference = auto_net(**params).fit(X[:100], y[:100]).partial_fit(X[100:200], y[100:200])
    reference.partial_fit(X[200:300], y[200:300])
    net = auto_net(**params).fit(X[:100], y[:100]).partial_fit(X[100:200], y[100:200])
    before, deferred = fingerprint(net), net.labelled_history_.deferred.copy()
    net.set_params(callbacks__fail__error=Failing("mid-round"))
    with pytest.raises(Failing):
        net.partial_fit(X[200:300], y[200:300])
    assert fingerprint(net) == before and np.array_equal(net.labelled_history_.deferred, deferred)
    net.set_params(callbacks__fail__error=None)
    net.partial_fit(X[200:300], y[200:300])
    for key, value in reference.module_.state_dict().items():
        assert torch.equal(value, net.module_.state_dict()[key])
    assert np.array_equal(net.labelled_history_.deferred, reference.labelled_history_.deferred)


def test_checkpoints_keep_the_deferred_stop_set(digits, tmp_path):
    X, y = digits
    reference = auto_net().fit(X[:100], y[:100]).partial_fit(X[100:200], y[100:200]).partial_fit(X[200:300], y[200:300])
    saved = auto_net().fit(X[:100], y[:100]).partial_fit(X[100:200], y[100:200])
    saved.save_checkpoint(tmp_path)
    resumed = auto_net().load_checkpoint(tmp_path)
    assert np.array_equal(resumed.labelled_history_.deferred, saved.labelled_history_.deferred)
    resumed.partial_fit(X[200:300], y[200:300])
    for key, value in reference.module_.state_dict().items():
        assert torch.equal(value, resumed.module_.state_dict()[key])


def test_forget_renumbers_or_drops_deferred_points(digits):
    X, y = digits
    net = auto_net().fit(X[:100], y[:100]).partial_fit(X[100:200], y[100:200])
    deferred = net.labelled_history_.deferred.copy()
    net.forget([0, 1, int(deferred[0])])
    assert np.array_equal(net.labelled_history_.deferred, deferred[1:] - 3)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"stop_split": 0.0}, r"stop_split=0.0 is not valid: it must be a number in \(0, 1\) or None"),
        ({"stop_split": 1}, r"stop_split=1 is not valid"),
        ({"stop_split": "a fifth"}, r"stop_split='a fifth' is not valid"),
        ({"callbacks__auto_stop__patience": 0}, r"callbacks__auto_stop__patience=0 is not valid for HeldOutRoundStop"),
        ({"callbacks__auto_stop__min_loss_decrease": 1.0}, r"callbacks__auto_stop__min_loss_decrease=1.0"),
        ({"callbacks__auto_stop__restore_best": "yes"}, r"callbacks__auto_stop__restore_best='yes'"),
    ],
)
def test_bad_held_out_settings_are_named_before_anything_changes(digits, params, message):
    X, y = digits
    net = auto_net().fit(X[:100], y[:100])
    before = fingerprint(net)
    net.set_params(**params)
    with pytest.raises(ValueError, match=message):
        net.partial_fit(X[100:200], y[100:200])
    assert fingerprint(net) == before


def test_the_held_out_rule_is_the_default_auto_stop():
    assert isinstance(dict(make_net().initialize().callbacks_)["auto_stop"], HeldOutRoundStop)
