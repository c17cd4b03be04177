"""Replay memory: class-balanced draws, a bounded memory (reservoir or class-balanced), history off the device."""

import numpy as np
import pytest
import torch
from conftest import make_net

from skcal.memory import balanced_draw, class_balanced, reservoir
from skcal.replay import ExperienceReplay, ReplayStrategy


def test_balanced_draw_gives_each_class_an_equal_share():
    labels = np.array([0] * 100 + [1] * 40 + [2] * 60)
    for seed in range(20):
        chosen = balanced_draw(labels, 30, np.random.default_rng(seed))
        assert len(chosen) == 30 and len(set(chosen.tolist())) == 30
        assert sorted(np.bincount(labels[chosen]).tolist()) == [10, 10, 10]


def test_a_small_class_gives_all_it_has_and_the_rest_is_shared():
    labels = np.array([0] * 100 + [1] * 5 + [2] * 50)
    for seed in range(20):
        counts = np.bincount(labels[balanced_draw(labels, 30, np.random.default_rng(seed))], minlength=3)
        assert counts[1] == 5 and counts.sum() == 30 and abs(int(counts[0]) - int(counts[2])) <= 1
    everything = balanced_draw(labels, 1000, np.random.default_rng(0))
    assert sorted(everything.tolist()) == list(range(len(labels)))


def test_reservoir_keeps_each_point_with_equal_probability():
    capacity, n_total, runs = 20, 100, 2000
    kept = np.zeros(n_total)
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        retained, seen = np.empty(0, dtype=np.int64), 0
        for stop in (30, 55, 100):  # three rounds
            retained, seen = reservoir(retained, seen, stop, capacity, rng), stop
        assert len(retained) == capacity and len(set(retained.tolist())) == capacity
        kept[retained] += 1
    frequency = kept / runs  # each point: capacity / n_total = 0.2
    assert np.abs(frequency - 0.2).max() < 0.05
    assert abs(frequency[:30].mean() - frequency[70:].mean()) < 0.02  # early and late points alike


def test_class_balanced_retention_evicts_from_the_largest_class():
    labels = np.array([0] * 60 + [1] * 30 + [2] * 4)
    retained = class_balanced(np.empty(0, dtype=np.int64), labels, 0, 30, np.random.default_rng(0))
    counts = np.bincount(labels[retained], minlength=3)
    assert len(retained) == 30 and counts[2] == 4 and sorted(counts[:2].tolist()) == [13, 13]


def replayed_positions(net):
    return torch.cat(RecordingER.chosen).tolist()


class RecordingER(ExperienceReplay):
    chosen = []

    def select_replay(self, net, draw):
        positions = super().select_replay(net, draw)
        RecordingER.chosen.append(positions)
        return positions


def imbalanced(digits, rare=(8, 9), keep=6):
    X, y = digits
    rows = np.concatenate([np.flatnonzero(~np.isin(y, rare))[:300]] + [np.flatnonzero(y == c)[:keep] for c in rare])
    return X[rows], y[rows]


def test_class_balanced_replay_batches_on_imbalanced_data(digits):
    X, y = imbalanced(digits)
    RecordingER.chosen = []
    net = make_net(replay=RecordingER, replay__sampling="class_balanced", replay_size=20, round_epochs=2)
    net.fit(X, y).partial_fit(digits[0][1500:1540], digits[1][1500:1540])
    labels = net.labelled_history_.y.numpy()
    for batch in RecordingER.chosen:
        counts = np.bincount(labels[batch.numpy()], minlength=10)
        assert counts.sum() == 20 and counts.max() - counts.min() <= 1  # 10 classes, 2 each
    RecordingER.chosen = []
    uniform = make_net(replay=RecordingER, replay_size=20, round_epochs=2)
    uniform.fit(X, y).partial_fit(digits[0][1500:1540], digits[1][1500:1540])
    rare = sum(int(np.isin(labels[b.numpy()], [8, 9]).sum()) for b in RecordingER.chosen)
    assert rare < 0.5 * 4 * len(RecordingER.chosen)  # uniform draws rarely reach 4 rare points per batch


@pytest.mark.parametrize("retention", ["reservoir", "class_balanced"])
def test_a_bounded_memory_replays_only_retained_points_and_keeps_every_label(digits, retention):
    X, y = digits
    RecordingER.chosen = []
    net = make_net(replay=RecordingER, replay__memory_size=50, replay__retention=retention, replay_size=16)
    net.fit(X[:100], y[:100])
    assert net.labelled_history_.retained is None  # the seed round keeps everything
    for start in (100, 140, 180):
        net.partial_fit(X[start : start + 40], y[start : start + 40])
        retained = net.labelled_history_.retained
        assert len(retained) == 50 and len(net.labelled_history_) == start + 40
    RecordingER.chosen = []
    net.partial_fit(X[220:260], y[220:260])
    previous = set(retained.tolist())
    assert set(replayed_positions(net)) <= previous  # this round replayed only what was retained before it
    assert len(net.labelled_history_) == 260 and len(net.labelled_history_.X) == 260


def test_the_replay_memory_survives_checkpoints_and_rolls_back(digits, tmp_path):
    X, y = digits
    net = make_net(replay="er", replay__memory_size=40).fit(X[:100], y[:100]).partial_fit(X[100:150], y[100:150])
    net.save_checkpoint(tmp_path)
    resumed = make_net(replay="er", replay__memory_size=40).load_checkpoint(tmp_path)
    np.testing.assert_array_equal(resumed.labelled_history_.retained, net.labelled_history_.retained)
    before = net.labelled_history_.retained.copy()

    class Boom(ReplayStrategy):
        name = "boom"

        def update_memory(self, history, rng):
            super().update_memory(history, rng)
            raise RuntimeError("after the memory changed")

        def loss_with_replay(self, net, current, replay_pred, replay):
            return current

    net.set_params(replay=Boom, replay__memory_size=10)
    with pytest.raises(RuntimeError, match="after the memory changed"):
        net.partial_fit(X[150:200], y[150:200])
    np.testing.assert_array_equal(net.labelled_history_.retained, before)
    assert len(net.labelled_history_) == 150


def test_history_on_the_cpu_trains_like_the_default(digits):
    X, y = digits
    first = make_net(history_device="cpu").fit(X[:100], y[:100]).partial_fit(X[100:150], y[100:150])
    second = make_net().fit(X[:100], y[:100]).partial_fit(X[100:150], y[100:150])
    for key, value in first.module_.state_dict().items():
        assert torch.equal(value, second.module_.state_dict()[key])
    assert first.labelled_history_.device == torch.device("cpu")


@pytest.mark.parametrize(
    "params, message",
    [
        (
            {"replay__sampling": "stratified"},
            r'replay__sampling=\'stratified\' .* must be one of "class_balanced", "uniform"',
        ),
        ({"replay__memory_size": 0}, r"replay__memory_size=0 .* must be a positive integer or None"),
        ({"replay__retention": "fifo"}, r"replay__retention='fifo'"),
        ({"history_device": "nowhere"}, r"history_device='nowhere' is not valid"),
    ],
)
def test_bad_memory_parameters_are_clear_errors(digits, params, message):
    X, y = digits
    net = make_net(replay="der").fit(X[:50], y[:50])
    net.set_params(**params)
    with pytest.raises(ValueError, match=message):
        net.partial_fit(X[50:70], y[50:70])
    assert len(net.labelled_history_) == 50
