"""CAL-MIR's virtual step: the optimizer's own step on the current batch, previewed without changing anything."""

import copy

import numpy as np
import pytest
import torch
from conftest import MLP, make_net

from skcal.replay.mir import previewed_step


def gradients_of(module, X, y):
    weights = {name: value for name, value in module.named_parameters() if value.requires_grad}
    loss = torch.nn.functional.cross_entropy(module(X), y)
    return weights, dict(zip(weights, torch.autograd.grad(loss, list(weights.values())), strict=True))


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda parameters: torch.optim.Adam(parameters, lr=1e-3),
        lambda parameters: torch.optim.SGD(parameters, lr=0.05, momentum=0.9, weight_decay=5e-4),
        lambda parameters: torch.optim.AdamW(parameters, lr=3e-3),
    ],
)
def test_the_preview_is_the_step_the_optimizer_takes_and_changes_nothing(make_optimizer):
    torch.manual_seed(0)
    module = MLP(n_in=8, n_hidden=16, n_out=3)
    optimizer = make_optimizer(module.parameters())
    X, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    for _ in range(3):  # build up momentum / Adam moments
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(module(X), y).backward()
        optimizer.step()
    optimizer.zero_grad()
    weights, gradients = gradients_of(module, X[:16], y[:16])
    state_before = copy.deepcopy(optimizer.state_dict())
    weights_before = {name: value.detach().clone() for name, value in weights.items()}
    with torch.no_grad():
        preview = previewed_step(optimizer, module, weights, gradients)
    for name, value in weights.items():  # nothing real moved
        assert torch.equal(value, weights_before[name])
    for key, value in optimizer.state_dict()["state"].items():
        for field, tensor in value.items():
            assert torch.equal(torch.as_tensor(tensor), torch.as_tensor(state_before["state"][key][field]))
    for name, parameter in module.named_parameters():
        parameter.grad = gradients[name].clone()
    optimizer.step()  # the real step on the same gradients
    for name, parameter in module.named_parameters():
        assert torch.allclose(preview[name], parameter.detach(), atol=1e-7), name


def test_with_plain_sgd_the_preview_is_the_mir_papers_step():
    torch.manual_seed(1)
    module = MLP(n_in=8, n_hidden=16, n_out=3)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    weights, gradients = gradients_of(module, torch.randn(16, 8), torch.randint(0, 3, (16,)))
    with torch.no_grad():
        preview = previewed_step(optimizer, module, weights, gradients)
    for name, value in weights.items():
        assert torch.allclose(preview[name], value - 0.1 * gradients[name], atol=1e-7)


def test_mir_rounds_leave_the_optimizer_and_weights_as_an_ordinary_step_would(digits):
    X, y = digits
    params = dict(replay="mir", replay__n_candidates=80, replay_size=16, optimizer=torch.optim.Adam, lr=1e-3)
    net = make_net(**params).fit(X[:100], y[:100]).partial_fit(X[100:200], y[100:200])
    again = make_net(**params).fit(X[:100], y[:100]).partial_fit(X[100:200], y[100:200])
    for key, value in net.module_.state_dict().items():
        assert torch.equal(value, again.module_.state_dict()[key])
    assert np.isfinite(net.score(X[1000:], y[1000:]))
    sgd = make_net(**{**params, "replay__virtual_lr": 1e-3}).fit(X[:100], y[:100]).partial_fit(X[100:200], y[100:200])
    assert not torch.equal(sgd.module_.state_dict()["out.weight"], net.module_.state_dict()["out.weight"])

