import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import TokenBag, make_net
from sklearn.exceptions import NotFittedError

from skcal import ContinualActiveClassifier
from skcal import query as Q
from skcal.modal import ContinualActiveLearner

ALL = [
    Q.entropy_sampling,
    Q.margin_sampling,
    Q.least_confidence_sampling,
    Q.random_sampling,
    Q.fass_sampling,
    Q.coreset_sampling,
    Q.badge_sampling,
]


def identity_net(X_labelled, y_labelled, n_classes=3):
    """A fitted net whose logits are its inputs (weight = I, no bias): probabilities are constructed."""
    net = ContinualActiveClassifier(
        torch.nn.Linear,
        module__in_features=n_classes,
        module__out_features=n_classes,
        module__bias=False,
        max_epochs=0,
        verbose=0,
        random_state=0,
        classes=np.arange(n_classes),
    ).fit(np.asarray(X_labelled, dtype=np.float32), y_labelled)
    with torch.no_grad():
        net.module_.weight.copy_(torch.eye(n_classes))
    return net


@pytest.fixture
def constructed():
    net = identity_net([[4, 0, 0], [0, 4, 0]], [0, 1])
    pool = np.array(
        [
            [9, 0, 0],  # confident
            [5, 5, 0],  # two classes tied: margin 0
            [1, 1, 1],  # uniform: maximal entropy
            [3, 1, 0],
        ],
        dtype=np.float32,
    )
    return net, pool


def test_uncertainty_strategies_on_constructed_probabilities(constructed):
    net, pool = constructed
    assert Q.entropy_sampling(net, pool, 1).tolist() == [2]
    assert Q.least_confidence_sampling(net, pool, 1).tolist() == [2]
    # margin: the tied and the uniform rows both have p1 - p2 = 0; ties go to the lower index
    assert Q.margin_sampling(net, pool, 2).tolist() == [1, 2]
    assert Q.entropy_sampling(net, pool, 4)[-1] == 0  # the confident row comes last


def test_margin_scores_by_hand(constructed):
    net, pool = constructed
    probabilities = torch.softmax(torch.as_tensor(pool), dim=1)
    top = probabilities.topk(2).values
    expected = np.argsort(-(1 - (top[:, 0] - top[:, 1])).numpy(), kind="stable")
    assert Q.margin_sampling(net, pool, 4).tolist() == expected.tolist()


def test_coreset_picks_the_farthest_point_first():
    # embeddings are the inputs (the input of the only Linear layer)
    net = identity_net([[0, 0, 0], [1, 0, 0]], [0, 1])
    pool = np.array([[0, 1, 0], [10, 0, 0], [0, 0, 3], [9, 0, 1]], dtype=np.float32)
    chosen = Q.coreset_sampling(net, pool, 2)
    assert chosen[0] == 1  # 9 away from (1, 0, 0)
    assert chosen[1] == 2  # then (0, 0, 3): farther from the labelled points and (10, 0, 0) than (9, 0, 1)


def test_fass_stays_in_the_uncertain_candidates_without_duplicates(digits):
    X, y = digits
    net = make_net(max_epochs=10).fit(X[:100], y[:100])
    pool = X[100:900]
    chosen = Q.fass_sampling(net, pool, 20, candidate_factor=3)
    candidates = set(Q.entropy_sampling(net, pool, 60).tolist())
    assert len(set(chosen.tolist())) == 20 and set(chosen.tolist()) <= candidates
    with pytest.raises(ValueError, match="candidate_factor"):
        Q.fass_sampling(net, pool, 5, candidate_factor=0.5)


def test_badge_starts_at_the_largest_gradient_and_is_seeded(digits):
    X, y = digits
    net = make_net(max_epochs=10).fit(X[:100], y[:100])
    pool = X[100:700]
    probabilities, z = Q.pool_outputs(net, pool, embeddings=True)
    residual = probabilities.clone()
    residual[torch.arange(len(pool)), probabilities.argmax(1)] -= 1
    gradients = torch.einsum("nk,nd->nkd", residual, z).flatten(1)  # explicit embeddings, small pool
    first = Q.badge_sampling(net, pool, 15, random_state=0)
    assert first[0] == int(gradients.norm(dim=1).argmax())
    assert len(set(first.tolist())) == 15
    np.testing.assert_array_equal(first, Q.badge_sampling(net, pool, 15, random_state=0))
    assert not np.array_equal(first, Q.badge_sampling(net, pool, 15, random_state=1))


def test_glister_first_pick_maximises_the_autograd_taylor_gain(digits):
    X, y = digits
    net = make_net(max_epochs=10).fit(X[:100], y[:100])
    pool, X_val, y_val = X[100:400], X[1500:1600], y[1500:1600]
    chosen = Q.glister_sampling(net, pool, 5, X_val=X_val, y_val=y_val)
    assert len(set(chosen.tolist())) == 5

    layer = net.module_.out
    weight = layer.weight.detach().clone().requires_grad_()
    bias = layer.bias.detach().clone().requires_grad_()
    net.module_.eval()
    with torch.no_grad():
        z_pool = torch.relu(net.module_.hidden(torch.from_numpy(pool)))
        z_val = torch.relu(net.module_.hidden(torch.from_numpy(X_val)))
    val_ll = -torch.nn.functional.cross_entropy(z_val @ weight.T + bias, torch.from_numpy(y_val), reduction="sum")
    grad_val = torch.autograd.grad(val_ll, (weight, bias))
    gains = []
    for z in z_pool:
        logits = z @ weight.T + bias
        log_likelihood = torch.log_softmax(logits, dim=0)[logits.argmax()]
        grad_x = torch.autograd.grad(log_likelihood, (weight, bias))
        gains.append(sum((gx * gv).sum() for gx, gv in zip(grad_x, grad_val, strict=True)).item())
    assert chosen[0] == int(np.argmax(gains))


def test_glister_needs_a_validation_set(digits):
    X, y = digits
    net = make_net(max_epochs=2).fit(X[:50], y[:50])
    with pytest.raises(ValueError, match="X_val and y_val"):
        Q.glister_sampling(net, X[50:100], 3)


@pytest.mark.parametrize("strategy", ALL)
@pytest.mark.parametrize("container", ["numpy", "torch", "sparse"])
def test_pool_containers_give_the_same_selection(digits, strategy, container):
    X, y = digits
    net = make_net(max_epochs=5).fit(X[:100], y[:100])
    pool = X[100:400]
    kwargs = {"random_state": 0} if strategy in (Q.random_sampling, Q.badge_sampling) else {}
    expected = strategy(net, pool, 7, **kwargs)
    converted = {"numpy": pool, "torch": torch.from_numpy(pool), "sparse": sp.csr_matrix(pool)}[container]
    np.testing.assert_array_equal(strategy(net, converted, 7, **kwargs), expected)


def test_dict_pool():
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 50, size=(80, 6))
    X = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    net = make_net(module=TokenBag, max_epochs=3).fit({k: v[:40] for k, v in X.items()}, ids[:40, 0] % 3)
    pool = {key: value[40:] for key, value in X.items()}
    for strategy in (Q.entropy_sampling, Q.coreset_sampling, Q.badge_sampling):
        chosen = strategy(net, pool, 5)
        assert len(set(chosen.tolist())) == 5 and chosen.max() < 40


@pytest.mark.parametrize("strategy", [Q.entropy_sampling, Q.margin_sampling, Q.badge_sampling, Q.coreset_sampling])
def test_through_modal_and_our_learner(digits, strategy):
    from modAL.models import ActiveLearner

    X, y = digits
    modal = ActiveLearner(make_net(max_epochs=3), strategy, X_training=X[:60], y_training=y[:60])
    ours = ContinualActiveLearner(make_net(max_epochs=3), strategy, X_training=X[:60], y_training=y[:60])
    seeded = {"random_state": 0} if strategy is Q.badge_sampling else {}
    for learner in (modal, ours):
        indices, instances = learner.query(X[60:500], n_instances=5, **seeded)
        np.testing.assert_array_equal(instances, X[60:500][indices])
    np.testing.assert_array_equal(
        modal.query(X[60:500], n_instances=5, **seeded)[0], ours.query(X[60:500], n_instances=5, **seeded)[0]
    )


def test_uncertainty_strategies_accept_any_sklearn_classifier(digits):
    from sklearn.linear_model import LogisticRegression

    X, y = digits
    model = LogisticRegression(max_iter=200).fit(X[:200], y[:200])
    chosen = Q.entropy_sampling(model, X[200:600], 10)
    probabilities = model.predict_proba(X[200:600])
    scores = -(probabilities * np.log(probabilities)).sum(1)
    assert set(chosen) == set(np.argsort(-scores)[:10])
    with pytest.raises(NotFittedError):
        Q.entropy_sampling(LogisticRegression(), X[:10], 1)


@pytest.mark.parametrize("strategy", ALL)
def test_bad_requests(digits, strategy):
    X, y = digits
    net = make_net(max_epochs=1).fit(X[:30], y[:30])
    with pytest.raises(ValueError, match="larger than the pool"):
        strategy(net, X[30:40], 11)
    for bad in (0, -2):
        with pytest.raises(ValueError, match="at least 1"):
            strategy(net, X[30:40], bad)
    with pytest.raises(TypeError, match="must be an int"):
        strategy(net, X[30:40], 2.5)
    with pytest.raises(ValueError, match="pool is empty"):
        strategy(net, X[:0], 1)


@pytest.mark.parametrize("strategy", [s for s in ALL if s is not Q.random_sampling])
def test_unfitted_classifier(digits, strategy):
    with pytest.raises(NotFittedError, match="not fitted"):
        strategy(make_net(), digits[0][:20], 2)


@pytest.mark.parametrize("strategy", [Q.fass_sampling, Q.coreset_sampling, Q.badge_sampling])
def test_module_without_an_embedding_hook(digits, strategy):
    class Slice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(1))

        def forward(self, X):
            return X[:, :10] * self.scale

    X, y = digits
    net = make_net(module=Slice, max_epochs=1).fit(X[:30], y[:30])
    with pytest.raises(TypeError, match="add a method `embed"):
        strategy(net, X[30:60], 3)


def test_simulator_with_our_strategies(digits):
    from skcal.simulation import ActiveLearningSimulator

    X, y = digits
    for strategy in (Q.margin_sampling, Q.coreset_sampling, Q.badge_sampling):
        sim = ActiveLearningSimulator(
            make_net(random_state=None), strategy, initial_size=30, query_size=10, n_rounds=2, random_state=0
        ).fit(X[:300], y[:300])
        assert len(np.unique(sim.labelled_indices_)) == 50


# -- non-finite pools and the size of every selection (issue 11) ----------------------------------------------------

EVERY = [*ALL, Q.glister_sampling]


@pytest.fixture(scope="module")
def small_net(digits):
    X, y = digits
    return make_net(max_epochs=2).fit(X[:60], y[:60])


def query_kwargs(strategy, digits):
    """The extra arguments a strategy needs: GLISTER's validation set, a seed for the random ones."""
    X, y = digits
    if strategy is Q.glister_sampling:
        return {"X_val": X[1500:1540], "y_val": y[1500:1540]}
    if strategy in (Q.random_sampling, Q.badge_sampling):
        return {"random_state": 0}
    return {}


def as_container(pool, container):
    return {"numpy": pool, "torch": torch.from_numpy(pool), "sparse": sp.csr_matrix(pool)}[container]


@pytest.mark.parametrize("strategy", EVERY)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("container", ["numpy", "torch", "sparse"])
def test_non_finite_pool_is_rejected_naming_the_rows(digits, small_net, strategy, bad, container):
    X, _ = digits
    pool = X[100:160].copy()
    pool[[7, 42], 5] = bad
    with pytest.raises(ValueError, match=r"X_pool contains NaN or infinity.*\[7, 42\]"):
        strategy(small_net, as_container(pool, container), 3, **query_kwargs(strategy, digits))


@pytest.mark.parametrize("strategy", EVERY)
def test_half_nan_pool_is_rejected(digits, small_net, strategy):
    X, _ = digits
    pool = X[100:140].copy()
    pool[::2] = np.nan  # before the fix the uncertainty strategies returned no index at all
    with pytest.raises(ValueError, match=r"NaN or infinity in 20 of 40 rows.*\[0, 2, 4, 6, 8"):
        strategy(small_net, pool, 5, **query_kwargs(strategy, digits))


def test_non_finite_values_a_float32_pool_cannot_hold_are_rejected(digits, small_net):
    X, _ = digits
    pool = X[100:130].astype(np.float64)
    pool[11, 0] = 1e300  # finite in float64, infinity once stored as float32 (as fit stores it)
    with pytest.raises(ValueError, match=r"NaN or infinity.*\[11\]"):
        Q.entropy_sampling(small_net, pool, 2)
    with pytest.raises(ValueError, match="NaN or infinity"):
        small_net.fit(pool, np.zeros(len(pool), dtype=int))  # the same rows fit refuses


@pytest.mark.parametrize("strategy", [Q.entropy_sampling, Q.random_sampling, Q.coreset_sampling, Q.badge_sampling])
def test_non_finite_dict_pool_is_rejected_naming_the_key_and_rows(strategy):
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 50, size=(60, 6))
    X = {"input_ids": ids, "attention_mask": np.ones(ids.shape, dtype=np.float32)}
    net = make_net(module=TokenBag, max_epochs=1).fit({k: v[:30] for k, v in X.items()}, ids[:30, 0] % 3)
    pool = {key: value[30:].copy() for key, value in X.items()}
    pool["attention_mask"][4, 2] = np.nan
    with pytest.raises(ValueError, match=r"X_pool\['attention_mask'\] contains NaN or infinity.*\[4\]"):
        strategy(net, pool, 3)
    pool["attention_mask"][4, 2] = 1.0  # integer ids and a finite mask: accepted
    assert len(set(strategy(net, pool, 3).tolist())) == 3


def test_glister_validation_set_and_coreset_labelled_set_are_checked(digits, small_net):
    X, y = digits
    X_val = X[1500:1540].copy()
    X_val[13, 0] = np.inf
    with pytest.raises(ValueError, match=r"X_val contains NaN or infinity.*\[13\]"):
        Q.glister_sampling(small_net, X[100:160], 3, X_val=X_val, y_val=y[1500:1540])
    X_labelled = X[:60].copy()
    X_labelled[21, 3] = np.nan
    with pytest.raises(ValueError, match=r"X_labelled contains NaN or infinity.*\[21\]"):
        Q.coreset_sampling(small_net, X[100:160], 3, X_labelled=X_labelled)


@pytest.mark.parametrize("strategy", EVERY)
def test_pool_with_a_different_feature_shape_is_rejected(digits, small_net, strategy):
    X, _ = digits
    with pytest.raises(ValueError, match="expecting 64 features"):
        strategy(small_net, X[100:160, :32], 3, **query_kwargs(strategy, digits))


@pytest.mark.parametrize("strategy", EVERY)
def test_every_selection_is_exactly_n_distinct_pool_rows(digits, small_net, strategy):
    X, y = digits
    # ties everywhere: each pool row appears three times, and some are copies of labelled points
    pool = np.concatenate([np.repeat(X[100:110], 3, axis=0), X[:5]])
    for n_instances in (1, 2, 7, 16, len(pool)):
        chosen = strategy(small_net, pool, n_instances, **query_kwargs(strategy, digits))
        assert isinstance(chosen, np.ndarray) and chosen.dtype.kind == "i"
        assert len(chosen) == n_instances and len(np.unique(chosen)) == n_instances
        assert chosen.min() >= 0 and chosen.max() < len(pool)


@pytest.mark.parametrize("strategy", [s for s in EVERY if s is not Q.random_sampling])
def test_a_diverged_model_raises_instead_of_returning_fewer_rows(digits, strategy):
    X, y = digits
    net = make_net(max_epochs=1).fit(X[:60], y[:60])
    with torch.no_grad():
        net.module_.hidden.weight[0, 0] = float("nan")  # every embedding and every logit row turns NaN
    with pytest.raises(ValueError, match="NaN or infinity.*diverged"):
        strategy(net, X[100:160], 4, **query_kwargs(strategy, digits))


def test_third_party_classifiers_keep_their_own_input_rules(digits):
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = digits
    model = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X[:300], y[:300])
    pool = X[300:400].copy()
    pool[[3, 9], 0] = np.nan  # this model predicts on missing values
    for strategy in (Q.entropy_sampling, Q.margin_sampling, Q.least_confidence_sampling):
        chosen = strategy(model, pool, 10)
        assert len(np.unique(chosen)) == 10
