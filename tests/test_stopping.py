"""Stopping criteria (skcal.stopping) by hand, in a modAL loop and in the simulator."""

import math

import numpy as np
import pytest
from conftest import make_net
from sklearn.base import clone
from sklearn.metrics import cohen_kappa_score

from skcal.modal import ContinualActiveLearner
from skcal.query import entropy_sampling
from skcal.simulation import ActiveLearningSimulator
from skcal.stopping import (
    MaxRounds,
    StabilizingPredictions,
    UncertaintyBelow,
    cohen_kappa,
    uncertainty_scores,
)


class Scripted:
    """A stand-in for a learner whose predictions change round by round as scripted.

    Each ``predict``/``predict_proba`` call returns the next scripted answer
    (for every stop-set point); it lets the tests put known predictions in
    front of the criteria.
    """

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = 0

    def _next(self, X):
        answer = np.asarray(self.answers[self.calls])
        self.calls += 1
        assert len(answer) == len(X)
        return answer

    def predict(self, X):
        return self._next(X)

    def predict_proba(self, X):
        return self._next(X)


# --- kappa ---------------------------------------------------------------------------------------

KAPPA_CASES = [
    ([0, 0, 1, 1], [0, 1, 1, 1]),
    ([0, 1, 2, 0, 1, 2, 0, 1], [0, 1, 2, 1, 1, 2, 0, 0]),
    ([0, 1, 0, 1], [1, 0, 1, 0]),  # complete disagreement: -1
    (["a", "b", "b", "c", "a"], ["a", "b", "c", "c", "b"]),
    ([3, 3, 3, 1], [3, 3, 3, 3]),  # one labelling constant: kappa 0
    ([0, 1, 2, 3], [0, 1, 2, 3]),
]


@pytest.mark.parametrize("first, second", KAPPA_CASES)
def test_kappa_matches_sklearn(first, second):
    assert cohen_kappa(first, second) == pytest.approx(cohen_kappa_score(first, second), abs=1e-12)
    assert cohen_kappa(second, first) == pytest.approx(cohen_kappa(first, second), abs=1e-12)


def test_kappa_by_hand():
    # p_o = 3/4; class frequencies (1/2, 1/2) and (1/4, 3/4): p_e = 1/8 + 3/8 = 1/2; kappa = (3/4 - 1/2) / (1/2)
    assert cohen_kappa([0, 0, 1, 1], [0, 1, 1, 1]) == pytest.approx(0.5)
    assert cohen_kappa([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)
    # one and the same class everywhere: sklearn says NaN, agreement is perfect
    assert cohen_kappa([2, 2, 2], [2, 2, 2]) == 1.0


@pytest.mark.parametrize(
    "first, second, message",
    [([0, 1], [0, 1, 1], "different lengths"), ([], [], "empty"), ([[0, 1]], [[0, 1]], "1-D")],
)
def test_kappa_bad_input(first, second, message):
    with pytest.raises(ValueError, match=message):
        cohen_kappa(first, second)


# --- StabilizingPredictions ----------------------------------------------------------------------


def first_stop(values, threshold, window):
    """The first round at which the mean of the last ``window`` kappas exceeds ``threshold``.

    ``values[r - 1]`` compares round ``r`` with round ``r - 1``, so after round ``r`` the kappas are ``values[:r]``.
    """
    for r in range(1, len(values) + 1):
        recent = values[max(0, r - window) : r]
        if len(recent) == window and np.mean(recent) > threshold:
            return r
    return None


def test_stabilizing_predictions_stops_when_the_hand_condition_first_holds():
    rng = np.random.RandomState(0)
    base = rng.randint(0, 4, size=60)
    labellings = [rng.randint(0, 4, size=60)]  # round 0: unrelated
    for flips in [20, 6, 2, 1, 0, 0, 0, 3, 0]:  # rounds 1..9: fewer and fewer changes
        changed = base.copy()
        rows = rng.choice(60, flips, replace=False)
        changed[rows] = (changed[rows] + 1) % 4
        labellings.append(changed)
    kappas = [cohen_kappa_score(labellings[r - 1], labellings[r]) for r in range(1, len(labellings))]
    stops = {}
    for threshold, window in [(0.99, 3), (0.9, 2), (0.95, 1), (0.6, 4)]:
        expected = first_stop(kappas, threshold, window)
        assert expected is not None
        criterion = StabilizingPredictions(stop_set=np.zeros((60, 2)), threshold=threshold, window=window)
        learner = Scripted(labellings)
        for r in range(len(labellings)):
            assert criterion.should_stop == (expected is not None and r > expected)
            criterion.update(learner)
        np.testing.assert_allclose(criterion.kappas_, kappas)
        assert criterion.stopped_at_ == expected
        assert criterion.should_stop  # sticky, although round 8 changed predictions again
        assert criterion.n_updates_ == len(labellings)
        stops[threshold, window] = expected
    assert len(set(stops.values())) > 1  # the parameters matter


def test_stabilizing_predictions_needs_the_full_window():
    same = np.zeros(5, dtype=int)
    criterion = StabilizingPredictions(np.zeros((5, 1)), threshold=0.5, window=3)
    learner = Scripted([same] * 4)
    for expected in [False, False, False, True]:  # 3 kappas need 4 models
        criterion.update(learner)
        assert criterion.should_stop == expected
    assert criterion.stopped_at_ == 3


def test_in_a_hand_written_modal_loop(digits):
    X, y = digits
    X_stop, pool, y_pool = X[1200:1500], X[40:1200], y[40:1200]
    learner = ContinualActiveLearner(make_net(lr=0.5, max_epochs=30, round_epochs=5), entropy_sampling)
    learner.fit(X[:40], y[:40])
    criteria = [
        StabilizingPredictions(X_stop, threshold=0.7, window=2),
        UncertaintyBelow(0.3, X_stop),
        MaxRounds(12),
    ]
    predictions, uncertainty = [], []
    for criterion in criteria:
        criterion.update(learner)
    predictions.append(learner.predict(X_stop))
    uncertainty.append(uncertainty_scores(learner.predict_proba(X_stop)).mean())
    while not any(criterion.should_stop for criterion in criteria):
        indices, _ = learner.query(pool, n_instances=30)
        learner.teach(pool[indices], y_pool[indices])
        pool, y_pool = np.delete(pool, indices, axis=0), np.delete(y_pool, indices)
        for criterion in criteria:
            criterion.update(learner)
        predictions.append(learner.predict(X_stop))
        uncertainty.append(uncertainty_scores(learner.predict_proba(X_stop)).mean())
    kappas = [cohen_kappa_score(a, b) for a, b in zip(predictions, predictions[1:], strict=False)]
    stops = [
        first_stop(kappas, 0.7, 2),
        next((r for r, value in enumerate(uncertainty) if value < 0.3), None),
        12,
    ]
    last = len(predictions) - 1
    for criterion, expected in zip(criteria, stops, strict=True):
        assert criterion.stopped_at_ == (expected if expected is not None and expected <= last else None)
    assert min(s for s in stops if s is not None) == last  # the loop ended at the first stop
    assert last < 12  # a criterion other than MaxRounds ended it


# --- UncertaintyBelow ----------------------------------------------------------------------------


def normalised_entropy(p):
    return -sum(q * math.log(q) for q in p if q > 0) / math.log(len(p))


def test_uncertainty_scores_by_hand():
    p = np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.25, 0.25]])
    np.testing.assert_allclose(uncertainty_scores(p), [0.0, 1.0, normalised_entropy([0.5, 0.25, 0.25])])
    np.testing.assert_allclose(uncertainty_scores(p, "max"), [0.0, 2 / 3, 0.5])
    with pytest.raises(ValueError, match="measure"):
        uncertainty_scores(p, "margin")
    with pytest.raises(ValueError, match="NaN"):
        uncertainty_scores([[np.nan, 1.0]])


@pytest.mark.parametrize("measure, aggregate", [("entropy", "mean"), ("max", "mean"), ("entropy", "max")])
def test_uncertainty_below_stops_when_the_hand_condition_first_holds(measure, aggregate):
    rounds = [
        [[0.5, 0.5], [0.9, 0.1], [0.6, 0.4]],
        [[0.7, 0.3], [0.95, 0.05], [0.8, 0.2]],
        [[0.9, 0.1], [0.99, 0.01], [0.85, 0.15]],
        [[0.97, 0.03], [0.99, 0.01], [0.9, 0.1]],
        [[0.6, 0.4], [0.6, 0.4], [0.6, 0.4]],
    ]

    def by_hand(p):
        values = [normalised_entropy(row) if measure == "entropy" else 1 - max(row) for row in p]
        return np.mean(values) if aggregate == "mean" else max(values)

    values = [by_hand(p) for p in rounds]
    threshold = (values[1] + values[2]) / 2 if aggregate == "mean" else (values[2] + values[3]) / 2
    expected = next(r for r, value in enumerate(values) if value < threshold)
    criterion = UncertaintyBelow(threshold, stop_set=np.zeros((3, 4)), measure=measure, aggregate=aggregate)
    learner = Scripted(rounds)
    for _ in rounds:
        criterion.update(learner)
    np.testing.assert_allclose(criterion.uncertainties_, values)
    assert criterion.stopped_at_ == expected
    assert criterion.should_stop  # stays, although the last round is uncertain again


# --- MaxRounds and the common protocol -----------------------------------------------------------


def test_max_rounds_and_reset():
    criterion = MaxRounds(2)
    held = []
    for _ in range(4):
        criterion.update(None)
        held.append(criterion.should_stop)
    assert held == [False, False, True, True] and criterion.stopped_at_ == 2
    criterion.reset()
    assert not criterion.should_stop and criterion.n_updates_ == 0
    criterion.update(None)
    assert MaxRounds(0).update(None).should_stop


def test_criteria_are_sklearn_objects():
    stop_set = np.zeros((4, 2))
    criterion = StabilizingPredictions(stop_set, threshold=0.95, window=2)
    assert criterion.get_params()["threshold"] == 0.95 and criterion.get_params()["stop_set"] is stop_set
    copy = clone(criterion)
    assert copy.get_params()["window"] == 2 and not hasattr(copy, "kappas_")
    criterion.update(Scripted([np.zeros(4)]))
    assert len(clone(criterion).get_params()) == 3
    assert UncertaintyBelow(0.1).set_params(measure="max").measure == "max"
    assert "MaxRounds(n_rounds=3)" in repr(MaxRounds(3))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: StabilizingPredictions(threshold=1.0), r"threshold=1.0 .* \[-1, 1\)"),
        (lambda: StabilizingPredictions(threshold=-1.5), "threshold"),
        (lambda: StabilizingPredictions(threshold=float("nan")), "threshold"),
        (lambda: StabilizingPredictions(threshold="high"), "threshold"),
        (lambda: StabilizingPredictions(window=0), "window"),
        (lambda: StabilizingPredictions(window=2.0), "window"),
        (lambda: UncertaintyBelow(0.0), r"threshold=0.0 .* \(0, 1\]"),
        (lambda: UncertaintyBelow(1.5), "threshold"),
        (lambda: UncertaintyBelow(True), "threshold"),
        (lambda: UncertaintyBelow(0.1, measure="margin"), "measure"),
        (lambda: UncertaintyBelow(0.1, aggregate="median"), "aggregate"),
        (lambda: MaxRounds(-1), "n_rounds"),
        (lambda: MaxRounds(2.0), "n_rounds"),
        (lambda: MaxRounds(None), "n_rounds"),
    ],
)
def test_bad_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make().reset()
    with pytest.raises(ValueError, match=message):
        make().update(Scripted([np.zeros((1, 2))]), X_stop=np.zeros((1, 2)))


def test_bad_updates():
    learner = Scripted([np.zeros(3), np.zeros(4)])
    with pytest.raises(ValueError, match="needs a stop set"):
        StabilizingPredictions().update(learner)
    with pytest.raises(ValueError, match="do not also pass X_stop"):
        StabilizingPredictions(np.zeros((3, 1))).update(learner, X_stop=np.zeros((3, 1)))
    with pytest.raises(ValueError, match="empty"):
        UncertaintyBelow(0.1).update(learner, X_stop=np.zeros((0, 2)))
    criterion = StabilizingPredictions()
    criterion.update(learner, X_stop=np.zeros((3, 1)))
    with pytest.raises(ValueError, match="changed size"):
        criterion.update(learner, X_stop=np.zeros((4, 1)))
    with pytest.raises(TypeError, match="predict_proba"):
        UncertaintyBelow(0.1).update(object(), X_stop=np.zeros((3, 1)))
    # a parameter broken after construction is caught at the next update
    criterion = MaxRounds(3)
    criterion.update(None)
    criterion.set_params(n_rounds=-2)
    with pytest.raises(ValueError, match="n_rounds"):
        criterion.update(None)


# --- the simulator -------------------------------------------------------------------------------


def simulator(**params):
    estimator = make_net(random_state=None, lr=0.5, max_epochs=30, round_epochs=5)
    defaults = dict(estimator=estimator, initial_size=40, query_size=20, budget=300, random_state=0)
    defaults.update(params)
    return ActiveLearningSimulator(**defaults)


def test_simulator_stops_at_the_criterions_round(digits):
    X, y = digits
    criterion = MaxRounds(3)
    sim = simulator(stop_when=criterion).fit(X[:600], y[:600])
    assert sim.stopped_at_ == 3 and sim.stopped_by_ == [criterion]
    assert [r["round"] for r in sim.records_] == [0, 1, 2, 3]
    assert [r["stopped"] for r in sim.records_] == [False, False, False, True]
    assert sim.records_[-1]["stopped_by"] == ["MaxRounds"]
    assert len(sim.labelled_indices_) == 40 + 3 * 20
    # the same campaign as three rounds without a criterion
    plain = simulator(budget=None, n_rounds=3).fit(X[:600], y[:600])
    np.testing.assert_array_equal(sim.labelled_indices_, plain.labelled_indices_)
    assert plain.stopped_at_ is None and "stopped" not in plain.records_[-1]


def test_simulator_with_stabilizing_predictions_stops_early_and_deterministically(digits):
    X, y = digits
    stop_set = X[1400:1700]

    def run():
        criterion = StabilizingPredictions(stop_set, threshold=0.85, window=2)
        sim = simulator(stop_when=[criterion, MaxRounds(50)]).fit(X[:1200], y[:1200], eval_set=(X[1200:], y[1200:]))
        return sim, criterion

    sim, criterion = run()
    planned = (300 - 40) // 20
    assert sim.stopped_at_ is not None and sim.stopped_at_ < planned  # stopped before the budget
    assert len(sim.records_) == sim.stopped_at_ + 1 and len(sim.labelled_indices_) < 300
    assert sim.records_[-1]["stopped_by"] == ["StabilizingPredictions"]
    assert not any(r["stopped"] for r in sim.records_[:-1])
    # the criterion saw one model per round, and stopped at the first round its condition held
    assert len(criterion.kappas_) == sim.stopped_at_
    assert first_stop(criterion.kappas_, 0.85, 2) == sim.stopped_at_
    # the kappa of the last round is the agreement of the final model with the one before it
    before = simulator(budget=None, n_rounds=sim.stopped_at_ - 1).fit(X[:1200], y[:1200])
    assert criterion.kappas_[-1] == pytest.approx(cohen_kappa_score(before.predict(stop_set), sim.predict(stop_set)))
    again, _ = run()
    assert again.stopped_at_ == sim.stopped_at_
    np.testing.assert_array_equal(again.labelled_indices_, sim.labelled_indices_)
    assert [r["accuracy"] for r in again.records_] == [r["accuracy"] for r in sim.records_]


def test_simulator_resets_criteria_and_gives_them_its_pool(digits):
    X, y = digits
    criterion = UncertaintyBelow(0.3)  # no stop set: the simulator passes its X
    sim = simulator(stop_when=criterion)
    first = sim.fit(X[:600], y[:600]).stopped_at_
    values = list(criterion.uncertainties_)
    assert first is not None and len(values) == first + 1
    assert values[-1] < 0.3 <= min(values[:-1])
    assert values[-1] == pytest.approx(uncertainty_scores(sim.predict_proba(X[:600])).mean(), rel=1e-6)
    assert sim.fit(X[:600], y[:600]).stopped_at_ == first  # reset: the second campaign starts afresh
    assert criterion.uncertainties_ == pytest.approx(values)
    # a clone (as GridSearchCV makes) carries the criteria's parameters
    assert clone(sim).get_params()["stop_when"].threshold == 0.3


def test_simulator_stops_after_the_seed_round_and_names_every_criterion(digits):
    X, y = digits
    sim = simulator(stop_when=(MaxRounds(0), UncertaintyBelow(1.0, measure="max"))).fit(X[:600], y[:600])
    assert sim.stopped_at_ == 0 and len(sim.records_) == 1 and len(sim.labelled_indices_) == 40
    assert sim.records_[0]["stopped_by"] == ["MaxRounds", "UncertaintyBelow"]


@pytest.mark.parametrize(
    "stop_when, error, message",
    [
        ("round 5", TypeError, "stopping criterion"),
        (MaxRounds, TypeError, "stopping criterion"),
        ([MaxRounds(2), 3], TypeError, "stopping criterion"),
        (StabilizingPredictions(window=0), ValueError, "window"),
    ],
)
def test_simulator_refuses_bad_criteria_before_training(digits, stop_when, error, message):
    X, y = digits
    sim = simulator(stop_when=stop_when)
    with pytest.raises(error, match=message):
        sim.fit(X[:600], y[:600])
    assert not hasattr(sim, "estimator_")  # nothing was trained
