"""Every round leaves the estimator whole: a failed round changes nothing, and retrying it is bit-identical."""

import hashlib
import io
import pickle

import numpy as np
import pytest
import torch
from conftest import MLP, make_net
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback, EarlyStopping

from skcal import ContinualActiveClassifier
from skcal.replay import REPLAY_STRATEGIES, ExperienceReplay
from skcal.simulation import ActiveLearningSimulator


def fingerprint(net):
    """A digest of every piece of training state a round may touch."""
    digest = hashlib.sha256()

    def add(value):
        if isinstance(value, torch.Tensor):
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
            digest.update(str((value.dtype, tuple(value.shape))).encode())
        elif isinstance(value, dict):
            for key in sorted(value, key=str):
                digest.update(str(key).encode())
                add(value[key])
        elif isinstance(value, (list, tuple)):
            digest.update(str(len(value)).encode())
            for item in value:
                add(item)
        elif isinstance(value, np.generic):  # a numpy scalar and the Python number it holds are the same state
            add(value.item())
        else:
            digest.update(repr(value).encode())

    add(net.module_.state_dict())
    add([dict(p.items()) for p in net.optimizer_.state_dict()["param_groups"]])
    add(net.optimizer_.state_dict()["state"])
    add([group["lr"] for group in net.optimizer_.param_groups])
    add(net.rng_.bit_generator.state)
    history = net.labelled_history_
    add([len(history), history.n_staged, history.X, history.y, history.logits, history.rounds])
    add(None if history.retained is None else history.retained.tolist())
    add(net.rounds_)
    # skorch's training log, without wall-clock durations
    add([{k: v for k, v in epoch.items() if k not in ("dur", "batches")} for epoch in net.history])
    add([len(epoch["batches"]) for epoch in net.history])
    add(list(net.classes_))
    add(type(net.module_).__name__)
    return digest.hexdigest()


def without_durations(rounds):
    return [{k: v for k, v in record.items() if k != "train_seconds"} for record in rounds]


class Failing(Exception):
    pass


class FailAt(Callback):
    """Raise ``error`` at the ``at``-th training batch of a round, while armed."""

    def __init__(self, error=None, at=3):
        self.error = error
        self.at = at

    def initialize(self):
        self.seen_ = 0
        return self

    def on_batch_end(self, net, training=False, **kwargs):
        if self.error is not None and training:
            self.seen_ += 1
            if self.seen_ == self.at:
                raise self.error


class FailingStrategyMixin:
    """Raise in the strategy's training step after a few steps."""

    steps = 0
    armed = False

    def train_step(self, net, batch, **fit_params):
        type(self).steps += 1
        if type(self).armed and type(self).steps >= 4:
            raise Failing("strategy failed")
        return super().train_step(net, batch, **fit_params)


class NaNAfter(MLP):
    """An MLP whose outputs become NaN while ``poisoned`` is set."""

    poisoned = False

    def forward(self, X):
        out = super().forward(X)
        return out * float("nan") if NaNAfter.poisoned and self.training else out


FAILURES = ["callback_error", "keyboard_interrupt", "nan_loss", "strategy_error"]
STRATEGIES = sorted(REPLAY_STRATEGIES)


def campaign(replay, failure, X, y, **params):
    params = dict(
        replay=replay,
        module=NaNAfter,
        callbacks=[("fail", FailAt())],
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        reset_optimizer=False,
        scale_lr=True,
        max_epochs=3,
        round_epochs=2,
        **params,
    )
    if failure == "strategy_error":
        base = REPLAY_STRATEGIES[replay]
        params["replay"] = type(f"Failing{base.__name__}", (FailingStrategyMixin, base), {"name": replay})
    return make_net(**params)


def arm(net, failure):
    NaNAfter.poisoned = failure == "nan_loss"
    if failure == "callback_error":
        net.set_params(callbacks__fail__error=Failing("callback failed"))
    elif failure == "keyboard_interrupt":
        net.set_params(callbacks__fail__error=KeyboardInterrupt())
    elif failure == "strategy_error":
        net.replay.steps, net.replay.armed = 0, True


def disarm(net, failure):
    NaNAfter.poisoned = False
    net.set_params(callbacks__fail__error=None)
    if failure == "strategy_error":
        net.replay.armed = False


EXPECTED = {
    "callback_error": Failing,
    "keyboard_interrupt": KeyboardInterrupt,
    "nan_loss": FloatingPointError,
    "strategy_error": Failing,
}


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("replay", STRATEGIES)
def test_a_failed_round_changes_nothing_and_the_retry_is_bit_identical(digits, replay, failure):
    X, y = digits
    rounds = [slice(0, 60), slice(60, 100), slice(100, 140)]

    reference = campaign(replay, failure, X, y).fit(X[rounds[0]], y[rounds[0]])
    reference.partial_fit(X[rounds[1]], y[rounds[1]]).partial_fit(X[rounds[2]], y[rounds[2]])

    net = campaign(replay, failure, X, y).fit(X[rounds[0]], y[rounds[0]])
    net.partial_fit(X[rounds[1]], y[rounds[1]])
    before = fingerprint(net)
    arm(net, failure)
    with pytest.raises(EXPECTED[failure]):
        net.partial_fit(X[rounds[2]], y[rounds[2]])
    disarm(net, failure)
    assert fingerprint(net) == before
    assert net.round_ is None

    net.partial_fit(X[rounds[2]], y[rounds[2]])
    for key, value in reference.module_.state_dict().items():
        assert torch.equal(value, net.module_.state_dict()[key]), key
    assert without_durations(net.rounds_) == without_durations(reference.rounds_)
    assert net.rng_.bit_generator.state == reference.rng_.bit_generator.state
    assert torch.equal(net.labelled_history_.logits, reference.labelled_history_.logits)


def test_a_failed_grow_output_round_rolls_back_the_layer_classes_and_logits(digits):
    X, y = digits
    seed = np.isin(y, [0, 1, 2])
    net = make_net(module=MLP(n_out=3), grow_output=True, callbacks=[("fail", FailAt())])
    net.fit(X[seed][:60], y[seed][:60])
    before, module = fingerprint(net), net.module_
    net.set_params(callbacks__fail__error=Failing("callback failed"))
    later = np.isin(y, [3, 4])
    with pytest.raises(Failing):
        net.partial_fit(X[later][:30], y[later][:30])
    assert fingerprint(net) == before
    assert net.module_ is module and net.module_.out.out_features == 3
    assert net.labelled_history_.logits.shape == (60, 3) and list(net.classes_) == [0, 1, 2]
    net.set_params(callbacks__fail__error=None)
    net.partial_fit(X[later][:30], y[later][:30])
    assert list(net.classes_) == [0, 1, 2, 3, 4] and net.module_.out.out_features == 5


def test_a_failed_retrain_round_keeps_the_trained_weights(digits):
    X, y = digits
    net = make_net(replay="retrain", callbacks=[("fail", FailAt())]).fit(X[:300], y[:300])
    accuracy = net.score(X[1000:], y[1000:])
    net.set_params(callbacks__fail__error=Failing("callback failed"))
    with pytest.raises(Failing):
        net.partial_fit(X[300:400], y[300:400])
    assert net.score(X[1000:], y[1000:]) == accuracy > 0.5


def test_a_failed_warm_fit_keeps_the_optimizer_momentum(digits):
    X, y = digits
    net = make_net(
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        reset_optimizer=False,
        warm_start=True,
        callbacks=[("fail", FailAt())],
    )
    net.fit(X[:100], y[:100])
    momentum = {k: v["momentum_buffer"].clone() for k, v in net.optimizer_.state_dict()["state"].items()}
    before = fingerprint(net)
    net.set_params(callbacks__fail__error=Failing("callback failed"))
    with pytest.raises(Failing):
        net.fit(X[100:200], y[100:200])
    assert fingerprint(net) == before
    for key, value in net.optimizer_.state_dict()["state"].items():
        assert torch.equal(value["momentum_buffer"], momentum[key])


@pytest.mark.parametrize(
    "params, message",
    [
        ({"module__no_such_argument": 3}, "no_such_argument"),
        ({"lr": -1.0}, "lr=-1.0"),
        ({"module": torch.nn.Dropout, "module__p": 2.0}, "dropout probability"),
    ],
)
def test_an_initialisation_error_is_raised_as_itself(digits, params, message):
    X, y = digits
    net = make_net(**params)
    with pytest.raises((TypeError, ValueError), match=message) as raised:
        net.partial_fit(X[:50], y[:50])
    assert not isinstance(raised.value, AttributeError)
    assert not net.initialized_ and not net.__sklearn_is_fitted__()


def test_early_stopping_and_the_accuracy_stop_are_callbacks_that_end_a_round_not_fail_it(digits):
    X, y = digits
    early = EarlyStopping(monitor="train_loss", patience=1, threshold=10.0, threshold_mode="abs")
    net = make_net(replay="retrain", max_epochs=50, callbacks=[early]).fit(X[:100], y[:100])
    assert net.rounds_[0]["epochs"] == 2  # stopped by EarlyStopping: no epoch improves by 10
    net.partial_fit(X[100:150], y[100:150])
    assert len(net.rounds_) == 2 and net.rounds_[1]["epochs"] == 2
    net = make_net(replay="retrain", max_epochs=50, train_accuracy_stop=0.0).fit(X[:100], y[:100])
    assert net.rounds_[0]["epochs"] == 1
    net = make_net(replay="retrain", max_epochs=50, train_accuracy_stop=0.0, callbacks__accuracy_stop=None)
    net.fit(X[:100], y[:100])
    assert net.rounds_[0]["epochs"] == 50  # the rule is the callback: without it, no early stop


# -- campaigns start fresh ------------------------------------------------------


def test_a_clone_of_a_trained_estimator_with_a_module_instance_starts_untrained(digits):
    X, y = digits
    net = make_net(module=MLP(), max_epochs=30, train_accuracy_stop=0.99)
    net.fit(X[:1000], y[:1000])
    assert net.score(X[1000:], y[1000:]) > 0.9
    fresh = clone(net).set_params(max_epochs=0)
    fresh.fit(X[:20], y[:20])
    assert fresh.score(X[1000:], y[1000:]) < 0.3
    net.set_params(max_epochs=0).fit(X[:20], y[:20])  # fit again on the same estimator: a new campaign
    assert net.score(X[1000:], y[1000:]) < 0.3


def test_random_state_seeds_the_initialisation_of_a_module_instance(digits):
    X, y = digits
    torch.manual_seed(1)
    first = make_net(module=MLP()).fit(X[:100], y[:100])
    torch.manual_seed(2)
    second = make_net(module=MLP()).fit(X[:100], y[:100])
    for key, value in first.module_.state_dict().items():
        assert torch.equal(value, second.module_.state_dict()[key])


def test_warm_start_keeps_the_weights_an_instance_carries(digits):
    X, y = digits
    pretrained = make_net(module=MLP(), max_epochs=30).fit(X[:1000], y[:1000]).module_
    net = make_net(module=pretrained, warm_start=True, max_epochs=0).fit(X[:20], y[:20])
    assert net.score(X[1000:], y[1000:]) > 0.9


class SeedLoss(Callback):
    """Record the first epoch's training loss of every campaign (shared by clones)."""

    losses = []

    def on_epoch_end(self, net, **kwargs):
        if not net.rounds_ and len(net.history) == 1:
            SeedLoss.losses.append(net.history[-1, "train_loss"])


def test_readme_quick_start_then_grid_search_starts_every_campaign_untrained(digits):
    X, y = digits
    module = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    net = ContinualActiveClassifier(
        module,
        classes=np.arange(10),
        replay="er",
        replay_size=64,
        round_epochs=10,
        optimizer=torch.optim.Adam,
        lr=3e-3,
        max_epochs=100,
        train_accuracy_stop=0.99,
        verbose=0,
        callbacks=[SeedLoss()],
    )
    net.fit(X[:1500], y[:1500])
    assert net.score(X[1500:], y[1500:]) > 0.9
    trained_loss = net.history[-1, "train_loss"]
    SeedLoss.losses = []
    simulator = ActiveLearningSimulator(net, initial_size=0.05, query_size=0.05, n_rounds=1, random_state=0)
    search = GridSearchCV(simulator, {"estimator__replay": ["retrain", "er"]}, cv=2)
    search.fit(X, y)
    assert len(SeedLoss.losses) == 2 * 2 + 1  # every campaign, and the refit
    assert min(SeedLoss.losses) > 1.0 > 10 * trained_loss  # an untrained start: about ln(10)


# -- parameters, labels, columns --------------------------------------------------


@pytest.mark.parametrize(
    "params, message",
    [
        ({"round_epochs": -1}, r"round_epochs=-1 is not valid"),
        ({"round_epochs": 2.5}, r"round_epochs=2.5 is not valid"),
        ({"train_accuracy_stop": -1}, r"train_accuracy_stop=-1 is not valid: it must be a number in \[0, 1\]"),
        ({"scale_lr": "yes"}, r"scale_lr='yes' is not valid: it must be True or False"),
        ({"batch_size": 0}, r"batch_size=0 is not valid"),
        ({"replay_size": -3}, r"replay_size=-3 is not valid"),
        ({"max_epochs": "10"}, r"max_epochs='10' is not valid"),
        ({"lr": float("nan")}, r"lr=nan is not valid"),
        ({"replay__alpha": "x", "replay": "der"}, r"replay__alpha='x' is not valid"),
        ({"random_state": "seed"}, r"random_state='seed' is not valid"),
        ({"device": "bogus"}, r"device='bogus' is not valid"),
    ],
)
def test_bad_parameters_are_rejected_before_any_state_changes(digits, params, message):
    X, y = digits
    net = make_net(replay="der").fit(X[:50], y[:50])
    net.set_params(**params)  # skorch applies lr to the optimizer here already
    before = fingerprint(net)
    with pytest.raises(ValueError, match=message):
        net.partial_fit(X[50:80], y[50:80])
    assert fingerprint(net) == before
    with pytest.raises(ValueError, match=message):
        net.fit(X[50:80], y[50:80])
    assert fingerprint(net) == before


def test_boolean_labels_on_a_ten_class_problem_are_rejected(digits):
    X, y = digits
    net = make_net(classes=np.arange(10)).fit(X[:50], y[:50])
    before = fingerprint(net)
    with pytest.raises(ValueError, match="booleans and numbers are not interchangeable"):
        net.partial_fit(X[50:60], y[50:60] > 4)
    assert fingerprint(net) == before
    with pytest.raises(ValueError, match="booleans and numbers"):
        make_net(classes=np.arange(10)).fit(X[:50], y[:50] > 4)


def test_pandas_columns_must_keep_their_names_and_order(digits):
    pd = pytest.importorskip("pandas")
    X, y = digits
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(64)])
    net = make_net().fit(frame[:50], y[:50])
    assert list(net.feature_names_in_) == list(frame.columns)
    before = fingerprint(net)
    reordered = frame[list(reversed(frame.columns))]
    with pytest.raises(ValueError, match="same names, other order"):
        net.partial_fit(reordered[50:60], y[50:60])
    renamed = frame.rename(columns={"pixel3": "pixel_three"})
    with pytest.raises(ValueError, match=r"unseen \['pixel_three'\], missing \['pixel3'\]"):
        net.partial_fit(renamed[50:60], y[50:60])
    with pytest.raises(ValueError, match="same names, other order"):
        net.predict(reordered[:5])
    assert fingerprint(net) == before
    net.partial_fit(frame[50:60], y[50:60])
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        net.predict(X[:5])


def test_a_pickled_estimator_mid_campaign_has_no_round(digits):
    X, y = digits
    net = make_net().fit(X[:50], y[:50]).partial_fit(X[50:70], y[50:70])
    buffer = io.BytesIO()
    pickle.dump(net, buffer)
    loaded = pickle.loads(buffer.getvalue())
    assert loaded.round_ is None and fingerprint(loaded) == fingerprint(net)


def test_strategies_have_display_names():
    assert ExperienceReplay.display_name == "CAL-ER"
    assert all(cls.display_name for cls in REPLAY_STRATEGIES.values())
