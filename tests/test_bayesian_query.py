"""MC dropout, BALD and BatchBALD (skcal.query)."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import make_net, module_state, same_state
from sklearn.exceptions import NotFittedError

from skcal import query as Q
from skcal.modal import ContinualActiveLearner
from skcal.models import MLP
from skcal.simulation import ActiveLearningSimulator


class BatchNormDropoutNet(torch.nn.Module):
    """Linear, batch norm, ReLU, dropout, linear head.

    Its class name contains "Dropout": MC dropout must not take the whole
    network for a dropout layer (only leaf modules are found by name).
    """

    def __init__(self, p=0.3):
        super().__init__()
        self.hidden = torch.nn.Linear(64, 32)
        self.norm = torch.nn.BatchNorm1d(32)
        self.drop = torch.nn.Dropout(p)
        self.out = torch.nn.Linear(32, 10)

    def forward(self, X):
        return self.out(self.drop(torch.relu(self.norm(self.hidden(X)))))


class HomemadeDropout(torch.nn.Module):
    """Not a torch dropout class, but named like one: MC dropout must find it."""

    def __init__(self, p=0.5):
        super().__init__()
        self.p = p

    def forward(self, X):
        if not self.training:
            return X
        return X * (torch.rand_like(X) > self.p) / (1 - self.p)


def dropout_net(**params):
    defaults = dict(module=MLP, module__n_features=64, module__n_classes=10, module__dropout=0.3, max_epochs=10)
    defaults.update(params)
    return make_net(**defaults)


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    return dropout_net().fit(X[:200], y[:200]), X[200:800]


def entropy_by_hand(p):
    return -sum(q * math.log(q) for q in p if q > 0)


# --- mutual information ----------------------------------------------------------------------------


def test_mutual_information_of_known_samples_by_hand():
    samples = np.array(
        [
            # t = 0: point 0 certain of class 0, point 1 uniform, point 2 (0.9, 0.1)
            [[1.0, 0.0], [0.5, 0.5], [0.9, 0.1]],
            # t = 1: point 0 certain of class 1, point 1 uniform, point 2 (0.6, 0.4)
            [[0.0, 1.0], [0.5, 0.5], [0.6, 0.4]],
        ]
    )
    # point 0: each sample certain (entropy 0), mean (1/2, 1/2): I = log 2
    # point 1: every sample the same: I = 0
    # point 2: H[(0.75, 0.25)] - (H[(0.9, 0.1)] + H[(0.6, 0.4)]) / 2
    point2 = entropy_by_hand([0.75, 0.25]) - (entropy_by_hand([0.9, 0.1]) + entropy_by_hand([0.6, 0.4])) / 2
    np.testing.assert_allclose(Q.mutual_information(samples), [math.log(2), 0.0, point2], rtol=1e-12, atol=1e-15)
    # by hand: 0.56233 - (0.32508 + 0.67301) / 2 = 0.06328
    assert point2 == pytest.approx(0.06328, abs=1e-5)
    np.testing.assert_allclose(
        Q.mutual_information(torch.as_tensor(samples, dtype=torch.float32)), Q.mutual_information(samples), rtol=1e-6
    )


@pytest.mark.parametrize(
    "samples, message",
    [
        (np.full((3, 2), 0.5), "shape"),
        (np.zeros((2, 0, 3)), "no samples, points or classes"),
        (np.array([[[0.5, np.nan]]]), "NaN"),
        (np.array([[[0.7, 0.7]]]), "sum to 1"),
        (np.array([[[1.5, -0.5]]]), "non-negative"),
    ],
)
def test_mutual_information_rejects_bad_samples(samples, message):
    with pytest.raises(ValueError, match=message):
        Q.mutual_information(samples)


# --- MC dropout ------------------------------------------------------------------------------------


def test_mc_dropout_samples_differ_and_are_seeded(fitted):
    net, pool = fitted
    first = Q.mc_dropout_proba(net, pool, n_samples=5, random_state=0)
    assert first.shape == (5, len(pool), 10) and first.dtype == np.float32
    np.testing.assert_allclose(first.sum(axis=2), 1.0, rtol=1e-5)
    assert not np.allclose(first[0], first[1])  # dropout is active: the passes differ
    np.testing.assert_array_equal(first, Q.mc_dropout_proba(net, pool, n_samples=5, random_state=0))
    assert not np.allclose(first, Q.mc_dropout_proba(net, pool, n_samples=5, random_state=1))
    # the average is close to, but not, the deterministic prediction (dropout off)
    deterministic = net.predict_proba(pool)
    assert not np.allclose(first[0], deterministic)


def test_mc_dropout_leaves_the_global_torch_rng_alone(fitted):
    net, pool = fitted
    torch.manual_seed(123)
    state = torch.get_rng_state()
    results = [Q.mc_dropout_proba(net, pool, 3, random_state=7)]
    Q.bald_sampling(net, pool, 5, n_samples=3, random_state=7)
    Q.batchbald_sampling(net, pool, 3, n_samples=3, random_state=7)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(999)  # a different global seed does not change a seeded result
    results.append(Q.mc_dropout_proba(net, pool, 3, random_state=7))
    np.testing.assert_array_equal(*results)


def test_a_random_state_instance_is_consumed_and_none_follows_numpy(fitted):
    net, pool = fitted
    rng = np.random.RandomState(0)
    assert not np.allclose(Q.mc_dropout_proba(net, pool[:50], 2, rng), Q.mc_dropout_proba(net, pool[:50], 2, rng))
    np.random.seed(4)
    first = Q.bald_sampling(net, pool, 10, n_samples=4)
    np.random.seed(4)
    np.testing.assert_array_equal(first, Q.bald_sampling(net, pool, 10, n_samples=4))


def test_batch_norm_stays_in_eval_mode_and_its_statistics_unchanged(digits):
    X, y = digits
    net = make_net(module=BatchNormDropoutNet, max_epochs=5).fit(X[:200], y[:200])
    before = module_state(net)
    net.module_.train()  # whatever mode the module is in, it is given back
    modes = [module.training for module in net.module_.modules()]
    Q.mc_dropout_proba(net, X[200:500], 4, random_state=0)
    Q.bald_sampling(net, X[200:500], 5, n_samples=4, random_state=0)
    Q.batchbald_sampling(net, X[200:500], 3, n_samples=4, random_state=0)
    assert same_state(before, module_state(net))  # running mean, var and batch count untouched
    assert [module.training for module in net.module_.modules()] == modes

    # with p = 0 every pass equals the eval-mode prediction: batch norm used its running statistics
    net.module_.drop.p = 0.0
    samples = Q.mc_dropout_proba(net, X[200:500], 3, random_state=0)
    for sample in samples:
        np.testing.assert_allclose(sample, net.predict_proba(X[200:500]), rtol=1e-5, atol=1e-6)


def test_dropout_layers_are_found_by_type_and_by_name(digits):
    X, y = digits
    for layer in (torch.nn.AlphaDropout(0.3), HomemadeDropout(0.3)):
        module = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), layer, torch.nn.Linear(32, 10))
        net = make_net(module=module, max_epochs=3).fit(X[:100], y[:100])
        samples = Q.mc_dropout_proba(net, X[100:200], 2, random_state=0)
        assert not np.allclose(samples[0], samples[1])


@pytest.mark.parametrize(
    "call",
    [
        lambda net, pool: Q.mc_dropout_proba(net, pool, 3),
        lambda net, pool: Q.bald_sampling(net, pool, 2),
        lambda net, pool: Q.batchbald_sampling(net, pool, 2),
    ],
)
def test_a_module_without_dropout_is_refused(digits, call):
    X, y = digits
    net = make_net().fit(X[:100], y[:100])  # conftest's MLP: no dropout
    with pytest.raises(TypeError, match="no dropout layer"):
        call(net, X[100:200])


# --- BALD ------------------------------------------------------------------------------------------


def test_bald_ranks_by_the_mutual_information_of_the_same_samples(fitted):
    net, pool = fitted
    samples = Q.mc_dropout_proba(net, pool, 8, random_state=3)
    scores = Q.mutual_information(samples)
    chosen = Q.bald_sampling(net, pool, 25, n_samples=8, random_state=3)
    np.testing.assert_array_equal(chosen, np.argsort(-scores, kind="stable")[:25])
    # not the same as prediction entropy: BALD discounts what every sampled network finds ambiguous
    assert set(chosen.tolist()) != set(Q.entropy_sampling(net, pool, 25).tolist())


def test_containers_and_learners_give_the_same_selection(fitted):
    net, pool = fitted
    expected = Q.bald_sampling(net, pool, 10, n_samples=4, random_state=0)
    np.testing.assert_array_equal(expected, Q.bald_sampling(net, sp.csr_matrix(pool), 10, n_samples=4, random_state=0))
    np.testing.assert_array_equal(
        expected, Q.bald_sampling(net, torch.from_numpy(pool), 10, n_samples=4, random_state=0)
    )
    learner = ContinualActiveLearner(net, Q.bald_sampling)
    indices, instances = learner.query(pool, n_instances=10, n_samples=4, random_state=0)
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_array_equal(instances, pool[expected])


# --- BatchBALD -------------------------------------------------------------------------------------


def test_batchbald_first_pick_is_balds(fitted):
    net, pool = fitted
    for seed in range(3):
        bald = Q.bald_sampling(net, pool, 1, n_samples=10, random_state=seed)
        batch = Q.batchbald_sampling(net, pool, 5, n_samples=10, random_state=seed)
        assert batch[0] == bald[0]
        assert len(set(batch.tolist())) == 5


def one_hot(labels, n_classes=2):
    return np.eye(n_classes)[labels]


def test_batchbald_skips_a_duplicate_that_bald_takes():
    # 4 sampled networks. Point 0 and its copy 1 are each certain but the networks disagree (I = log 2);
    # point 2 is softer (I ~ 0.49) but independent of point 0; point 3 is uniform for every network (I = 0).
    a = one_hot([0, 1, 0, 1])
    b = np.array([[0.95, 0.05], [0.95, 0.05], [0.05, 0.95], [0.05, 0.95]])
    samples = np.stack([a, a, b, np.full((4, 2), 0.5)], axis=1)
    assert Q.mutual_information(samples).argsort()[::-1][:2].tolist() in ([0, 1], [1, 0])
    assert Q.batchbald_selection(samples, 2).tolist() == [0, 2]
    # the joint of (0, 1) carries log 2; of (0, 2) about 2 log 2 - H(0.95): the second is bigger
    assert Q.batchbald_selection(samples, 3).tolist()[:2] == [0, 2]


def exact_joint_information(samples, batch):
    """I(y_batch; w) by enumerating every joint configuration (tiny cases only)."""
    n_draws, _, n_classes = samples.shape
    joint = np.ones((n_draws, 1))
    for point in batch:
        joint = (joint[:, :, None] * samples[:, point, None, :]).reshape(n_draws, -1)
    marginal = joint.mean(axis=0)
    predictive = -np.sum(marginal[marginal > 0] * np.log(marginal[marginal > 0]))
    expected = sum(entropy_by_hand(row) for point in batch for row in samples[:, point]) / n_draws
    return predictive - expected


def test_exact_and_sampled_configurations_agree_on_factorised_patterns():
    # 8 networks; points 0-2 follow bits 0, 1, 2 of the network index, points 3-5 copy them,
    # point 6 is a weak coin. Three picks: one per bit. With n_configurations=3 the third step
    # already samples configurations, yet every sampled configuration gives each candidate its exact score.
    t = np.arange(8)
    bits = [one_hot((t >> bit) & 1) for bit in range(3)]
    weak = np.where((t % 2 == 0)[:, None], [0.6, 0.4], [0.4, 0.6])
    samples = np.stack(bits + bits + [weak], axis=1)
    exact = Q.batchbald_selection(samples, 3, n_configurations=100)
    assert exact.tolist() == [0, 1, 2]
    for seed in range(5):
        np.testing.assert_array_equal(Q.batchbald_selection(samples, 3, n_configurations=3, random_state=seed), exact)
    assert exact_joint_information(samples, [0, 1, 2]) == pytest.approx(3 * math.log(2))


def soft_samples(n_draws=12, n_points=20, n_classes=3, seed=0):
    """Random probability samples around per-point centres, point 5 a copy of point 2."""
    rng = np.random.RandomState(seed)
    centres = rng.dirichlet(np.ones(n_classes), size=n_points)
    concentration = rng.uniform(1, 20, size=n_points)
    samples = np.stack(
        [[rng.dirichlet(c * k) for c, k in zip(centres, concentration, strict=True)] for _ in range(n_draws)]
    )
    samples[:, 5] = samples[:, 2]
    return samples


def test_exact_and_sampled_configurations_agree_on_soft_samples():
    samples = soft_samples()
    n_instances = 7
    exact = Q.batchbald_selection(samples, n_instances, n_configurations=3 ** (n_instances - 1))
    # the exact mode is greedy joint mutual information, by brute-force enumeration of the joint
    batch = []
    for _ in range(n_instances):
        gains = [-np.inf if i in batch else exact_joint_information(samples, batch + [i]) for i in range(20)]
        batch.append(int(np.argmax(gains)))
    assert exact.tolist() == batch
    best = exact_joint_information(samples, batch)
    # 300 configurations: the 7th pick (243 configurations x 3 labels) is scored on sampled ones
    for seed in range(5):
        sampled = Q.batchbald_selection(samples, n_instances, n_configurations=300, random_state=seed)
        assert sampled.tolist() == exact.tolist()
    # 100 configurations: picks 6 and 7 sampled; the batch keeps the exact greedy's information within 2%
    for seed in range(5):
        sampled = Q.batchbald_selection(samples, n_instances, n_configurations=100, random_state=seed)
        assert sampled[:5].tolist() == exact[:5].tolist()
        assert exact_joint_information(samples, sampled.tolist()) >= 0.98 * best


def test_batchbald_samples_configurations_when_the_joint_is_too_large(fitted):
    net, pool = fitted
    # 10 classes: exact joint for 2 picks is 100 configurations; beyond 50 they are sampled
    first = Q.batchbald_sampling(net, pool, 6, n_samples=6, n_configurations=50, random_state=0)
    np.testing.assert_array_equal(
        first, Q.batchbald_sampling(net, pool, 6, n_samples=6, n_configurations=50, random_state=0)
    )
    assert len(set(first.tolist())) == 6


def test_batchbald_on_the_network_matches_selection_on_its_samples(fitted):
    net, pool = fitted
    samples = Q.mc_dropout_proba(net, pool, 8, random_state=2)
    # 3 picks on 10 classes: the joint stays exact (at most 100 configurations), so no randomness besides the masks
    np.testing.assert_array_equal(
        Q.batchbald_sampling(net, pool, 3, n_samples=8, random_state=2), Q.batchbald_selection(samples, 3)
    )


def test_batchbald_candidates_are_the_top_bald_points(fitted):
    net, pool = fitted
    candidates = set(Q.bald_sampling(net, pool, 40, n_samples=6, random_state=0).tolist())
    chosen = Q.batchbald_sampling(net, pool, 10, n_samples=6, max_candidates=40, random_state=0)
    assert set(chosen.tolist()) <= candidates and len(set(chosen.tolist())) == 10
    # fewer candidates than points asked: raised to n_instances
    chosen = Q.batchbald_sampling(net, pool, 12, n_samples=6, max_candidates=5, random_state=0)
    assert len(set(chosen.tolist())) == 12


# --- arguments, data and integration -------------------------------------------------------------


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda n, p: Q.mc_dropout_proba(n, p, n_samples=0), ValueError, "n_samples must be at least 1"),
        (lambda n, p: Q.mc_dropout_proba(n, p, n_samples=2.5), TypeError, "n_samples must be an int"),
        (lambda n, p: Q.mc_dropout_proba(n, p[:0]), ValueError, "empty"),
        (lambda n, p: Q.bald_sampling(n, p, 2, n_samples=1), ValueError, "n_samples must be at least 2"),
        (lambda n, p: Q.bald_sampling(n, p, 2, n_samples=True), TypeError, "n_samples must be an int"),
        (lambda n, p: Q.bald_sampling(n, p, 0), ValueError, "n_instances must be at least 1"),
        (lambda n, p: Q.bald_sampling(n, p, len(p) + 1), ValueError, "larger than the pool"),
        (lambda n, p: Q.batchbald_sampling(n, p, 2, n_samples=0), ValueError, "n_samples must be at least 2"),
        (lambda n, p: Q.batchbald_sampling(n, p, 2, n_configurations=0), ValueError, "n_configurations"),
        (lambda n, p: Q.batchbald_sampling(n, p, 2, n_configurations="many"), TypeError, "n_configurations"),
        (lambda n, p: Q.batchbald_sampling(n, p, 2, max_candidates=0), ValueError, "max_candidates"),
        (lambda n, p: Q.batchbald_sampling(n, p, 2.0), TypeError, "n_instances must be an int"),
        (lambda n, p: Q.batchbald_selection(np.full((2, 3, 2), 0.5), 4), ValueError, "larger than the number"),
        (lambda n, p: Q.batchbald_selection(np.full((2, 3, 2), 0.5), 1, n_configurations=-1), ValueError, "n_conf"),
    ],
)
def test_bad_arguments(fitted, call, error, message):
    net, pool = fitted
    with pytest.raises(error, match=message):
        call(net, pool)


@pytest.mark.parametrize("strategy", [Q.bald_sampling, Q.batchbald_sampling, Q.mc_dropout_proba])
def test_non_finite_pool_unfitted_and_foreign_classifiers(digits, fitted, strategy):
    net, pool = fitted
    bad = pool[:50].copy()
    bad[[3, 17]] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity in 2 of 50 rows: \[3, 17\]"):
        strategy(net, bad, 2)
    with pytest.raises(NotFittedError):
        strategy(dropout_net(), pool, 2)
    from sklearn.linear_model import LogisticRegression

    X, y = digits
    with pytest.raises(TypeError, match="ContinualActiveClassifier"):
        strategy(LogisticRegression(max_iter=50).fit(X[:100], y[:100]), pool, 2)


def test_a_diverged_model_raises(fitted, digits):
    X, y = digits
    net = dropout_net().fit(X[:100], y[:100])
    with torch.no_grad():
        net.module_.head.weight.fill_(float("nan"))
    with pytest.raises(ValueError, match="diverged"):
        Q.bald_sampling(net, X[100:200], 2)
    with pytest.raises(ValueError, match="diverged"):
        Q.mc_dropout_proba(net, X[100:200], 2)


@pytest.mark.parametrize("strategy", [Q.bald_sampling, Q.batchbald_sampling])
def test_simulator_seeds_the_bayesian_strategies(digits, strategy):
    X, y = digits

    def run(seed):
        return ActiveLearningSimulator(
            dropout_net(random_state=None, max_epochs=3),
            strategy,
            initial_size=40,
            query_size=10,
            n_rounds=2,
            random_state=seed,
        ).fit(X[:400], y[:400])

    first = run(0)
    assert len(first.labelled_indices_) == 60 and len(set(first.labelled_indices_.tolist())) == 60
    np.testing.assert_array_equal(first.labelled_indices_, run(0).labelled_indices_)
    assert not np.array_equal(first.labelled_indices_, run(1).labelled_indices_)
