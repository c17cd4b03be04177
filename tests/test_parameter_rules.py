"""Every declared parameter rule rejects a bad value, naming the parameter as the user reaches it.

The classes declare their rules in scikit-learn's constraint language
(``_parameter_constraints``, checked by :func:`skcal.utils.params.check_parameters`).
The tests below loop over the declarations, so a parameter added to a class
is covered as soon as it is declared: its bad values are derived from its
constraints (a number past an interval's bound, an unknown string for a
choice...).
"""

import hashlib
import io
import pickle
import re
import warnings
from numbers import Integral, Real

import numpy as np
import pytest
import torch
from conftest import make_net
from sklearn.base import clone

from skcal import ContinualActiveClassifier
from skcal.callbacks import AutoRoundStop, HeldOutRoundStop, TrainAccuracyStop
from skcal.replay import REPLAY_STRATEGIES, SeedRound, make_strategy
from skcal.replay.base import CandidateReplay, LabelledSetTraining, ReplayStrategy
from skcal.simulation import ActiveLearningSimulator
from skcal.stopping import MaxRounds, StabilizingPredictions, UncertaintyBelow, uncertainty_scores
from skcal.utils.params import (
    Hidden,
    Interval,
    InvalidParameterError,
    Options,
    RealNotInt,
    StrOptions,
    describe,
    is_satisfied,
)

STRATEGIES = [*REPLAY_STRATEGIES.values(), SeedRound]
CALLBACKS = [TrainAccuracyStop, AutoRoundStop, HeldOutRoundStop]
CRITERIA = {StabilizingPredictions: {}, UncertaintyBelow: {"threshold": 0.5}, MaxRounds: {"n_rounds": 3}}
DECLARING = [*STRATEGIES, *CALLBACKS, *CRITERIA, ActiveLearningSimulator]


def bad_values(constraints: list) -> list:
    """Values that none of ``constraints`` accepts, derived from each constraint's kind."""
    candidates = []
    for constraint in constraints:
        if isinstance(constraint, Interval):
            step = 1 if constraint.type is Integral else 0.5
            if constraint.left is not None:
                candidates.append(constraint.left - (step if constraint.closed in ("left", "both") else 0))
            if constraint.right is not None:
                candidates.append(constraint.right + (step if constraint.closed in ("right", "both") else 0))
            candidates += ["a string", True, float("nan"), float("inf")]
        elif isinstance(constraint, (StrOptions, Options)):
            candidates.append("no such option")
        elif constraint == "boolean":
            candidates.append("yes")
        elif constraint == "random_state":
            candidates.append("not a seed")
        elif constraint == "verbose":
            candidates.append(-1)
        elif constraint is callable:
            candidates.append(42)
        elif isinstance(constraint, type):
            candidates.append(object())
    return [value for value in candidates if not is_satisfied(constraints, value)]


def _label(value: object) -> str:
    # an object's repr holds its address, which would differ from one collection to the next
    return repr(value) if isinstance(value, (str, int, float, type(None))) else type(value).__name__


def declared(classes: list) -> list:
    """``(class, name, bad value)`` for every checked parameter of ``classes``."""
    return [
        pytest.param(cls, name, value, id=f"{cls.__name__}-{name}-{_label(value)}")
        for cls in classes
        for name, constraints in cls._parameter_constraints.items()
        if constraints != "no_validation"
        for value in bad_values(constraints)
    ]


def expected_message(cls: type, prefix: str, name: str, value: object, named: bool = True) -> str:
    constraints = cls._parameter_constraints[name]
    where = f" for {cls.__name__}" if named else ""
    return re.escape(f"{prefix}{name}={value!r} is not valid{where}: it must be {describe(constraints)}.")


class _TensorsAsArrays(pickle.Pickler):
    # torch's own pickling of a tensor is not byte-stable from one dump to the next; numpy's is
    def reducer_override(self, obj):
        if isinstance(obj, torch.Tensor):
            return np.asarray, (obj.detach().cpu().numpy(),)
        return NotImplemented


def fingerprint(obj: object) -> str:
    """A hash of everything ``obj`` pickles (weights, optimizer, history, records, parameters...)."""
    buffer = io.BytesIO()
    _TensorsAsArrays(buffer).dump(obj)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


# -- the declarations ----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", DECLARING, ids=lambda cls: cls.__name__)
def test_every_parameter_is_declared_once(cls):
    instance = cls(**CRITERIA.get(cls, {})) if cls is not ActiveLearningSimulator else cls(make_net())
    assert set(cls._parameter_constraints) == set(instance.get_params(deep=False))
    # a subclass extends its parent's rules instead of restating them
    for base in cls.__mro__[1:]:
        inherited = vars(base).get("_parameter_constraints", {})
        for name in inherited.keys() & cls._parameter_constraints.keys():
            assert cls._parameter_constraints[name] is inherited[name], (cls, base, name)


def test_every_declared_parameter_has_a_derivable_bad_value():
    for cls in DECLARING:
        for name, constraints in cls._parameter_constraints.items():
            if constraints != "no_validation":
                assert bad_values(constraints), f"no bad value derived for {cls.__name__}.{name}: teach bad_values"


# -- each rule rejects a bad value, naming the parameter as the user reaches it ------------------------


@pytest.mark.parametrize("cls, name, value", declared(STRATEGIES))
def test_strategy_rules(cls, name, value):
    with pytest.raises(InvalidParameterError, match=expected_message(cls, "replay__", name, value)):
        make_strategy(cls, {name: value})


def test_strategies_without_parameters_declare_none():
    assert LabelledSetTraining._parameter_constraints == {}
    assert "n_candidates" in CandidateReplay._parameter_constraints
    assert ReplayStrategy._parameter_constraints.keys() == {"sampling", "memory_size", "retention"}


@pytest.mark.parametrize("cls, name, value", declared(CALLBACKS))
def test_callback_rules(cls, name, value):
    prefix = {
        AutoRoundStop: "callbacks__auto_stop__",
        HeldOutRoundStop: "callbacks__auto_stop__",
        TrainAccuracyStop: "callbacks__accuracy_stop__",
    }[cls]
    with pytest.raises(InvalidParameterError, match=expected_message(cls, prefix, name, value)):
        cls(**{name: value}).initialize()


@pytest.mark.parametrize("cls, name, value", declared(list(CRITERIA)))
def test_criterion_rules(cls, name, value):
    criterion = cls(**CRITERIA[cls]).set_params(**{name: value})
    with pytest.raises(InvalidParameterError, match=expected_message(cls, "", name, value)):
        criterion.reset()


@pytest.mark.parametrize("cls, name, value", declared([ActiveLearningSimulator]))
def test_simulator_rules(digits, cls, name, value):
    X, y = digits
    sim = cls(make_net()).set_params(**{name: value})
    with pytest.raises(InvalidParameterError, match=expected_message(cls, "", name, value, named=False)):
        sim.fit(X[:100], y[:100])
    assert not hasattr(sim, "estimator_")


def test_functions_check_their_arguments():
    with pytest.raises(InvalidParameterError, match='measure must be one of "entropy", "max"; got \'margin\''):
        uncertainty_scores(np.full((2, 2), 0.5), measure="margin")


# -- GridSearchCV's way: set_params, then fit; a bad value fails before training, changing nothing ---------


def _first_bad_values(cls):
    return {
        name: bad_values(constraints)[0]
        for name, constraints in cls._parameter_constraints.items()
        if constraints != "no_validation"
    }


@pytest.mark.parametrize("alias", [alias for alias, cls in REPLAY_STRATEGIES.items() if cls._parameter_constraints])
def test_bad_replay_value_changes_nothing(digits, alias):
    X, y = digits
    # a grid's candidate: a fresh clone, given its parameters, then fitted
    for name, value in _first_bad_values(REPLAY_STRATEGIES[alias]).items():
        candidate = clone(make_net(replay=alias)).set_params(**{f"replay__{name}": value})
        before = fingerprint(candidate)
        with pytest.raises(InvalidParameterError, match=f"replay__{name}="):
            candidate.fit(X[:50], y[:50])
        assert fingerprint(candidate) == before and not candidate.__sklearn_is_fitted__()
    # a fitted estimator given a bad value before its next round
    net = make_net(replay=alias).fit(X[:50], y[:50])
    defaults = REPLAY_STRATEGIES[alias]().get_params()
    for name, value in _first_bad_values(REPLAY_STRATEGIES[alias]).items():
        net.set_params(**{f"replay__{name}": value})
        before = fingerprint(net)
        with pytest.raises(InvalidParameterError, match=f"replay__{name}="):
            net.partial_fit(X[50:70], y[50:70])
        assert fingerprint(net) == before and len(net.rounds_) == 1
        net.set_params(**{f"replay__{name}": defaults[name]})


def _trained_state(net: ContinualActiveClassifier) -> str:
    """A fingerprint of what training changes: weights, optimizer, history, records and training log.

    Not the whole estimator: a round that fails once begun restores all of
    these, but not skorch's scoring caches or the history's change counter.
    """
    history = net.labelled_history_
    return fingerprint(
        (
            net.module_.state_dict(),
            net.optimizer_.state_dict(),
            net.rounds_,
            list(net.history_),
            history.X,
            history.y,
            history.logits,
            history.rounds,
        )
    )


AUTO_STOP_VALUES = [
    (cls, name, value) for cls in (AutoRoundStop, HeldOutRoundStop) for name, value in _first_bad_values(cls).items()
]


@pytest.mark.parametrize("cls, name, value", AUTO_STOP_VALUES)
def test_bad_callback_value_changes_nothing(digits, cls, name, value):
    X, y = digits
    candidate = clone(make_net(replay="er", round_epochs="auto", callbacks__auto_stop=cls()))
    candidate.set_params(**{f"callbacks__auto_stop__{name}": value})
    before = fingerprint(candidate)
    with pytest.raises(InvalidParameterError, match=f"callbacks__auto_stop__{name}="):
        candidate.fit(X[:50], y[:50])
    assert fingerprint(candidate) == before and not candidate.__sklearn_is_fitted__()


def test_bad_callback_value_on_a_fitted_estimator_fails_the_round_before_its_first_epoch(digits):
    X, y = digits
    net = make_net(replay="er", round_epochs="auto").fit(X[:50], y[:50])
    net.set_params(callbacks__auto_stop__patience=0)  # skorch does not initialise the callback again
    before = _trained_state(net)
    with pytest.raises(InvalidParameterError, match="callbacks__auto_stop__patience=0"):
        net.partial_fit(X[50:70], y[50:70])
    assert _trained_state(net) == before and len(net.rounds_) == 1


@pytest.mark.parametrize("cls", list(CRITERIA), ids=lambda cls: cls.__name__)
def test_bad_criterion_value_changes_nothing(cls):
    criterion = cls(**CRITERIA[cls])
    X_stop = np.zeros((4, 2))

    class Constant:
        def predict(self, X):
            return np.zeros(len(X), dtype=int)

        def predict_proba(self, X):
            return np.full((len(X), 2), 0.5)

    criterion.update(Constant(), X_stop=X_stop).update(Constant(), X_stop=X_stop)
    for name, value in _first_bad_values(cls).items():
        good = criterion.get_params()[name]
        criterion.set_params(**{name: value})
        before = fingerprint(criterion)
        with pytest.raises(InvalidParameterError, match=f"{name}="):
            criterion.update(Constant(), X_stop=X_stop)
        assert fingerprint(criterion) == before
        criterion.set_params(**{name: good})


def test_bad_simulator_value_changes_nothing(digits):
    X, y = digits
    used = MaxRounds(5)
    sim = ActiveLearningSimulator(make_net(), initial_size=30, query_size=10, n_rounds=1, stop_when=[used])
    sim.fit(X[:100], y[:100])
    for name, value in _first_bad_values(ActiveLearningSimulator).items():
        good = sim.get_params(deep=False)[name]
        sim.set_params(**{name: value})
        before = fingerprint(sim)
        with pytest.raises(InvalidParameterError, match=f"{name}="):
            sim.fit(X[:100], y[:100])
        assert fingerprint(sim) == before
        sim.set_params(**{name: good})
    # a bad criterion in the list: the others are not reset either
    sim.set_params(stop_when=[used, StabilizingPredictions(window=0)])
    before = fingerprint(sim)
    with pytest.raises(InvalidParameterError, match="window=0"):
        sim.fit(X[:100], y[:100])
    assert fingerprint(sim) == before and used.n_updates_ == 2


# -- the messages' words -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "constraints, words",
    [
        ([Interval(Integral, 0, None, closed="left")], "a non-negative integer"),
        ([Interval(Integral, 1, None, closed="left")], "a positive integer"),
        ([Interval(Integral, 2, None, closed="left")], "an integer at least 2"),
        ([Interval(Integral, 2, None, closed="neither")], "an integer above 2"),
        ([Interval(Integral, 0, 10, closed="both")], "an integer in [0, 10]"),
        ([Interval(Integral, None, None, closed="neither")], "an integer"),
        (
            [Interval(Real, 0, None, closed="left")] if False else [Interval(RealNotInt, 0, 1, closed="right")],
            "a number in (0, 1]",
        ),
        ([Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})], 'a non-negative integer or "auto"'),
        ([StrOptions({"top", "sampled"})], 'one of "sampled", "top"'),
        ([StrOptions({"old", "new"}, deprecated={"old"})], '"new"'),
        ([Options(float, {0.5, 1.0})], "one of 0.5, 1.0"),
        ([None], "None"),
        ([callable], "a callable"),
        (["boolean"], "True or False"),
        (["random_state"], "None, an integer or a numpy RandomState"),
        (["verbose"], "a verbosity level"),
        ([ContinualActiveClassifier], "an instance of ContinualActiveClassifier"),
        ([Hidden(StrOptions({"internal"})), None], "None"),
    ],
)
def test_describe_each_kind(constraints, words):
    assert describe(constraints) == words


@pytest.mark.parametrize(
    "interval, words",
    [
        (Interval(Real, 0, None, closed="left"), "a non-negative finite number"),
        (Interval(Real, 0, None, closed="neither"), "a positive finite number"),
        (Interval(Real, 1e-3, None, closed="left"), "a finite number at least 0.001"),
        (Interval(Real, 1e-3, None, closed="neither"), "a finite number above 0.001"),
        (Interval(Real, None, 0, closed="right"), "a finite number in (-inf, 0]"),
        (Interval(Real, None, None, closed="neither"), "a finite number"),
        (Interval(Real, 0, 1, closed="both"), "a number in [0, 1]"),
        (Interval(Real, -1, 1, closed="left"), "a number in [-1, 1)"),
    ],
)
def test_describe_real_intervals_say_finite_when_unbounded(interval, words):
    assert describe([interval]) == words
    if interval.right is None or interval.left is None:  # infinity would pass scikit-learn's own check
        assert not is_satisfied([interval], np.inf if interval.right is None else -np.inf)


def test_every_declared_rule_reads_as_words():
    for cls in DECLARING:
        for name, constraints in cls._parameter_constraints.items():
            if constraints != "no_validation":
                words = describe(constraints)
                assert words and not re.search(r"[<>{}]|sklearn|Interval|Options", words), (cls, name, words)


def test_the_replay_memory_rules_come_from_skcal_memory():
    from skcal.memory import RETENTION, SAMPLING

    rules = ReplayStrategy._parameter_constraints
    assert rules["sampling"][0].options == set(SAMPLING) and rules["retention"][0].options == set(RETENTION)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for sampling in SAMPLING:
            make_strategy("er", {"sampling": sampling})
