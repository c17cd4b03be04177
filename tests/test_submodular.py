import itertools
import math

import pytest
import torch

from skcal.submodular import (
    ConcaveOverModular,
    FacilityLocation,
    SumOfFunctions,
    gaussian_similarity,
    greedy,
    lazy_greedy,
    maximize,
)


def random_objective(seed, n=12, uncertainty_weight=1.0):
    generator = torch.Generator().manual_seed(seed)
    points = torch.randn(n, 3, generator=generator)
    weights = torch.rand(n, generator=generator)
    return SumOfFunctions(
        FacilityLocation(gaussian_similarity(points, points, sigma=1.0)),
        ConcaveOverModular(weights, uncertainty_weight),
    )


def test_values_and_gains_by_hand():
    similarity = torch.tensor([[1.0, 0.2, 0.0], [0.3, 1.0, 0.5], [0.0, 0.4, 1.0]])
    location = FacilityLocation(similarity)
    assert location.value(torch.tensor([1])) == pytest.approx(0.2 + 1.0 + 0.4)
    assert location.value(torch.tensor([0, 2])) == pytest.approx(1.0 + 0.5 + 1.0)
    state = location.add(location.empty_state(), 1)
    # gain of 0 given {1}: max(0,1-.2) + max(0,.3-1) + max(0,0-.4) = 0.8
    assert location.gains(state, torch.tensor([0, 2])).tolist() == pytest.approx([0.8, 0.6])
    concave = ConcaveOverModular(torch.tensor([0.5, 1.0, 2.0]), scale=2.0)
    assert concave.value(torch.tensor([0, 2])) == pytest.approx(2 * math.log(1 + 2.5))
    state = concave.add(concave.empty_state(), 1)
    assert concave.gains(state, torch.tensor([2])).item() == pytest.approx(2 * (math.log(4) - math.log(2)))


def test_gaussian_similarity_by_hand():
    w = gaussian_similarity(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0], [0.0, 0.0]]), sigma=5.0)
    assert w.tolist()[0] == pytest.approx([math.exp(-25 / 50), 1.0])


@pytest.mark.parametrize("seed", range(20))
def test_lazy_greedy_equals_greedy(seed):
    objective = random_objective(seed, n=40)
    assert lazy_greedy(objective, 15).tolist() == greedy(objective, 15).tolist()


@pytest.mark.parametrize("seed", range(10))
def test_greedy_reaches_the_guarantee_against_brute_force(seed):
    objective = random_objective(seed, n=10, uncertainty_weight=3.0)
    k = 4
    optimum = max(objective.value(torch.tensor(subset)) for subset in itertools.combinations(range(10), k))
    chosen = lazy_greedy(objective, k)
    assert len(set(chosen.tolist())) == k
    assert objective.value(chosen) >= (1 - 1 / math.e) * optimum


def test_lazy_greedy_evaluates_fewer_gains():
    calls = []

    class Counting(FacilityLocation):
        def gains(self, state, candidates):
            calls.append(self.n_candidates if candidates is None else len(candidates))
            return super().gains(state, candidates)

    points = torch.randn(500, 4, generator=torch.Generator().manual_seed(0))
    objective = Counting(gaussian_similarity(points, points, sigma=1.0))
    lazy_greedy(objective, 20)
    lazy_total = sum(calls)
    calls.clear()
    greedy(objective, 20)
    assert lazy_total < sum(calls) / 3


def test_selection_caps_at_the_number_of_candidates_and_rejects_bad_input():
    objective = random_objective(0, n=5)
    assert sorted(lazy_greedy(objective, 50).tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="negative"):
        lazy_greedy(objective, -1)
    with pytest.raises(ValueError, match="non-negative"):
        FacilityLocation(torch.tensor([[-1.0]]))
    with pytest.raises(ValueError, match="different numbers"):
        SumOfFunctions(FacilityLocation(torch.ones(2, 2)), ConcaveOverModular(torch.ones(3)))
    with pytest.raises(ValueError, match="sigma"):
        gaussian_similarity(torch.ones(1, 1), torch.ones(1, 1), sigma=0)


def test_maximize_dispatches_to_equal_results():
    objective = random_objective(3, n=30)
    expected = greedy(objective, 8).tolist()
    for method in ("auto", "greedy", "lazy"):
        assert maximize(objective, 8, method).tolist() == expected
    with pytest.raises(ValueError, match="Unknown greedy method"):
        maximize(objective, 8, "fast")
