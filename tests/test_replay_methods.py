import copy
import math

import numpy as np
import pytest
import torch
from conftest import MLP, make_net

from skcal import ContinualActiveClassifier, LabelledHistory
from skcal.replay import (
    DarkExperienceReplay,
    MaximallyInterferedRetrieval,
    ReplayDraw,
    ScaledDistillation,
    SubmodularScaledDistillation,
)
from skcal.replay.sd import distillation_kl, plasticity
from skcal.utils.embedding import embeddings_and_logits

# -- losses against hand-computed values ---------------------------------------------

# One current point with logits (2, 0) and label 0; one replayed point with logits
# g(x') = (0, 1), label 1 and stored logits z' = (1, 1).
CE_CURRENT = math.log(1 + math.exp(-2))
CE_REPLAY = math.log(1 + math.exp(-1))
P_STORED = [0.5, 0.5]
Q_MODEL = [1 / (1 + math.e), math.e / (1 + math.e)]
KL_TRUE = sum(p * math.log(p / q) for p, q in zip(P_STORED, Q_MODEL, strict=True))
KL_REFERENCE = sum(p * (math.log(p) - q) for p, q in zip(P_STORED, Q_MODEL, strict=True))


@pytest.fixture
def tiny():
    net = ContinualActiveClassifier(torch.nn.Linear, module__in_features=1, module__out_features=2).initialize()
    history = LabelledHistory()
    history.stage(torch.zeros(1, 1), torch.tensor([1]))
    history.commit(torch.tensor([[1.0, 1.0]]), round_id=0)
    replay = history.batch(torch.tensor([0]))
    return net, history, torch.tensor([[2.0, 0.0]]), torch.tensor([0]), torch.tensor([[0.0, 1.0]]), replay


def test_der_loss_is_equation_2(tiny):
    net, _, y_pred, y_true, replay_pred, replay = tiny
    loss = DarkExperienceReplay(alpha=0.3, beta=0.7).loss(net, y_pred, y_true, replay_pred, replay)
    assert loss.item() == pytest.approx(CE_CURRENT + 0.3 * 1.0 + 0.7 * CE_REPLAY, rel=1e-6)


def test_plasticity_is_equation_5():
    assert plasticity(300, 100) == pytest.approx(0.25)
    assert plasticity(0, 10) == 1.0
    assert plasticity(1, 3) == pytest.approx(0.75)


def test_sd_loss_is_equations_3_and_4(tiny):
    net, history, y_pred, y_true, replay_pred, replay = tiny
    strategy = ScaledDistillation(alpha=0.4)
    strategy.begin_round(net, history, n_new=3)
    assert strategy.lambda_t_ == pytest.approx(0.75)
    loss = strategy.loss(net, y_pred, y_true, replay_pred, replay)
    expected = 0.75 * CE_CURRENT + 0.25 * (0.4 * KL_TRUE + 0.6 * CE_REPLAY)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_kl_variants_by_hand(tiny):
    *_, replay_pred, replay = tiny
    assert distillation_kl(replay_pred, replay.logits).item() == pytest.approx(KL_TRUE, rel=1e-6)
    assert distillation_kl(replay_pred, replay.logits, "reference").item() == pytest.approx(KL_REFERENCE, rel=1e-6)
    with pytest.raises(ValueError, match="Unknown KL variant"):
        distillation_kl(replay_pred, replay.logits, "nope")


def test_losses_without_replay_are_the_current_loss(tiny):
    net, history, y_pred, y_true, *_ = tiny
    sd = ScaledDistillation()
    sd.begin_round(net, history, 3)
    for strategy in (DarkExperienceReplay(), sd):
        assert strategy.loss(net, y_pred, y_true, None, None).item() == pytest.approx(CE_CURRENT, rel=1e-6)


# -- MIR --------------------------------------------------------------------------------


def interfered_case():
    """A zero, bias-free linear model and candidates whose interference is known.

    A step on the current batch (points along e1, label 0) raises class 0's
    logit along e1, so candidates along e1 labelled 1 lose most, more the
    longer they are; those labelled 0 gain, and those along e2 do not change.
    """
    X_history = np.array([[4, 0], [3, 0], [2, 0], [1, 0], [3, 0], [2, 0], [0, 3], [0, 2]], dtype=np.float32)
    y_history = np.array([1, 1, 1, 1, 0, 0, 1, 0])
    net = ContinualActiveClassifier(
        torch.nn.Linear,
        module__in_features=2,
        module__out_features=2,
        module__bias=False,
        max_epochs=0,
        verbose=0,
        random_state=0,
        lr=0.5,
    ).fit(X_history, y_history)
    with torch.no_grad():
        net.module_.weight.zero_()
    return net, torch.tensor([[1.0, 0.0], [2.0, 0.0]]), torch.tensor([0, 0])


def test_mir_picks_the_most_interfered_candidates():
    net, X_current, y_current = interfered_case()
    strategy = MaximallyInterferedRetrieval(n_candidates=8)
    chosen = strategy.select_replay(
        net, ReplayDraw(X_current, y_current, net.labelled_history_, 3, np.random.default_rng(0))
    )
    assert sorted(chosen.tolist()) == [0, 1, 2]  # label 1 along e1, largest |x| first
    scores = strategy.interference(net, X_current, y_current, net.labelled_history_.batch(torch.arange(8)))
    assert (scores[:4] > 0).all() and (scores[4:6] < 0).all()
    assert scores[6:].abs().max() < 1e-6
    assert scores[0] > scores[1] > scores[2] > scores[3]


def test_mir_scores_match_an_explicit_virtual_step(digits):
    X, y = digits
    net = make_net(replay="mir").fit(X[:200], y[:200])
    X_current, y_current = torch.from_numpy(X[200:232]), torch.from_numpy(y[200:232])
    candidates = net.labelled_history_.batch(torch.arange(100))
    net.module_.train()
    scores = MaximallyInterferedRetrieval().interference(net, X_current, y_current, candidates)

    twin = copy.deepcopy(net.module_)
    loss = torch.nn.functional.cross_entropy(twin(X_current), y_current)
    loss.backward()
    with torch.no_grad():
        before = torch.nn.functional.cross_entropy(twin(candidates.X), candidates.y, reduction="none")
        for parameter in twin.parameters():
            parameter -= net.lr * parameter.grad
        after = torch.nn.functional.cross_entropy(twin(candidates.X), candidates.y, reduction="none")
    torch.testing.assert_close(scores, after - before, rtol=1e-4, atol=1e-6)


class BatchNormMLP(MLP):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.norm = torch.nn.BatchNorm1d(self.hidden.out_features)

    def forward(self, X):
        return self.out(torch.relu(self.norm(self.hidden(X))))


def test_mir_scoring_leaves_parameters_optimizer_and_batchnorm_untouched(digits):
    X, y = digits
    net = make_net(module=BatchNormMLP, replay="mir", optimizer=torch.optim.SGD, optimizer__momentum=0.9)
    net.fit(X[:200], y[:200])
    net.module_.train()
    for parameter in net.module_.parameters():
        parameter.grad = torch.full_like(parameter, 0.125)
    state = copy.deepcopy(net.module_.state_dict())
    optimizer_state = copy.deepcopy(net.optimizer_.state_dict())
    grads = [parameter.grad.clone() for parameter in net.module_.parameters()]

    draw = ReplayDraw(
        torch.from_numpy(X[200:232]), torch.from_numpy(y[200:232]), net.labelled_history_, 16, np.random.default_rng(0)
    )
    chosen = MaximallyInterferedRetrieval(n_candidates=64).select_replay(net, draw)
    assert len(chosen) == 16 and len(set(chosen.tolist())) == 16
    for key, value in net.module_.state_dict().items():
        assert torch.equal(value, state[key]), key  # includes running_mean/var, num_batches_tracked
    for parameter, grad in zip(net.module_.parameters(), grads, strict=True):
        assert torch.equal(parameter.grad, grad)
    after = net.optimizer_.state_dict()
    assert after["param_groups"] == optimizer_state["param_groups"]
    for key, value in optimizer_state["state"].items():
        assert torch.equal(after["state"][key]["momentum_buffer"], value["momentum_buffer"])


def test_mir_sampled_selection_and_compute_accounting(digits):
    X, y = digits
    net = make_net(
        replay="mir",
        replay__selection="sampled",
        replay__n_candidates=50,
        batch_size=20,
        replay_size=10,
        round_epochs=1,
    )
    net.fit(X[:100], y[:100]).partial_fit(X[100:140], y[100:140])
    record = net.rounds_[-1]
    # 2 batches: each trains 20 + 10, and scoring forwards 20 + 2 * 50, backpropagates 20
    assert record["samples_backpropagated"] == 2 * (30 + 20)
    assert record["samples_forwarded"] == 2 * (30 + 20 + 100) + 40


def test_bad_method_hyperparameters_are_clear_errors(digits):
    X, y = digits
    cases = [
        ("mir", {"replay__selection": "best"}, r'replay__selection=\'best\' .* must be one of "sampled", "top"'),
        ("mir", {"replay__n_candidates": 0}, "replay__n_candidates=0"),
        ("sd", {"replay__kl": "forward"}, "replay__kl='forward'"),
        ("sds2", {"replay__embedding": "pooled"}, "replay__embedding='pooled'"),
        ("der", {"replay__alpha": "x"}, r"replay__alpha='x' .* must be a non-negative finite number"),
        ("der", {"replay__beta": float("nan")}, r"replay__beta=nan .* must be a non-negative finite number"),
        ("mir", {"replay__virtual_lr": float("inf")}, r"replay__virtual_lr=inf"),
        ("sds2", {"replay__sigma": float("nan")}, r"replay__sigma=nan"),
        ("sd", {"replay__alpha": 1.5}, r"replay__alpha=1.5 .* in \[0, 1\]"),
        ("der", {"replay__gamma": 1.0}, "gamma"),
    ]
    for replay, params, message in cases:
        net = make_net(replay=replay).fit(X[:50], y[:50])
        net.set_params(**params)
        with pytest.raises(ValueError, match=message):
            net.partial_fit(X[50:60], y[50:60])
        assert len(net.labelled_history_) == 50 and len(net.rounds_) == 1


# -- stored logits ------------------------------------------------------------------


class RecordingDER(DarkExperienceReplay):
    replayed = []

    def loss(self, net, y_pred, y_true, replay_pred, replay):
        RecordingDER.replayed.append((replay.indices.clone(), replay.logits.clone(), replay.rounds.clone()))
        return super().loss(net, y_pred, y_true, replay_pred, replay)


def test_der_replays_each_points_own_round_logits(digits):
    X, y = digits
    RecordingDER.replayed.clear()
    net = make_net(replay="der").fit(X[:60], y[:60])
    net.partial_fit(X[60:100], y[60:100])
    round_one_logits = net.forward(X[60:100]).clone()
    net.partial_fit(X[100:140], y[100:140])
    net.set_params(replay=RecordingDER)
    net.partial_fit(X[140:180], y[140:180])
    replayed_round_one = 0
    for indices, logits, rounds in RecordingDER.replayed:
        from_round_one = rounds == 1
        replayed_round_one += int(from_round_one.sum())
        torch.testing.assert_close(logits[from_round_one], round_one_logits[indices[from_round_one] - 60])
    assert replayed_round_one > 0
    # and the current model no longer gives those logits: the targets really are the old ones
    assert not torch.allclose(net.forward(X[60:100]), round_one_logits)


# -- SDS2 ----------------------------------------------------------------------------


def test_embeddings_from_the_last_linear_layer_or_an_embed_method(digits):
    X, _ = digits
    module = MLP()
    batch = torch.from_numpy(X[:5])
    embeddings, logits = embeddings_and_logits(module, batch)
    torch.testing.assert_close(embeddings, torch.relu(module.hidden(batch)))
    torch.testing.assert_close(logits, module(batch))

    class WithEmbed(MLP):
        def embed(self, X):
            return self.hidden(X)

    module = WithEmbed()
    torch.testing.assert_close(embeddings_and_logits(module, batch)[0], module.hidden(batch))

    class NoLinear(torch.nn.Module):
        def forward(self, X):
            return X[:, :10]

    with pytest.raises(TypeError, match="add a method `embed"):
        embeddings_and_logits(NoLinear(), batch)

    class EmbeddingLayerNamedEmbed(MLP):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Identity()  # a submodule, not the embedding method

    module = EmbeddingLayerNamedEmbed()
    torch.testing.assert_close(embeddings_and_logits(module, batch)[0], torch.relu(module.hidden(batch)))


def test_sds2_selects_diverse_points_by_greedy_on_equation_6(digits):
    X, y = digits
    net = make_net(replay="sds2").fit(X[:300], y[:300])
    strategy = SubmodularScaledDistillation(n_candidates=300, sigma=1.0, uncertainty_weight=0.0)
    chosen = strategy.select_replay(net, ReplayDraw(None, None, net.labelled_history_, 10, np.random.default_rng(0)))
    assert len(set(chosen.tolist())) == 10
    # facility location alone picks representatives: they span many classes, unlike a class block
    assert len(np.unique(y[chosen.numpy()])) >= 6
    uncertain = SubmodularScaledDistillation(n_candidates=300, sigma=1.0, uncertainty_weight=1000.0)
    picks = uncertain.select_replay(net, ReplayDraw(None, None, net.labelled_history_, 10, np.random.default_rng(0)))
    net.module_.eval()
    with torch.no_grad():
        probabilities = torch.softmax(net.module_(torch.from_numpy(X[:300])), dim=1)
    uncertainty = 1 - probabilities.max(dim=1).values
    # with a dominant uncertainty term the picks are among the most uncertain points
    assert uncertainty[picks].mean() > uncertainty.quantile(0.8)


def test_sds2_restores_train_mode_and_counts_its_forward(digits):
    X, y = digits
    net = make_net(replay="sds2", replay__n_candidates=40, batch_size=20, replay_size=8, round_epochs=1)
    net.fit(X[:100], y[:100]).partial_fit(X[100:140], y[100:140])
    assert net.rounds_[-1]["samples_forwarded"] == 2 * (28 + 40) + 40
    assert net.rounds_[-1]["samples_backpropagated"] == 2 * 28


# -- end to end -------------------------------------------------------------------------


def entropy_campaign(digits, replay, seed, rounds=5, query_size=100):
    X, y = digits
    order = np.random.default_rng(0).permutation(len(X))
    X_pool, y_pool, X_test, y_test = X[order[:1300]], y[order[:1300]], X[order[1300:]], y[order[1300:]]
    net = ContinualActiveClassifier(
        MLP,
        module__n_hidden=64,
        classes=np.arange(10),
        replay=replay,
        lr=0.1,
        batch_size=32,
        replay_size=32,
        max_epochs=60,
        train_accuracy_stop=0.99,
        round_epochs=15,
        verbose=0,
        random_state=seed,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
    )
    rng = np.random.default_rng(seed)
    labelled = rng.choice(1300, 100, replace=False)
    pool = np.setdiff1d(np.arange(1300), labelled)
    net.fit(X_pool[labelled], y_pool[labelled])
    for _ in range(rounds):
        proba = net.predict_proba(X_pool[pool])
        entropy = -(proba * np.log(proba + 1e-12)).sum(axis=1)
        picked = pool[np.argsort(-entropy)[:query_size]]
        net.partial_fit(X_pool[picked], y_pool[picked])
        pool = np.setdiff1d(pool, picked)
    return net.score(X_test, y_test), sum(record["samples_backpropagated"] for record in net.rounds_)


@pytest.fixture(scope="module")
def retrain_reference(digits):
    runs = [entropy_campaign(digits, "retrain", seed) for seed in range(3)]
    return np.mean([accuracy for accuracy, _ in runs]), np.mean([samples for _, samples in runs])


@pytest.mark.slow
@pytest.mark.parametrize("replay", ["er", "mir", "der", "sd", "sds2"])
def test_cal_matches_retrain_accuracy_with_fewer_samples(digits, retrain_reference, replay):
    """Mean test accuracy over 3 seeds within 2.5 points of standard AL.

    On this 497-point test set one point is 0.2 accuracy points; retrain's
    seeds spread over 0.6 points and the CAL methods' over up to 2.8 (MIR),
    so 2.5 points on a 3-seed mean separates "on par" from the forgetting
    baseline (finetune: about 70%) with room for platform noise.
    """
    reference_accuracy, reference_samples = retrain_reference
    runs = [entropy_campaign(digits, replay, seed) for seed in range(3)]
    accuracy = np.mean([accuracy for accuracy, _ in runs])
    samples = np.mean([samples for _, samples in runs])
    assert accuracy >= reference_accuracy - 0.025
    assert samples < reference_samples


@pytest.mark.slow
def test_finetune_forgets(digits, retrain_reference):
    accuracy, _ = entropy_campaign(digits, "finetune", seed=0)
    assert accuracy < retrain_reference[0] - 0.1


def test_a_user_strategy_slots_in_through_loss_with_replay(digits):
    from skcal.replay import ReplayStrategy

    class WeightedReplay(ReplayStrategy):
        name = "weighted"

        def __init__(self, replay_weight=1.0):
            self.replay_weight = replay_weight

        def loss_with_replay(self, net, current, replay_pred, replay):
            return current + self.replay_weight * net.get_loss(replay_pred, replay.y, training=True)

    X, y = digits
    net = make_net(replay=WeightedReplay, replay__replay_weight=0.5, max_epochs=20).fit(X[:100], y[:100])
    net.partial_fit(X[100:200], y[100:200])
    assert net.rounds_[-1]["strategy"] == "weighted"
    assert net.get_params()["replay__replay_weight"] == 0.5
    assert net.score(X[500:800], y[500:800]) > 0.5


@pytest.mark.parametrize(("replay", "keeps"), [("er", True), ("sd", True), ("finetune", False)])
def test_replay_keeps_a_class_labelled_only_in_one_early_round(digits, replay, keeps):
    X, y = digits
    late, others = np.flatnonzero(y == 9), np.flatnonzero(y != 9)
    net = make_net(replay=replay, round_epochs=15, classes=np.arange(10), random_state=0)
    net.fit(X[others[:100]], y[others[:100]])
    net.partial_fit(X[late[:40]], y[late[:40]])  # the only round with 9s
    test_nines = X[late[100:]]
    learned = np.mean(net.predict(test_nines) == 9)
    for start in range(100, 400, 100):  # three more rounds without any 9
        net.partial_fit(X[others[start : start + 100]], y[others[start : start + 100]])
    kept = np.mean(net.predict(test_nines) == 9)
    assert learned > 0.8
    if keeps:
        assert kept > 0.7, f"{replay} forgot the late class: {learned:.2f} -> {kept:.2f}"
    else:
        assert kept < 0.3, f"finetune should forget: {learned:.2f} -> {kept:.2f}"


def test_mir_and_sds2_warn_when_they_have_nothing_to_choose_from(digits):
    X, y = digits
    for replay in ("mir", "sds2"):
        net = make_net(replay=replay, replay_size=32, replay__n_candidates=32).fit(X[:100], y[:100])
        with pytest.warns(UserWarning, match="replays random points, like ER"):
            net.partial_fit(X[100:140], y[100:140])
