"""The optimizers match torch.optim; penalties match a hand computation and skip biases."""

from __future__ import annotations

import pytest
import torch
from conftest import settings

from optreg.training.models import StackedMLP
from optreg.training.optimizers import build_optimizer
from optreg.training.penalties import after_step, before_step, penalty, penalty_hooks

REFERENCE = {
    "sgd": lambda p, lr: torch.optim.SGD(p, lr=lr),
    "momentum": lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9),
    "rmsprop": lambda p, lr: torch.optim.RMSprop(p, lr=lr),
    "adam": lambda p, lr: torch.optim.Adam(p, lr=lr),
}


@pytest.mark.parametrize("stack", [1, 3])
@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_optimizer_matches_torch_optim(name, stack):
    torch.manual_seed(0)
    starts = [torch.randn(stack, 5, 4), torch.randn(stack, 1, 4)]  # a weight and a bias
    targets = [torch.randn_like(t) for t in starts]
    ours = [t.clone().requires_grad_() for t in starts]
    ref = [t.clone().requires_grad_() for t in starts]
    opt = build_optimizer(settings(optimizer=name), ours, 0.01)
    ref_opt = REFERENCE[name](ref, 0.01)
    for _ in range(25):
        for params, o in ((ours, opt), (ref, ref_opt)):
            o.zero_grad()
            sum(((p - t) ** 3).abs().sum() for p, t in zip(params, targets, strict=True)).backward()
            o.step()
    for mine, theirs, start in zip(ours, ref, starts, strict=True):
        assert not torch.equal(mine, start)
        torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_optimizer_matches_torch_optim_with_strided_gradients(name):
    """A gradient autograd hands over transposed (as a product's can be) is read as the
    values it holds, not in memory order (torch's fused Adam kernel would misread it)."""
    torch.manual_seed(1)
    start = torch.randn(3, 4, 5)
    ours, ref = start.clone().requires_grad_(), start.clone().requires_grad_()
    opt, ref_opt = (
        build_optimizer(settings(optimizer=name), [ours], 0.01),
        REFERENCE[name]([ref], 0.01),
    )
    for _ in range(5):
        grad = torch.randn(3, 5, 4).transpose(1, 2)
        assert not grad.is_contiguous()
        ours.grad, ref.grad = grad, grad.clone()
        opt.step()
        ref_opt.step()
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-7)


def test_adam_with_decoupled_decay_is_adamw():
    torch.manual_seed(3)
    start, target = torch.randn(1, 4, 3), torch.randn(1, 4, 3)
    ours, ref = start.clone().requires_grad_(), start.clone().requires_grad_()
    opt = build_optimizer(settings(optimizer="adam"), [ours], 0.01)
    ref_opt = torch.optim.AdamW([ref], lr=0.01, weight_decay=2 * 0.05)
    for _ in range(20):
        for p, o in ((ours, opt), (ref, ref_opt)):
            o.zero_grad()
            ((p - target) ** 2).sum().backward()
            if o is opt:
                before_step([p], "wd", 0.05, opt.lr)
            o.step()
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-7)


def test_a_step_without_gradients_names_the_parameters():
    used, unused = torch.ones(2, 3, requires_grad=True), torch.ones(2, 3, requires_grad=True)
    opt = build_optimizer(settings(optimizer="sgd"), [used, unused], 0.1)
    used.sum().backward()
    with pytest.raises(RuntimeError, match=r"parameters \[1\] have no gradient"):
        opt.step()


@pytest.mark.parametrize(
    ("kind", "strength", "expected"),
    [
        ("none", 0.1, (False, False, False)),
        ("l1", 0.1, (True, False, False)),
        ("l2", 0.1, (True, False, False)),
        ("wd", 0.1, (False, True, False)),
        ("l1_prox", 0.1, (False, False, True)),
        ("l2", 0.0, (False, False, False)),
    ],
)
def test_penalty_hooks_name_the_steps_that_act(kind, strength, expected):
    assert penalty_hooks(kind, strength) == expected
    with pytest.raises(ValueError, match="unknown penalty 'l3'"):
        penalty_hooks("l3", 0.1)


def test_unknown_optimizer_is_an_error():
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'"):
        build_optimizer(settings(optimizer="adamax"), [torch.zeros(1, requires_grad=True)], 0.1)


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


def test_per_run_rates_equal_separate_optimizers():
    torch.manual_seed(1)
    start = torch.randn(3, 4, 2)
    target = torch.randn(3, 4, 2)
    together = start.clone().requires_grad_()
    opt = build_optimizer(settings(optimizer="adam"), [together], [0.1, 0.01, 0.001])
    for _ in range(10):
        opt.zero_grad()
        ((together - target) ** 2).sum().backward()
        opt.step()
    for s, lr in enumerate([0.1, 0.01, 0.001]):
        alone = start[s : s + 1].clone().requires_grad_()
        ref = torch.optim.Adam([alone], lr=lr)
        for _ in range(10):
            ref.zero_grad()
            ((alone - target[s : s + 1]) ** 2).sum().backward()
            ref.step()
        torch.testing.assert_close(together[s : s + 1], alone, rtol=1e-6, atol=1e-7)


def test_proximal_l1_zeroes_exactly_the_weights_below_the_threshold():
    w = torch.tensor([[[0.5, -0.5, 0.02, -0.02, 0.0, 0.0301]]])
    lr = torch.tensor([0.1])
    after_step([w], "l1_prox", 0.3, lr)  # threshold 0.1 * 0.3 = 0.03
    expected = torch.tensor([[[0.47, -0.47, 0.0, 0.0, 0.0, 0.0001]]])
    torch.testing.assert_close(w, expected)
    assert (w == 0).sum() == 3


def test_step_penalties_leave_biases_and_other_kinds_alone():
    model = StackedMLP(3, [2], 2, "relu", seeds=[0, 1])
    before = [p.detach().clone() for p in model.parameters()]
    lr = torch.tensor([0.1, 0.2])
    for kind in ("none", "l1", "l2"):
        before_step(model.weights, kind, 0.5, lr)
        after_step(model.weights, kind, 0.5, lr)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    after_step(model.weights, "l1_prox", 0.5, lr)
    assert all(torch.equal(a, b.detach()) for a, b in zip(before[2:], model.biases, strict=True))


def test_decoupled_decay_equals_l2_penalty_under_plain_sgd():
    torch.manual_seed(2)
    start, target = torch.randn(2, 3, 3), torch.randn(2, 3, 3)
    lr = torch.tensor([0.05, 0.1])

    def train(kind):
        w = start.clone().requires_grad_()
        opt = build_optimizer(settings(optimizer="sgd"), [w], lr)
        for _ in range(20):
            opt.zero_grad()
            loss = ((w - target) ** 2).flatten(1).sum(1) + penalty([w], kind, 0.3)
            loss.sum().backward()
            before_step([w], kind, 0.3, opt.lr)
            opt.step()
        return w.detach()

    torch.testing.assert_close(train("wd"), train("l2"), rtol=1e-5, atol=1e-6)
