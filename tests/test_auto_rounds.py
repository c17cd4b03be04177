"""AutoRoundStop, the training-accuracy round rule (round_epochs="auto" before the held-out rule)."""

import math

import numpy as np
import pytest
import torch
from conftest import make_net

from skcal.callbacks import AutoRoundStop


def round_epochs_of(net, index):
    """skorch's log entries of round ``index`` (each round's epochs follow the previous round's)."""
    ends = np.cumsum([record["epochs"] for record in net.rounds_])
    start = 0 if index == 0 else ends[index - 1]
    return net.history[int(start) : int(ends[index])]


def rule_holds(epoch, start_accuracy, target=0.99, tolerance=0.02):
    kept = math.isnan(start_accuracy) or epoch["train_acc_replay"] >= start_accuracy - tolerance
    return epoch["train_acc_new"] >= min(target, start_accuracy) and kept


def first_confirmed(holds, confirmations=2, min_epochs=5):
    """The first epoch (1-based, at least ``min_epochs``) after the rule held ``confirmations`` epochs in a row."""
    streak = 0
    for epoch, held in enumerate(holds, start=1):
        streak = streak + 1 if held else 0
        if streak >= confirmations and epoch >= min_epochs:
            return epoch
    return None


@pytest.mark.parametrize("replay", ["er", "der", "sd"])
def test_auto_stops_exactly_when_its_rule_first_holds(digits, replay):
    X, y = digits
    net = make_net(
        callbacks__auto_stop=AutoRoundStop(),
        stop_split=None,
        replay=replay,
        round_epochs="auto",
        max_epochs=60,
        callbacks__auto_stop__patience=100,
    )
    net.fit(X[:200], y[:200])
    for start in range(200, 500, 100):
        net.partial_fit(X[start : start + 100], y[start : start + 100])
    for index in range(1, len(net.rounds_)):
        record, epochs = net.rounds_[index], round_epochs_of(net, index)
        start_accuracy = record["start_accuracy"]
        assert len(epochs) == record["epochs"] >= 1
        holds = [rule_holds(epoch, start_accuracy) for epoch in epochs]
        if record["stopped_by"] == "learned":
            assert first_confirmed(holds) == record["epochs"] >= 5
        else:
            assert record["stopped_by"] is None and record["epochs"] == 60 and first_confirmed(holds) is None
        assert 0 < start_accuracy <= 1


def test_already_learned_points_stop_as_soon_as_the_rule_is_confirmed(digits):
    X, y = digits
    net = make_net(
        callbacks__auto_stop=AutoRoundStop(),
        stop_split=None,
        replay="er",
        round_epochs="auto",
        max_epochs=200,
        train_accuracy_stop=1.0,
    ).fit(X[:100], y[:100])
    assert net.rounds_[0]["train_accuracy"] == 1.0
    net.partial_fit(X[:100], y[:100])  # points the model already fits
    assert net.rounds_[1]["epochs"] == 5 and net.rounds_[1]["stopped_by"] == "learned"  # min_epochs
    net.set_params(callbacks__auto_stop__confirmations=1, callbacks__auto_stop__min_epochs=1)
    net.partial_fit(X[:100], y[:100])
    assert net.rounds_[2]["epochs"] == 1 and net.rounds_[2]["stopped_by"] == "learned"


def test_unlearnable_points_stop_on_the_plateau_or_the_cap(digits):
    X, y = digits
    conflicting_X = np.concatenate([X[300:340], X[300:340]])
    conflicting_y = np.concatenate([y[300:340], (y[300:340] + 1) % 10])  # the same images with two labels
    net = make_net(
        callbacks__auto_stop=AutoRoundStop(), stop_split=None, replay="er", round_epochs="auto", max_epochs=200
    ).fit(X[:200], y[:200])
    net.partial_fit(conflicting_X, conflicting_y)
    record = net.rounds_[1]
    assert record["stopped_by"] == "plateau" and 5 <= record["epochs"] < 200
    new_accuracies = [epoch["train_acc_new"] for epoch in round_epochs_of(net, 1)]
    assert len(new_accuracies) == record["epochs"] and max(new_accuracies) < 0.75  # half the labels contradict

    capped = make_net(
        callbacks__auto_stop=AutoRoundStop(),
        stop_split=None,
        replay="er",
        round_epochs="auto",
        max_epochs=7,
        callbacks__auto_stop__patience=1000,
    )
    capped.fit(X[:200], y[:200]).partial_fit(conflicting_X, conflicting_y)
    assert capped.rounds_[1]["epochs"] == 7 and capped.rounds_[1]["stopped_by"] is None


def test_auto_is_deterministic_with_random_state(digits):
    X, y = digits

    def run():
        net = make_net(
            callbacks__auto_stop=AutoRoundStop(), stop_split=None, replay="der", round_epochs="auto", max_epochs=30
        ).fit(X[:150], y[:150])
        for start in (150, 250):
            net.partial_fit(X[start : start + 100], y[start : start + 100])
        return net

    first, second = run(), run()
    assert [r["epochs"] for r in first.rounds_] == [r["epochs"] for r in second.rounds_]
    for key, value in first.module_.state_dict().items():
        assert torch.equal(value, second.module_.state_dict()[key])


def test_auto_leaves_the_fixed_protocol_and_labelled_set_rounds_alone(digits):
    X, y = digits
    fixed = (
        make_net(callbacks__auto_stop=AutoRoundStop(), stop_split=None, replay="er", round_epochs=4)
        .fit(X[:100], y[:100])
        .partial_fit(X[100:150], y[100:150])
    )
    assert fixed.rounds_[1]["epochs"] == 4 and fixed.rounds_[1]["stopped_by"] is None
    retrain = make_net(
        callbacks__auto_stop=AutoRoundStop(), stop_split=None, replay="retrain", round_epochs="auto", max_epochs=6
    ).fit(X[:100], y[:100])
    retrain.partial_fit(X[100:150], y[100:150])
    assert retrain.rounds_[1]["epochs"] == 6  # labelled-set rounds use max_epochs / train_accuracy_stop


def test_auto_round_counts_the_start_measurement(digits):
    X, y = digits
    net = make_net(
        callbacks__auto_stop=AutoRoundStop(), stop_split=None, replay="finetune", round_epochs="auto", max_epochs=30
    ).fit(X[:100], y[:100])
    net.partial_fit(X[100:150], y[100:150])
    record = net.rounds_[1]
    per_epoch = 50
    # training forwards (one per new point and epoch) + stored logits (50) + the history sample (100)
    assert record["samples_forwarded"] == record["epochs"] * per_epoch + 50 + 100


def test_auto_rule_parameters_are_skorch_callback_parameters(digits):
    X, y = digits
    net = make_net(
        callbacks__auto_stop=AutoRoundStop(),
        stop_split=None,
        replay="er",
        round_epochs="auto",
        max_epochs=50,
        callbacks__auto_stop__new_accuracy=0.5,
    )
    net.fit(X[:200], y[:200]).partial_fit(X[200:300], y[200:300])
    assert isinstance(dict(net.callbacks_)["auto_stop"], AutoRoundStop)
    epochs = round_epochs_of(net, 1)
    assert epochs[-1]["train_acc_new"] >= 0.5 and net.rounds_[1]["stopped_by"] == "learned"
    with pytest.raises(
        ValueError, match="round_epochs='often' is not valid: it must be a non-negative integer or \"auto\""
    ):
        make_net(callbacks__auto_stop=AutoRoundStop(), stop_split=None, round_epochs="often").fit(X[:50], y[:50])


@pytest.mark.parametrize(
    "name, value",
    [
        ("sample_size", 0),
        ("patience", 0),
        ("confirmations", 0),
        ("min_epochs", 0),
        ("new_accuracy", "x"),
        ("tolerance", float("nan")),
        ("min_improvement", 2),
    ],
)
def test_bad_auto_rule_parameters_are_named_before_training(digits, name, value):
    X, y = digits
    net = make_net(
        callbacks__auto_stop=AutoRoundStop(),
        stop_split=None,
        replay="er",
        round_epochs="auto",
        **{f"callbacks__auto_stop__{name}": value},
    )
    with pytest.raises(ValueError, match=f"callbacks__auto_stop__{name}="):
        net.fit(X[:50], y[:50])
    assert not net.__sklearn_is_fitted__()
