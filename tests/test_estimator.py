import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import MLP, RecordingMLP, TokenBag, make_net, module_state, rows_in, same_state
from skorch.callbacks import Callback

from skcal import ContinualActiveClassifier
from skcal.replay import ExperienceReplay, FineTune


def split_rounds(X, y, sizes):
    bounds = np.cumsum([0, *sizes])
    return [(X[a:b], y[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


# -- fit and the history ------------------------------------------------------


def test_fit_makes_the_history_exactly_the_training_set(digits):
    X, y = digits
    net = make_net().fit(X[:100], y[:100])
    history = net.labelled_history_
    assert len(history) == 100
    np.testing.assert_array_equal(history.X.numpy(), X[:100])
    np.testing.assert_array_equal(net.classes_[history.y.numpy()], y[:100])
    assert history.rounds.tolist() == [0] * 100
    assert history.logits.shape == (100, 10)
    assert [r["strategy"] for r in net.rounds_] == ["seed"]


def test_fit_again_starts_a_new_campaign(digits):
    X, y = digits
    net = make_net().fit(X[:100], y[:100]).partial_fit(X[100:150], y[100:150])
    net.fit(X[200:260], y[200:260])
    assert len(net.labelled_history_) == 60
    assert len(net.rounds_) == 1


def test_partial_fit_first_call_is_the_seed_round(digits):
    X, y = digits
    net = make_net().partial_fit(X[:80], y[:80], classes=np.arange(10))
    assert net.rounds_[0]["strategy"] == "seed"
    assert len(net.labelled_history_) == 80


def test_stored_logits_are_the_models_outputs_at_the_end_of_each_round(digits):
    X, y = digits
    net = make_net(replay="er").fit(X[:60], y[:60])
    logits_round0 = net.forward(X[:60]).clone()
    torch.testing.assert_close(net.labelled_history_.logits[:60], logits_round0)
    net.partial_fit(X[60:100], y[60:100])
    # round-0 logits are kept as they were; round-1 logits are the new model's
    torch.testing.assert_close(net.labelled_history_.logits[:60], logits_round0)
    torch.testing.assert_close(net.labelled_history_.logits[60:], net.forward(X[60:100]))
    assert net.labelled_history_.rounds.tolist() == [0] * 60 + [1] * 40


# -- what each strategy trains on ---------------------------------------------


def training_rows(net):
    return torch.cat(net.module_.seen) if net.module_.seen else torch.empty(0, 64)


def test_finetune_trains_only_on_new_points(digits):
    X, y = digits
    net = make_net(module=RecordingMLP, replay="finetune", round_epochs=4).fit(X[:100], y[:100])
    net.module_.seen.clear()
    net.partial_fit(X[100:140], y[100:140])
    seen = training_rows(net)
    assert len(seen) == 4 * 40
    assert rows_in(seen, X[100:140]).all()
    record = net.rounds_[-1]
    assert record["samples_backpropagated"] == 160 and record["epochs"] == 4


def test_er_joins_each_batch_with_a_replay_batch_from_the_history(digits):
    X, y = digits
    net = make_net(module=RecordingMLP, replay="er", replay_size=16, batch_size=10, round_epochs=2)
    net.fit(X[:100], y[:100])
    net.module_.seen.clear()
    net.partial_fit(X[100:130], y[100:130])
    batches = net.module_.seen
    assert len(batches) == 2 * 3  # epochs x ceil(30 / 10)
    for batch in batches:
        assert len(batch) == 10 + 16
        assert rows_in(batch[:10], X[100:130]).all()
        assert rows_in(batch[10:], X[:100]).all()
        assert not rows_in(batch[10:], X[100:130]).any()
        assert len(torch.unique(batch[10:], dim=0)) == 16  # drawn without replacement
    assert net.rounds_[-1]["samples_backpropagated"] == 6 * 26


def test_replay_size_larger_than_history_replays_the_whole_history(digits):
    X, y = digits
    net = make_net(module=RecordingMLP, replay="er", replay_size=500, batch_size=20, round_epochs=1)
    net.fit(X[:30], y[:30])
    net.module_.seen.clear()
    net.partial_fit(X[30:50], y[30:50])
    (batch,) = net.module_.seen
    assert len(batch) == 20 + 30


def test_retrain_reinitialises_and_trains_on_the_whole_labelled_set(digits):
    X, y = digits
    starts = []

    class StartWeights(Callback):
        def on_train_begin(self, net, **kwargs):
            starts.append(module_state(net))

    net = make_net(module=RecordingMLP, replay="retrain", max_epochs=2, callbacks=[StartWeights()])
    net.fit(X[:60], y[:60])
    end_of_seed = module_state(net)
    net.module_.seen.clear()
    net.partial_fit(X[60:90], y[60:90])
    assert not same_state(starts[-1], end_of_seed)
    seen = training_rows(net)
    assert len(seen) == 2 * 90
    for epoch in (seen[:90], seen[90:]):  # each epoch is one pass over all 90 labelled points
        assert rows_in(epoch, X[:90]).all() and rows_in(torch.from_numpy(X[:90]), epoch).all()


def test_retrain_reinitialises_a_module_instance_too(digits):
    X, y = digits
    starts = []

    class StartWeights(Callback):
        def on_train_begin(self, net, **kwargs):
            starts.append(module_state(net))

    net = make_net(module=MLP(), replay="retrain", callbacks=[StartWeights()]).fit(X[:60], y[:60])
    end_of_seed = module_state(net)
    net.partial_fit(X[60:90], y[60:90])
    assert not same_state(starts[-1], end_of_seed)


def test_warmstart_keeps_weights_and_trains_on_the_whole_labelled_set(digits):
    X, y = digits
    starts = []

    class StartWeights(Callback):
        def on_train_begin(self, net, **kwargs):
            starts.append(module_state(net))

    net = make_net(module=RecordingMLP, replay="warmstart", max_epochs=2, callbacks=[StartWeights()])
    net.fit(X[:60], y[:60])
    end_of_seed = module_state(net)
    net.module_.seen.clear()
    net.partial_fit(X[60:90], y[60:90])
    assert same_state(starts[-1], end_of_seed)
    assert len(training_rows(net)) == 2 * 90


def test_strategy_as_class_or_instance(digits):
    X, y = digits
    for replay in (FineTune, ExperienceReplay()):
        net = make_net(replay=replay).fit(X[:50], y[:50]).partial_fit(X[50:80], y[50:80])
        assert net.rounds_[-1]["strategy"] == replay.name


# -- round records and stopping -----------------------------------------------


def test_rounds_records_compute(digits):
    X, y = digits
    net = make_net(replay="er", replay_size=8, batch_size=16, round_epochs=2).fit(X[:64], y[:64])
    for X_new, y_new in split_rounds(X[64:], y[64:], [32, 48]):
        net.partial_fit(X_new, y_new)
    first, second, third = net.rounds_
    assert [r["round"] for r in net.rounds_] == [0, 1, 2]
    assert [r["n_history"] for r in net.rounds_] == [0, 64, 96]
    assert [r["n_new"] for r in net.rounds_] == [64, 32, 48]
    assert first["samples_backpropagated"] == 5 * 64
    assert second["samples_backpropagated"] == 2 * (32 + 2 * 8)
    assert third["samples_backpropagated"] == 2 * (48 + 3 * 8)
    # forwarded = backpropagated + the end-of-round logits of the new points
    assert third["samples_forwarded"] == third["samples_backpropagated"] + 48
    assert all(r["train_seconds"] > 0 and 0 <= r["train_accuracy"] <= 1 for r in net.rounds_)
    assert "train_acc" in net.history[-1]


def test_train_accuracy_stop_ends_full_pool_rounds_early(digits):
    X, y = digits
    net = make_net(max_epochs=200, train_accuracy_stop=0.9, replay="retrain").fit(X[:200], y[:200])
    net.partial_fit(X[200:300], y[200:300])
    for record in net.rounds_:
        assert record["epochs"] < 200
        assert record["train_accuracy"] >= 0.9
    net = make_net(max_epochs=4, train_accuracy_stop=None).fit(X[:200], y[:200])
    assert net.rounds_[0]["epochs"] == 4


def test_replay_rounds_ignore_the_accuracy_stop(digits):
    X, y = digits
    net = make_net(train_accuracy_stop=0.0, round_epochs=5, replay="er").fit(X[:100], y[:100])
    net.partial_fit(X[100:150], y[100:150])
    assert net.rounds_[0]["epochs"] == 1
    assert net.rounds_[1]["epochs"] == 5


def test_scale_lr_multiplies_the_learning_rate_in_replay_rounds_only(digits):
    X, y = digits
    seen_lr = []

    class LearningRate(Callback):
        def on_epoch_begin(self, net, **kwargs):
            seen_lr.append(net.optimizer_.param_groups[0]["lr"])

    net = make_net(
        lr=0.05, batch_size=20, replay_size=30, scale_lr=True, round_epochs=1, max_epochs=1, callbacks=[LearningRate()]
    )
    net.fit(X[:40], y[:40]).partial_fit(X[40:60], y[40:60])
    assert seen_lr == [0.05, pytest.approx(0.05 * (20 + 30) / 20)]
    assert net.optimizer_.param_groups[0]["lr"] == 0.05


def test_reset_optimizer_false_keeps_optimizer_state(digits):
    X, y = digits
    for reset, expect_same in ((False, True), (True, False)):
        net = make_net(optimizer=torch.optim.SGD, optimizer__momentum=0.9, reset_optimizer=reset)
        net.fit(X[:40], y[:40])
        optimizer = net.optimizer_
        net.partial_fit(X[40:60], y[40:60])
        assert (net.optimizer_ is optimizer) is expect_same


# -- inputs -------------------------------------------------------------------


def test_string_labels_round_trip(digits):
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    net = make_net().fit(X[:200], names[y[:200]]).partial_fit(X[200:260], names[y[200:260]])
    predicted = net.predict(X[300:400])
    assert predicted.dtype.kind == "U" and set(predicted) <= set(names)
    assert net.score(X[300:400], names[y[300:400]]) > 0.3


def test_declared_classes_allow_a_class_first_labelled_later(digits):
    X, y = digits
    early, late = y < 8, y >= 8
    net = make_net(replay="er", round_epochs=20).partial_fit(X[early][:100], y[early][:100], classes=np.arange(10))
    net.partial_fit(X[late][:60], y[late][:60])
    assert set(net.labelled_history_.y.tolist()) >= {8, 9}
    assert np.isin(net.predict(X[late][60:160]), [8, 9]).mean() > 0.5


def _rare_class_campaign(digits, **params):
    """Rounds 0-3 without any 9; round 4 labels 12 nines among 60 points (3.5% of the labelled set)."""
    X, y = digits
    rng = np.random.default_rng(0)
    rare, others = rng.permutation(np.flatnonzero(y == 9)), rng.permutation(np.flatnonzero(y != 9))
    net = make_net(max_epochs=30, classes=np.arange(10), random_state=0, **params)
    net.fit(X[others[:100]], y[others[:100]])
    for start in (100, 160, 220):
        net.partial_fit(X[others[start : start + 60]], y[others[start : start + 60]])
    before = np.mean(net.predict(X[rare[100:]]) == 9)
    round_four = np.concatenate([rare[:12], others[280:328]])
    net.partial_fit(X[round_four], y[round_four])
    recall_nine = np.mean(net.predict(X[rare[100:]]) == 9)
    accuracy_others = np.mean(net.predict(X[others[-300:]]) == y[others[-300:]])
    return net, before, recall_nine, accuracy_others


@pytest.mark.parametrize(("replay", "round_epochs"), [("er", 30), ("sd", 150), ("der", 150)])
def test_a_rare_class_first_labelled_in_round_four_is_learned(digits, replay, round_epochs):
    # SD weights the new points by their share of the labelled set (lambda_t = 0.18 here) and SD/DER
    # anchor old points' outputs, so a rare late class needs more round epochs than ER (docs/guide.md).
    net, before, recall_nine, accuracy_others = _rare_class_campaign(digits, replay=replay, round_epochs=round_epochs)
    _, _, retrain_recall, _ = _rare_class_campaign(digits, replay="retrain")
    history = net.labelled_history_
    assert set(history.rounds[history.y == 9].tolist()) == {4}
    assert before == 0 and retrain_recall > 0.3
    assert recall_nine >= retrain_recall, (
        f"{replay}: recall {recall_nine:.2f} on the late class, AL {retrain_recall:.2f}"
    )
    assert accuracy_others > 0.85, f"{replay}: learning the late class broke the others ({accuracy_others:.2f})"


def test_sparse_input_matches_dense_training(digits):
    X, y = digits
    dense = make_net(replay="er").fit(X[:100], y[:100]).partial_fit(X[100:150], y[100:150])
    sparse = make_net(replay="er").fit(sp.csr_matrix(X[:100]), y[:100])
    sparse.partial_fit(sp.csr_matrix(X[100:150]), y[100:150])
    assert sparse.labelled_history_.is_sparse
    np.testing.assert_allclose(
        sparse.predict_proba(sp.csr_matrix(X[300:400])), dense.predict_proba(X[300:400]), atol=1e-5
    )


def test_object_arrays_of_numbers_are_numbers(digits):
    X, y = digits
    net = make_net().fit(X[:40].astype(object), y[:40])
    assert net.labelled_history_.X.dtype == torch.float32


def test_torch_tensor_and_float64_inputs(digits):
    X, y = digits
    net = make_net().fit(torch.from_numpy(X[:80]).double(), torch.from_numpy(y[:80]))
    net.partial_fit(X[80:120].astype(np.float64), y[80:120])
    assert net.labelled_history_.X.dtype == torch.float32
    assert net.predict(torch.from_numpy(X[:5])).shape == (5,)
    np.testing.assert_allclose(net.predict_proba(torch.from_numpy(X[:5]).double()), net.predict_proba(X[:5]))


def test_dict_input_end_to_end():
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 50, size=(120, 6))
    y = ids[:, 0] % 3  # the label is a function of the first token
    X = {"input_ids": ids, "attention_mask": np.ones_like(ids)}

    def rows(a, b):
        return {key: value[a:b] for key, value in X.items()}

    net = make_net(module=TokenBag, replay="er", lr=0.5, max_epochs=10)
    net.fit(rows(0, 60), y[:60]).partial_fit(rows(60, 100), y[60:100])
    assert net.labelled_history_.feature_shape == {"input_ids": (6,), "attention_mask": (6,)}
    assert net.predict(rows(100, 120)).shape == (20,)


# -- sklearn and skorch conventions --------------------------------------------


def test_clone_and_params_include_replay_hyperparameters():
    from sklearn.base import clone

    net = make_net(replay="der", replay__alpha=0.3)
    params = net.get_params()
    assert params["replay__alpha"] == 0.3
    assert clone(net).get_params()["replay__alpha"] == 0.3
    assert clone(net).get_params()["replay"] == "der"
    net.set_params(replay="finetune", replay_size=7, round_epochs=2)
    twin = clone(net)
    assert (twin.replay, twin.replay_size, twin.round_epochs) == ("finetune", 7, 2)


def test_unknown_replay_hyperparameter_is_a_clear_error(digits):
    X, y = digits
    net = make_net(replay="er", replay__alpah=0.5)
    with pytest.raises(ValueError, match=r"\['alpah'\] for ExperienceReplay"):
        net.fit(X[:50], y[:50])


def test_another_methods_hyperparameter_is_ignored_so_grids_can_mix_methods(digits):
    X, y = digits
    net = make_net(replay="retrain", replay__alpha=0.5, max_epochs=2).fit(X[:50], y[:50])
    net.partial_fit(X[50:70], y[50:70])
    assert net.rounds_[-1]["strategy"] == "retrain"


def test_set_params_on_a_fitted_net_changes_later_rounds(digits):
    X, y = digits
    net = make_net(replay="er").fit(X[:50], y[:50])
    net.set_params(replay="finetune", replay_size=0, module__n_hidden=32)
    net.partial_fit(X[50:80], y[50:80])
    assert net.rounds_[-1]["strategy"] == "finetune"


def test_pickle_round_trip_keeps_history_and_predictions(digits):
    import pickle

    X, y = digits
    net = make_net().fit(X[:60], y[:60]).partial_fit(X[60:90], y[60:90])
    restored = pickle.loads(pickle.dumps(net))
    assert torch.equal(restored.labelled_history_.X, net.labelled_history_.X)
    assert torch.equal(restored.labelled_history_.logits, net.labelled_history_.logits)
    assert restored.rounds_ == net.rounds_
    np.testing.assert_array_equal(restored.predict_proba(X[200:260]), net.predict_proba(X[200:260]))
    restored.partial_fit(X[90:110], y[90:110])
    assert len(restored.labelled_history_) == 110


def test_grid_search_over_replay_and_replay_size(digits):
    from sklearn.model_selection import GridSearchCV

    X, y = digits
    search = GridSearchCV(
        make_net(max_epochs=3),
        {"replay": ["retrain", "er"], "replay_size": [8, 16]},
        cv=2,
    )
    search.fit(X[:200], y[:200])
    assert len(search.cv_results_["params"]) == 4
    assert search.best_estimator_.replay in ("retrain", "er")


def test_random_state_makes_training_reproducible_and_leaves_global_rng_alone(digits):
    X, y = digits

    def campaign(seed):
        net = make_net(replay="er", random_state=seed, module__n_hidden=16)
        net.fit(X[:80], y[:80]).partial_fit(X[80:120], y[80:120]).partial_fit(X[120:150], y[120:150])
        records = [{k: v for k, v in r.items() if k != "train_seconds"} for r in net.rounds_]
        return records, net.predict_proba(X[500:600])

    global_state = torch.get_rng_state()
    first, second, other = campaign(3), campaign(3), campaign(4)
    assert torch.equal(torch.get_rng_state(), global_state)
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[1], other[1])


def test_skorch_features_keep_working(digits):
    X, y = digits
    calls = []

    class Count(Callback):
        def on_epoch_end(self, net, **kwargs):
            calls.append(len(net.history))

    net = make_net(
        module__n_hidden=8,
        optimizer=torch.optim.Adam,
        optimizer__weight_decay=1e-4,
        callbacks=[Count()],
        lr=0.01,
        train_split=None,
    )
    net.fit(X[:50], y[:50]).partial_fit(X[50:80], y[50:80])
    assert net.module_.hidden.out_features == 8
    assert isinstance(net.optimizer_, torch.optim.Adam)
    assert len(calls) == 5 + 3
    np.testing.assert_allclose(net.predict_proba(X[:10]).sum(axis=1), 1, rtol=1e-5)


def test_skorch_validation_split_reports_accuracy_on_string_labels(digits):
    from skorch.dataset import ValidSplit

    X, y = digits
    names = np.array(list("abcdefghij"))
    net = make_net(train_split=ValidSplit(4), max_epochs=3).fit(X[:200], names[y[:200]])
    assert 0 <= net.history[-1]["valid_acc"] <= 1


# -- bad input ------------------------------------------------------------------


def snapshot(net):
    history = net.labelled_history_
    return len(history), history.n_staged, len(net.rounds_), module_state(net), history.X.clone()


def assert_unchanged(net, before):
    after = snapshot(net)
    assert after[:3] == before[:3]
    assert same_state(after[3], before[3])
    assert torch.equal(after[4], before[4])


def with_a_dict(X):
    values = X.astype(object)
    values[0, 0] = {"not": "a number"}
    return values


@pytest.mark.parametrize(
    ("make_bad", "message"),
    [
        (lambda X, y: (X[:10], np.full(10, 11)), r"label\(s\) \[11\] not among the classes"),
        (lambda X, y: (X[:10, :50], y[:10]), "X has 50 features, but ContinualActiveClassifier is expecting 64"),
        (lambda X, y: (np.where(np.eye(10, 64) > 0, np.nan, X[:10]), y[:10]), "NaN or infinity"),
        (lambda X, y: (np.where(np.eye(10, 64) > 0, np.inf, X[:10]), y[:10]), "NaN or infinity"),
        (lambda X, y: (X[:10], y[:9]), "10 samples but y has 9"),
        (lambda X, y: (X[:0], y[:0]), "empty"),
        (lambda X, y: (X[0], y[:1]), "2 or more dimensions"),
        (lambda X, y: (with_a_dict(X[:10]), y[:10]), "not numbers"),
        (lambda X, y: (sp.csr_matrix(X[:10]), y[:10]), "sparse but earlier rounds were dense"),
        (lambda X, y: (X[:10], np.where(np.arange(10) == 3, np.nan, y[:10])), "NaN"),
    ],
)
def test_bad_partial_fit_input_raises_and_leaves_state_unchanged(digits, make_bad, message):
    X, y = digits
    net = make_net().fit(X[:50], y[:50])
    before = snapshot(net)
    X_bad, y_bad = make_bad(X, y)
    with pytest.raises((ValueError, TypeError), match=message):
        net.partial_fit(X_bad, y_bad)
    assert_unchanged(net, before)
    net.partial_fit(X[50:60], y[50:60])  # still usable
    assert len(net.labelled_history_) == 60


def test_unknown_replay_name_lists_the_valid_ones(digits):
    X, y = digits
    net = make_net().fit(X[:50], y[:50])
    before = snapshot(net)
    net.set_params(replay="sds3")
    with pytest.raises(ValueError, match="Unknown replay strategy 'sds3'.*'retrain'.*'er'"):
        net.partial_fit(X[50:60], y[50:60])
    assert_unchanged(net, before)
    with pytest.raises(ValueError, match="Unknown replay strategy"):
        make_net(replay="nope").fit(X[:50], y[:50])


def test_raw_strings_are_rejected_with_a_pointer_to_tokenisation():
    net = make_net()
    with pytest.raises(TypeError, match="tokenised"):
        net.fit(np.array([["a cat"], ["a dog"]]), [0, 1])


def test_dict_arrays_of_different_lengths_are_rejected():
    net = make_net(module=TokenBag)
    with pytest.raises(ValueError, match="different lengths"):
        net.fit({"input_ids": np.ones((4, 3), int), "attention_mask": np.ones((5, 3), int)}, [0, 1, 2, 0])


def test_classes_on_a_later_call_must_match(digits):
    X, y = digits
    net = make_net().fit(X[:50], y[:50])
    with pytest.raises(ValueError, match="differs from the classes"):
        net.partial_fit(X[50:60], y[50:60], classes=np.arange(11))


def test_module_output_width_must_match_the_classes(digits):
    X, y = digits
    net = make_net(module__n_out=3)
    with pytest.raises(ValueError, match=r"there are 10 classes.*\(n_samples, 10\)"):
        net.fit(X[:50], y[:50])


def test_diverging_loss_names_round_and_epoch_and_leaves_history(digits):
    X, y = digits
    net = make_net(replay="finetune").fit(X[:50], y[:50])
    before = snapshot(net)
    net.set_params(lr=1e30)
    with pytest.raises(FloatingPointError, match=r"Round 1, epoch \d+"):
        net.partial_fit(X[50:60] * 1e6, y[50:60])
    after = snapshot(net)
    assert after[:3] == before[:3] and torch.equal(after[4], before[4])


def test_nllloss_is_rejected(digits):
    X, y = digits
    with pytest.raises(ValueError, match="logits"):
        make_net(criterion=torch.nn.NLLLoss).fit(X[:20], y[:20])


def test_predict_before_fit_is_a_not_fitted_error(digits):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        make_net().predict(digits[0][:3])


def test_constructor_accepts_plain_skorch_arguments():
    net = ContinualActiveClassifier(MLP, lr=0.3, batch_size=7)
    assert net.get_params()["iterator_train__shuffle"] is True
    assert (net.lr, net.batch_size, net.replay, net.replay_size) == (0.3, 7, "er", None)


def test_dataloader_options_fall_back_to_torchs_dataloader(digits):
    X, y = digits
    fast = make_net(replay="er", max_epochs=40).fit(X[:60], y[:60]).partial_fit(X[60:90], y[60:90])
    loader = make_net(replay="er", max_epochs=40, iterator_train__num_workers=0, iterator_valid__num_workers=0)
    loader.fit(X[:60], y[:60]).partial_fit(X[60:90], y[60:90])
    assert type(loader.get_iterator(loader.get_dataset(X[:10]), training=True)).__name__ == "DataLoader"
    assert type(fast.get_iterator(fast.get_dataset(X[:10]), training=True)).__name__ == "BatchIterator"
    for key in ("epochs", "samples_forwarded", "samples_backpropagated"):
        assert [r[key] for r in loader.rounds_] == [r[key] for r in fast.rounds_]
    fast_score, loader_score = fast.score(X[500:700], y[500:700]), loader.score(X[500:700], y[500:700])
    assert loader_score > 0.3 and abs(loader_score - fast_score) < 0.1  # chance is 0.1


def test_a_failed_seed_round_keeps_the_previous_campaign(digits):
    X, y = digits
    net = make_net().fit(X[:50], y[:50]).partial_fit(X[50:70], y[50:70])
    before = snapshot(net)
    epochs_logged = len(net.history)
    with pytest.raises(ValueError, match=r"cannot take a batch of shape \(32, 60\)"):
        net.fit(X[:100, :60], y[:100])  # the module expects 64 features
    assert_unchanged(net, before)
    assert len(net.history) == epochs_logged
    net.partial_fit(X[70:80], y[70:80])
    assert len(net.labelled_history_) == 80


def test_integer_features_feed_float_layers(digits):
    X, y = digits
    net = make_net().fit(X[:60].round().astype(np.int64), y[:60])  # counts
    assert net.labelled_history_.X.dtype == torch.float32
    assert net.predict(X[:5].round().astype(np.int32)).shape == (5,)
    with pytest.raises(ValueError, match="X has 60 features, but ContinualActiveClassifier is expecting 64"):
        net.predict(X[:5, :60])


def test_module_sizes_come_from_the_data_unless_given(digits):
    from skcal.models import MLP as SizedMLP

    X, y = digits
    net = ContinualActiveClassifier(SizedMLP, module__hidden=(8,), max_epochs=1, verbose=0).fit(X[:40], y[:40] % 4)
    assert net.module_.body[0].in_features == 64 and net.module_.head.out_features == 4
    assert net.n_features_in_ == 64
    with pytest.raises(ValueError, match="returns outputs of shape"):
        ContinualActiveClassifier(SizedMLP, module__n_classes=3, max_epochs=1, verbose=0).fit(X[:40], y[:40] % 4)


def test_grow_output_adds_a_unit_for_a_new_label(digits):
    from skcal.models import MLP as SizedMLP

    X, y = digits
    early, late = np.flatnonzero(y < 8), np.flatnonzero(y >= 8)
    net = ContinualActiveClassifier(
        SizedMLP,
        module__hidden=(32,),
        grow_output=True,
        replay="er",
        lr=0.1,
        max_epochs=30,
        round_epochs=20,
        verbose=0,
        random_state=0,
    )
    net.fit(X[early[:150]], y[early[:150]])
    head_before = net.module_.head.weight.detach().clone()
    logits_before = net.labelled_history_.logits.clone()
    net.partial_fit(X[late[:60]], y[late[:60]])
    assert net.classes_.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert net.module_.head.out_features == 10 and head_before.shape == (8, 32)
    stored = net.labelled_history_.logits
    torch.testing.assert_close(stored[:150, :8], logits_before)
    assert (stored[:150, 8:] < logits_before.min(dim=1, keepdim=True).values).all()
    assert np.isin(net.predict(X[late[60:200]]), [8, 9]).mean() > 0.5


def test_grow_output_with_string_labels_and_checkpoint(digits, tmp_path):
    from skcal.models import MLP as SizedMLP

    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine-long"])[y]
    params = dict(module__hidden=(16,), grow_output=True, max_epochs=5, verbose=0, random_state=0)
    net = ContinualActiveClassifier(SizedMLP, **params).fit(X[:100][y[:100] < 9], names[:100][y[:100] < 9])
    net.partial_fit(X[100:200], names[100:200])
    assert net.classes_[-1] == "nine-long" and net.module_.head.out_features == 10
    assert set(net.predict(X[:50])) <= set(net.classes_)
    net.save_checkpoint(tmp_path)
    restored = ContinualActiveClassifier(SizedMLP, **params).load_checkpoint(tmp_path)
    assert restored.classes_.tolist() == net.classes_.tolist()
    np.testing.assert_array_equal(restored.predict(X[:50]), net.predict(X[:50]))


def test_grow_output_needs_a_linear_head(digits):
    X, y = digits

    class Slice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(1))

        def forward(self, X):
            return X[:, :8] * self.scale

    net = make_net(module=Slice, grow_output=True, max_epochs=1).fit(X[:60][y[:60] < 8], y[:60][y[:60] < 8])
    before = snapshot(net)
    with pytest.raises(ValueError, match="grow_output needs the module's last torch.nn.Linear"):
        net.partial_fit(X[60:80], y[60:80])
    assert_unchanged(net, before)


def test_optimizer_parameters_set_between_rounds_reach_the_rebuilt_optimizer(digits):
    X, y = digits
    net = make_net(optimizer=torch.optim.SGD, optimizer__momentum=0.5).fit(X[:60], y[:60])
    net.set_params(optimizer__lr=0.01, optimizer__momentum=0.0)
    net.partial_fit(X[60:90], y[60:90])  # the round builds a fresh optimizer (reset_optimizer=True)
    group = net.optimizer_.param_groups[0]
    assert group["lr"] == 0.01 and group["momentum"] == 0.0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_a_cuda_device_without_a_gpu_is_named(digits):
    X, y = digits
    with pytest.raises(ValueError, match=r"device='cuda' is not valid: .* no CUDA GPU"):
        make_net(device="cuda").fit(X[:30], y[:30])
