"""The optimizers match torch.optim; penalties match a hand computation and skip biases."""

from __future__ import annotations

import pytest
import torch

from optreg.models import StackedMLP
from optreg.optim import build_optimizer, penalty

REFERENCE = {
    "sgd": lambda p, lr: torch.optim.SGD(p, lr=lr),
    "momentum": lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9),
    "rmsprop": lambda p, lr: torch.optim.RMSprop(p, lr=lr),
    "adam": lambda p, lr: torch.optim.Adam(p, lr=lr),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_optimizer_matches_torch_optim(name):
    torch.manual_seed(0)
    start = torch.randn(3, 5, 4)
    ours = start.clone().requires_grad_()
    ref = start.clone().requires_grad_()
    opt = build_optimizer(name, [ours], lr=0.01, momentum=0.9)
    ref_opt = REFERENCE[name]([ref], 0.01)
    target = torch.randn(3, 5, 4)
    for _ in range(25):
        for p, o in ((ours, opt), (ref, ref_opt)):
            o.zero_grad()
            ((p - target) ** 3).abs().sum().backward()
            o.step()
    assert not torch.equal(ours, start)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-7)


def test_unknown_optimizer_is_an_error():
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'"):
        build_optimizer("adamax", [torch.zeros(1, requires_grad=True)], lr=0.1)


def test_penalties_equal_hand_computation_and_skip_biases():
    model = StackedMLP(3, [2], 2, "relu", seeds=[0, 1])
    with torch.no_grad():
        for b in model.biases:
            b.fill_(100.0)  # biases must not count
    w1, w2 = (w.detach() for w in model.weights)
    for s in range(2):
        l1 = w1[s].abs().sum() + w2[s].abs().sum()
        l2 = (w1[s] ** 2).sum() + (w2[s] ** 2).sum()
        torch.testing.assert_close(penalty(model.weights, "l1", 0.5)[s], 0.5 * l1)
        torch.testing.assert_close(penalty(model.weights, "l2", 0.25)[s], 0.25 * l2)
    assert penalty(model.weights, "none", 1.0) == 0.0


def test_penalty_gradient_reaches_weights_not_biases():
    model = StackedMLP(3, [2], 2, "relu", seeds=[0])
    penalty(model.weights, "l2", 1.0).sum().backward()
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in model.weights)
    assert all(b.grad is None for b in model.biases)
