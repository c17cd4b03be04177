import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import TokenBag, make_net
from modAL.batch import uncertainty_batch_sampling
from modAL.uncertainty import entropy_sampling, margin_sampling, uncertainty_sampling
from sklearn.exceptions import NotFittedError

from skcal.modal import ContinualActiveLearner
from skcal.utils.data import select_rows


def run_loop(learner, X_pool, y_pool, rounds, n_instances=10):
    pool = np.arange(len(X_pool))
    for _ in range(rounds):
        chosen, instances = learner.query(X_pool[pool], n_instances=n_instances)
        np.testing.assert_array_equal(instances, X_pool[pool[chosen]])
        learner.teach(instances, y_pool[pool[chosen]])
        pool = np.delete(pool, chosen)
    return pool


@pytest.mark.parametrize(
    "strategy", [uncertainty_sampling, margin_sampling, entropy_sampling, uncertainty_batch_sampling]
)
def test_modal_loop_with_modals_own_strategies(digits, strategy):
    X, y = digits
    learner = ContinualActiveLearner(make_net(replay="er"), strategy, X_training=X[:40], y_training=y[:40])
    pool = run_loop(learner, X[40:600], y[40:600], rounds=3)
    assert len(learner.X_training) == 70 and len(pool) == 530
    assert [r["strategy"] for r in learner.estimator.rounds_] == ["seed", "er", "er", "er"]
    labelled = learner.X_training
    # every queried point was labelled once: no duplicates in the labelled set
    assert len(np.unique(labelled, axis=0)) == len(np.unique(np.vstack([X[:40], labelled[40:]]), axis=0))
    assert learner.score(X[1000:], y[1000:]) > 0.2


def test_teach_calls_partial_fit_on_the_new_points_only(digits):
    X, y = digits
    learner = ContinualActiveLearner(
        make_net(replay="finetune", round_epochs=2), entropy_sampling, X_training=X[:50], y_training=y[:50]
    )
    learner.teach(X[50:70], y[50:70])
    record = learner.estimator.rounds_[-1]
    assert record["n_new"] == 20 and record["n_history"] == 50
    assert record["samples_backpropagated"] == 2 * 20
    np.testing.assert_array_equal(learner.y_training, y[:70])


def test_retrain_path_is_reachable(digits):
    X, y = digits
    learner = ContinualActiveLearner(
        make_net(replay="retrain", max_epochs=2), uncertainty_sampling, X_training=X[:50], y_training=y[:50]
    )
    run_loop(learner, X[50:300], y[50:300], rounds=2)
    records = learner.estimator.rounds_
    assert [r["strategy"] for r in records] == ["seed", "retrain", "retrain"]
    assert records[-1]["samples_backpropagated"] == 2 * 70


@pytest.mark.parametrize("kind", ["dense", "sparse", "dict"])
def test_writing_to_x_training_cannot_corrupt_the_replay_memory(digits, kind):
    X, y = digits
    if kind == "dict":
        tokens = np.random.default_rng(0).integers(0, 50, (100, 6))
        X, net = {"input_ids": tokens, "attention_mask": np.ones_like(tokens)}, make_net(module=TokenBag)
        y = y[:100] % 3
    else:
        X, net = (sp.csr_matrix(X) if kind == "sparse" else X), make_net()
    learner = ContinualActiveLearner(net, X_training=select_rows(X, np.arange(50)), y_training=y[:50])
    learner.teach(select_rows(X, np.arange(50, 60)), y[50:60])
    history = learner.estimator.labelled_history_
    if kind == "dict":
        before = {k: v.clone() for k, v in history.X.items()}
    else:
        before = history.X.copy() if kind == "sparse" else history.X.clone()
    labelled = learner.X_training
    arrays = list(labelled.values()) if kind == "dict" else [labelled.data if kind == "sparse" else labelled]
    for array in arrays:
        torch.as_tensor(array).mul_(0)  # through torch, which ignores numpy's writeable flag
    after = history.X
    if kind == "dict":
        assert all(torch.equal(before[k], after[k]) for k in before)
    elif kind == "sparse":
        assert (before != after).nnz == 0
    else:
        assert torch.equal(before, after)


def test_sparse_pool(digits):
    X, y = digits
    Xs = sp.csr_matrix(X[:400])
    learner = ContinualActiveLearner(make_net(), entropy_sampling, X_training=Xs[:40], y_training=y[:40])
    chosen, instances = learner.query(Xs[40:], n_instances=5)
    learner.teach(instances, y[40:][chosen])
    assert sp.issparse(learner.X_training) and learner.X_training.shape == (45, 64)


def test_teach_and_query_before_training_are_clear_errors(digits):
    X, y = digits
    learner = ContinualActiveLearner(make_net())
    with pytest.raises(NotFittedError, match="teach\\(\\) was called before any training data"):
        learner.teach(X[:10], y[:10])
    with pytest.raises(NotFittedError, match="query\\(\\) was called before any training"):
        learner.query(X[:10])
    learner.fit(X[:30], y[:30])
    learner.teach(X[30:40], y[30:40])
    assert len(learner.X_training) == 40


def test_bad_arguments(digits):
    from sklearn.linear_model import LogisticRegression

    X, y = digits
    with pytest.raises(TypeError, match="ContinualActiveClassifier"):
        ContinualActiveLearner(LogisticRegression())
    with pytest.raises(ValueError, match="both X_training and y_training"):
        ContinualActiveLearner(make_net(), X_training=X[:10])
    learner = ContinualActiveLearner(make_net(), X_training=X[:30], y_training=y[:30])
    with pytest.raises(ValueError, match="bootstrap"):
        learner.teach(X[30:40], y[30:40], bootstrap=True)
    with pytest.raises(ValueError, match="not among the classes"):
        learner.teach(X[30:40], np.full(10, 42))
    assert len(learner.X_training) == 30


def test_query_and_teach_a_dict_pool():
    from conftest import TokenBag

    ids = np.random.default_rng(0).integers(1, 50, size=(90, 6))
    X = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    learner = ContinualActiveLearner(
        make_net(module=TokenBag),
        entropy_sampling,
        X_training={k: v[:30] for k, v in X.items()},
        y_training=ids[:30, 0] % 3,
    )
    pool = {key: value[30:] for key, value in X.items()}
    chosen, instances = learner.query(pool, n_instances=5)
    np.testing.assert_array_equal(instances["input_ids"], pool["input_ids"][chosen])
    learner.teach(instances, ids[30:][chosen, 0] % 3)
    assert len(learner.estimator.labelled_history_) == 35
