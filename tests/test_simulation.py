import functools

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import make_net
from modAL.uncertainty import margin_sampling
from sklearn.model_selection import GridSearchCV

from skcal.query import badge_sampling, random_sampling
from skcal.simulation import ActiveLearningSimulator


def simulator(**params):
    defaults = dict(estimator=make_net(random_state=None), initial_size=40, query_size=20, n_rounds=3, random_state=0)
    defaults.update(params)
    return ActiveLearningSimulator(**defaults)


def test_bookkeeping(digits):
    X, y = digits
    sim = simulator().fit(X[:600], y[:600], eval_set=(X[600:900], y[600:900]))
    labelled = sim.labelled_indices_
    assert [r["n_labelled"] for r in sim.records_] == [40, 60, 80, 100]
    assert len(labelled) == 100 and len(np.unique(labelled)) == 100  # never re-labels a point
    assert [r["strategy"] for r in sim.records_] == ["seed", "er", "er", "er"]
    assert sim.records_[2]["labelled_fraction"] == pytest.approx(80 / 600)
    cumulative = np.cumsum([r["train_seconds"] for r in sim.records_])
    np.testing.assert_allclose([r["cumulative_train_seconds"] for r in sim.records_], cumulative)
    assert all(0 <= r["accuracy"] <= 1 for r in sim.records_)
    assert sim.records_[0]["query_seconds"] == 0 and all(r["query_seconds"] > 0 for r in sim.records_[1:])
    history = sim.estimator_.labelled_history_
    np.testing.assert_array_equal(history.X.numpy(), X[labelled])  # labelled in query order
    assert sim.score(X[600:900], y[600:900]) == sim.records_[-1]["accuracy"]


def test_balanced_accuracy_is_the_mean_recall_over_classes(digits):
    X, y = digits
    keep = np.flatnonzero((y != 9) | (np.arange(len(y)) % 6 == 0))  # class 9 rare: the two metrics differ
    X, y = X[keep], y[keep]
    sim = simulator(n_rounds=1).fit(X[:500], y[:500], eval_set=(X[500:900], y[500:900]))
    predicted, truth = sim.predict(X[500:900]), y[500:900]
    recalls = [np.mean(predicted[truth == label] == label) for label in np.unique(truth)]
    assert sim.records_[-1]["balanced_accuracy"] == pytest.approx(np.mean(recalls))
    assert sim.records_[-1]["accuracy"] == pytest.approx(np.mean(predicted == truth))
    assert sim.records_[-1]["balanced_accuracy"] != pytest.approx(sim.records_[-1]["accuracy"])


def test_queries_come_from_the_strategy(digits):
    X, y = digits
    sim = simulator(query_strategy=margin_sampling, n_rounds=1).fit(X[:300], y[:300])
    # replaying margin sampling on the seed model picks the same points
    seed_only = simulator(n_rounds=0).fit(X[:300], y[:300])
    pool = np.setdiff1d(np.arange(300), seed_only.labelled_indices_)
    expected = pool[margin_sampling(seed_only.estimator_, X[pool], n_instances=20)]
    assert sorted(sim.labelled_indices_[40:]) == sorted(expected)


def test_budget_and_fractions(digits):
    X, y = digits
    sim = simulator(initial_size=0.1, query_size=0.05, n_rounds=None, budget=0.23).fit(X[:400], y[:400])
    assert [r["n_labelled"] for r in sim.records_] == [40, 60, 80, 92]
    default = simulator(initial_size=100, query_size=50, n_rounds=None).fit(X[:400], y[:400])
    assert default.records_[-1]["n_labelled"] == 200  # half the pool


def test_reproducible_with_random_state(digits):
    X, y = digits
    first = simulator().fit(X[:400], y[:400])
    second = simulator().fit(X[:400], y[:400])
    other = simulator(random_state=1).fit(X[:400], y[:400])
    np.testing.assert_array_equal(first.labelled_indices_, second.labelled_indices_)
    np.testing.assert_array_equal(first.predict_proba(X[500:600]), second.predict_proba(X[500:600]))
    assert not np.array_equal(first.labelled_indices_, other.labelled_indices_)


def test_seed_set_missing_a_class_still_predicts_every_class(digits):
    X, y = digits
    sim = simulator(initial_size=3, query_size=5, n_rounds=1).fit(X[:500], y[:500])  # 3 seeds: < 10 classes
    assert len(np.unique(y[sim.labelled_indices_[:3]])) <= 3
    assert sim.classes_.tolist() == list(range(10))
    assert sim.predict_proba(X[:5]).shape == (5, 10)


def test_sparse_pool(digits):
    X, y = digits
    sim = simulator(n_rounds=2).fit(sp.csr_matrix(X[:300]), y[:300])
    assert sim.estimator_.labelled_history_.is_sparse and len(sim.labelled_indices_) == 80


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (dict(initial_size=0.0), r"initial_size=0.0 is not valid: .* positive integer or a number in \(0, 1\]"),
        (dict(query_size=1.5), r"query_size=1.5 is not valid: .* positive integer or a number in \(0, 1\]"),
        (dict(initial_size=500), "asks for 500 points but X has only 300"),
        (dict(n_rounds=20), "need 440 labels, but X has only 300"),
        (dict(n_rounds=-1), "non-negative"),
        (dict(budget=10, n_rounds=None), "smaller than initial_size"),
        (dict(initial_size="10"), "initial_size='10' is not valid"),
    ],
)
def test_bad_arguments(digits, params, message):
    X, y = digits
    with pytest.raises((ValueError, TypeError), match=message):
        simulator(**params).fit(X[:300], y[:300])


def test_estimator_must_be_a_continual_classifier(digits):
    from sklearn.linear_model import LogisticRegression

    X, y = digits
    with pytest.raises(TypeError, match="ContinualActiveClassifier"):
        ActiveLearningSimulator(LogisticRegression()).fit(X[:100], y[:100])


def grid():
    return {"estimator__replay": ["retrain", "er", "sd"], "estimator__replay__alpha": [0.25, 0.75]}


def test_grid_search_over_cal_methods_in_parallel(digits):
    X, y = digits
    search = GridSearchCV(simulator(n_rounds=2), grid(), cv=2, n_jobs=2, error_score="raise")
    search.fit(X[:360], y[:360])
    results = search.cv_results_
    assert len(results["params"]) == 6
    assert np.all(results["mean_fit_time"] > 0) and np.all(np.isfinite(results["mean_test_score"]))
    assert search.best_estimator_.records_[-1]["n_labelled"] == 80


def test_grid_search_on_a_dask_cluster(digits):
    distributed = pytest.importorskip("dask.distributed")
    from joblib import parallel_backend

    X, y = digits
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client, parallel_backend("dask"):
            search = GridSearchCV(simulator(n_rounds=1), {"estimator__replay": ["retrain", "er"]}, cv=2)
            search.fit(X[:300], y[:300])
            workers = client.run(lambda: 1)
    assert len(workers) == 2
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_track_forgetting_records_accuracy_on_each_rounds_points(digits):
    X, y = digits
    sim = simulator(track_forgetting=True).fit(X[:400], y[:400])
    assert [len(r["round_accuracies"]) for r in sim.records_] == [1, 2, 3, 4]
    last = sim.records_[-1]["round_accuracies"]
    labelled = sim.labelled_indices_
    blocks = [labelled[:40], labelled[40:60], labelled[60:80], labelled[80:100]]
    expected = [np.mean(sim.predict(X[rows]) == y[rows]) for rows in blocks]
    np.testing.assert_allclose(last, expected)


TIMINGS = {"train_seconds", "cumulative_train_seconds", "query_seconds"}


def without_timings(rounds):
    return [{key: value for key, value in record.items() if key not in TIMINGS} for record in rounds]


@pytest.mark.parametrize("strategy", [random_sampling, badge_sampling])
def test_random_state_seeds_the_query_strategy(digits, strategy):
    X, y = digits
    runs = [
        simulator(query_strategy=strategy, random_state=seed).fit(X[:400], y[:400], eval_set=(X[600:800], y[600:800]))
        for seed in (0, 0, 1)
    ]
    first, second, other = runs
    np.testing.assert_array_equal(first.labelled_indices_, second.labelled_indices_)
    assert without_timings(first.records_) == without_timings(second.records_)
    np.testing.assert_array_equal(first.predict_proba(X[800:900]), second.predict_proba(X[800:900]))
    assert not np.array_equal(first.labelled_indices_[40:], other.labelled_indices_[40:])


def test_a_partial_with_its_own_random_state_wins(digits):
    X, y = digits
    mine = functools.partial(random_sampling, random_state=5)
    runs = [simulator(query_strategy=mine, random_state=seed, n_rounds=1).fit(X[:400], y[:400]) for seed in (0, 1)]
    for sim in runs:
        pool = np.setdiff1d(np.arange(400), sim.labelled_indices_[:40])
        expected = pool[np.random.RandomState(5).choice(len(pool), 20, replace=False)]
        np.testing.assert_array_equal(sim.labelled_indices_[40:], expected)
