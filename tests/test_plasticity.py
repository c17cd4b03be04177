"""plasticity=: shrink and perturb, and the output-layer reset, at the start of every round that keeps the weights."""

import pickle

import numpy as np
import pytest
import torch
from conftest import MLP, make_net
from skorch.callbacks import Callback
from test_atomic_rounds import FailAt, Failing, fingerprint

from skcal import ContinualActiveClassifier
from skcal.plasticity import PLASTICITY, ResetOutput, ShrinkPerturb, make_plasticity


class WeightsAtStart(Callback):
    """Keep the weights every round starts training from, and the round's seed."""

    def initialize(self):
        self.starts_ = []
        return self

    def on_train_begin(self, net, **kwargs):
        state = {key: value.detach().clone() for key, value in net.module_.state_dict().items()}
        self.starts_.append((net.round_.index, net.round_.seed, state))


def campaign(digits, rounds=3, **params):
    X, y = digits
    net = make_net(callbacks=[("starts", WeightsAtStart())], **params).fit(X[:60], y[:60])
    ends = [{key: value.clone() for key, value in net.module_.state_dict().items()}]
    for start in range(60, 60 + 40 * rounds, 40):
        net.partial_fit(X[start : start + 40], y[start : start + 40])
        ends.append({key: value.clone() for key, value in net.module_.state_dict().items()})
    return net, ends


def fresh_weights(net, seed):
    """The fresh initialisation the round seeded with ``seed`` draws."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        module, missed = net.fresh_module()
    return module.state_dict(), missed


@pytest.mark.parametrize("replay", ["er", "der", "sd", "finetune", "warmstart"])
def test_shrink_perturb_is_exact_and_drawn_from_the_round_seed(digits, replay):
    params = dict(plasticity="shrink_perturb", plasticity__shrink=0.7, plasticity__noise=0.05)
    net, ends = campaign(digits, replay=replay, **params)
    starts = dict(net.callbacks_)["starts"].starts_
    assert [index for index, _, _ in starts] == [0, 1, 2, 3]
    for index, seed, start in starts[1:]:
        fresh, missed = fresh_weights(net, seed)
        assert missed == []
        for name, value in start.items():
            expected = 0.7 * ends[index - 1][name] + 0.05 * fresh[name]
            assert torch.allclose(value, expected, atol=1e-7), (index, name)
            assert not torch.equal(value, ends[index - 1][name])


def test_the_seed_round_and_retraining_get_no_plasticity(digits):
    plain, _ = campaign(digits, replay="retrain", rounds=2)
    shrunk, _ = campaign(digits, replay="retrain", rounds=2, plasticity="shrink_perturb")
    for key, value in plain.module_.state_dict().items():
        assert torch.equal(value, shrunk.module_.state_dict()[key])
    assert plain.rounds_[0] == {**shrunk.rounds_[0], "train_seconds": plain.rounds_[0]["train_seconds"]}


def test_shrink_one_without_noise_changes_nothing(digits):
    plain, _ = campaign(digits, replay="er")
    kept, _ = campaign(digits, replay="er", plasticity="shrink_perturb", plasticity__shrink=1.0, plasticity__noise=0.0)
    for key, value in plain.module_.state_dict().items():
        assert torch.equal(value, kept.module_.state_dict()[key])


def test_plasticity_is_seeded_by_random_state(digits):
    first, _ = campaign(digits, replay="er", plasticity="shrink_perturb", random_state=3)
    again, _ = campaign(digits, replay="er", plasticity="shrink_perturb", random_state=3)
    other, _ = campaign(digits, replay="er", plasticity="shrink_perturb", random_state=4)
    weights = [net.module_.state_dict()["hidden.weight"] for net in (first, again, other)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])


def test_a_module_instance_is_perturbed_from_its_own_initialisation(digits):
    net, ends = campaign(digits, module=MLP(), replay="er", plasticity="shrink_perturb", plasticity__noise=0.2)
    index, seed, start = dict(net.callbacks_)["starts"].starts_[1]
    fresh, missed = fresh_weights(net, seed)
    assert missed == [] and fresh is not net.module_.state_dict()
    expected = 0.6 * ends[0]["out.weight"] + 0.2 * fresh["out.weight"]
    assert torch.allclose(start["out.weight"], expected, atol=1e-7)


def test_reset_output_redraws_the_last_linear_layer_only(digits):
    net, ends = campaign(digits, replay="er", plasticity="reset_output")
    for index, seed, start in dict(net.callbacks_)["starts"].starts_[1:]:
        fresh, _ = fresh_weights(net, seed)
        assert torch.equal(start["out.weight"], fresh["out.weight"])
        assert torch.equal(start["out.bias"], fresh["out.bias"])
        assert torch.equal(start["hidden.weight"], ends[index - 1]["hidden.weight"])


def test_reset_output_needs_a_linear_output_layer(digits):
    X, y = digits

    class NoLinear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(64, 10))

        def forward(self, X):
            return X @ self.weight

    net = make_net(module=NoLinear, replay="er", plasticity="reset_output").fit(X[:60], y[:60])
    before = fingerprint(net)
    with pytest.raises(ValueError, match="reset_output' needs a module whose output layer is a torch.nn.Linear"):
        net.partial_fit(X[60:100], y[60:100])
    assert fingerprint(net) == before


def test_a_failed_round_puts_the_unshrunk_weights_back_and_the_retry_is_identical(digits):
    X, y = digits
    params = dict(replay="er", plasticity="shrink_perturb", callbacks=[("fail", FailAt())])
    reference = make_net(**params).fit(X[:60], y[:60]).partial_fit(X[60:100], y[60:100])
    net = make_net(**params).fit(X[:60], y[:60])
    before = fingerprint(net)
    net.set_params(callbacks__fail__error=Failing("mid-round"))
    with pytest.raises(Failing):
        net.partial_fit(X[60:100], y[60:100])
    assert fingerprint(net) == before
    net.set_params(callbacks__fail__error=None)
    net.partial_fit(X[60:100], y[60:100])
    for key, value in reference.module_.state_dict().items():
        assert torch.equal(value, net.module_.state_dict()[key])


def test_a_checkpointed_campaign_continues_with_the_same_plasticity(digits, tmp_path):
    X, y = digits
    params = dict(replay="er", plasticity="shrink_perturb", plasticity__shrink=0.5)
    reference = make_net(**params).fit(X[:60], y[:60]).partial_fit(X[60:100], y[60:100])
    reference.partial_fit(X[100:140], y[100:140])
    saved = make_net(**params).fit(X[:60], y[:60]).partial_fit(X[60:100], y[60:100])
    saved.save_checkpoint(tmp_path)
    resumed = make_net(**params).load_checkpoint(tmp_path).partial_fit(X[100:140], y[100:140])
    for key, value in reference.module_.state_dict().items():
        assert torch.equal(value, resumed.module_.state_dict()[key])


def test_plasticity_hyperparameters_are_grid_searchable_parameters(digits):
    from sklearn.base import clone

    net = ContinualActiveClassifier(MLP, plasticity="shrink_perturb", plasticity__shrink=0.8)
    params = net.get_params()
    assert params["plasticity"] == "shrink_perturb" and params["plasticity__shrink"] == 0.8
    copy = clone(net).set_params(plasticity__noise=0.3, plasticity="shrink_perturb")
    assert copy.get_params()["plasticity__noise"] == 0.3
    assert pickle.loads(pickle.dumps(copy)).get_params()["plasticity__noise"] == 0.3
    remedy = make_plasticity(copy.plasticity, copy.get_params_for("plasticity"))
    assert isinstance(remedy, ShrinkPerturb) and (remedy.shrink, remedy.noise) == (0.8, 0.3)
    # a grid mixing remedies: one remedy's hyperparameter means nothing to another
    assert isinstance(make_plasticity("reset_output", {"shrink": 0.5}), ResetOutput)
    assert make_plasticity(None, {"shrink": 0.5}) is None
    assert set(PLASTICITY) == {"shrink_perturb", "reset_output"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"plasticity": "shrink"}, "Unknown plasticity 'shrink'; valid names are None, 'shrink_perturb', 'reset_"),
        ({"plasticity": 3}, "plasticity must be None, a name"),
        ({"plasticity": "shrink_perturb", "plasticity__shrink": 0}, r"plasticity__shrink=0 is not valid for Shrink"),
        ({"plasticity": "shrink_perturb", "plasticity__shrink": 1.5}, r"must be a number in \(0, 1\]"),
        ({"plasticity": "shrink_perturb", "plasticity__noise": -0.1}, r"plasticity__noise=-0.1 is not"),
        ({"plasticity": "shrink_perturb", "plasticity__noise": float("nan")}, r"plasticity__noise=nan is not valid"),
        ({"plasticity": "reset_output", "plasticity__shrnk": 0.5}, r"Invalid plasticity__ parameter\(s\) \['shrnk'\]"),
    ],
)
def test_bad_plasticity_is_named_before_anything_changes(digits, params, message):
    X, y = digits
    net = make_net(replay="er").fit(X[:60], y[:60])
    before = fingerprint(net)
    net.set_params(**params)
    with pytest.raises((ValueError, TypeError), match=message):
        net.partial_fit(X[60:100], y[60:100])
    assert fingerprint(net) == before
    fresh = make_net(replay="er", **params)
    with pytest.raises((ValueError, TypeError), match=message):
        fresh.fit(X[:60], y[:60])
    assert not hasattr(fresh, "labelled_history_")


def test_plasticity_does_not_touch_the_global_random_state(digits):
    X, y = digits
    net = make_net(replay="er", plasticity="shrink_perturb", random_state=None).fit(X[:60], y[:60])
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    net.partial_fit(X[60:100], y[60:100])
    net2 = make_net(replay="er", plasticity="shrink_perturb", random_state=0).fit(X[:60], y[:60])
    torch.manual_seed(123)
    net2.partial_fit(X[60:100], y[60:100])
    assert torch.equal(torch.rand(3), expected)  # random_state set: the round ran on a private generator
    assert np.isfinite(net.score(X[200:300], y[200:300]))
