"""Optimizers and weight penalties.

The four optimizers are written out here rather than taken from `torch.optim`:
constructing any `torch.optim.Optimizer` imports `torch._dynamo`, which costs
about 1.1 s per process, more than training one digits run. Their update rules
follow `torch.optim.SGD`, `RMSprop` and `Adam` with default arguments exactly,
and tests/test_optim.py checks them against those classes.

Every rule acts elementwise, so one optimizer over stacked parameters equals
one optimizer per seed. Penalties apply to weight matrices only, never to
biases, and are added to the data loss of each seed.
"""

from __future__ import annotations

import torch

OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
PENALTIES = ("none", "l1", "l2")


class Optimizer:
    """An elementwise optimizer over a list of stacked parameters."""

    def __init__(self, params, lr: float):
        self.params = list(params)
        self.lr = lr
        self.state: list[dict[str, torch.Tensor]] = [{} for _ in self.params]
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        for p, state in zip(self.params, self.state, strict=True):
            if p.grad is not None:
                self.update(p, p.grad, state)

    def update(self, p: torch.Tensor, grad: torch.Tensor, state: dict) -> None:
        raise NotImplementedError

    def keep(self, mask: torch.Tensor, params) -> None:
        """Continue with `params` (the model's after it dropped the slices where `mask` is
        False) and drop the same slices from every state tensor."""
        self.params = list(params)
        for state in self.state:
            for key, value in state.items():
                state[key] = value[mask]


class SGD(Optimizer):
    """p -= lr * g, or heavy-ball momentum: b = m * b + g; p -= lr * b (torch.optim.SGD)."""

    def __init__(self, params, lr: float, momentum: float = 0.0):
        super().__init__(params, lr)
        self.momentum = momentum

    def update(self, p, grad, state):
        if self.momentum:
            if "buffer" in state:
                grad = state["buffer"].mul_(self.momentum).add_(grad)
            else:
                grad = state["buffer"] = grad.clone()
        p.add_(grad, alpha=-self.lr)


class RMSprop(Optimizer):
    """v = a * v + (1 - a) * g^2; p -= lr * g / (sqrt(v) + eps) (torch.optim.RMSprop defaults)."""

    def __init__(self, params, lr: float, alpha: float = 0.99, eps: float = 1e-8):
        super().__init__(params, lr)
        self.alpha, self.eps = alpha, eps

    def update(self, p, grad, state):
        v = state.setdefault("square_avg", torch.zeros_like(p))
        v.mul_(self.alpha).addcmul_(grad, grad, value=1 - self.alpha)
        p.addcdiv_(grad, v.sqrt().add_(self.eps), value=-self.lr)


class Adam(Optimizer):
    """Adam with bias correction (torch.optim.Adam defaults: betas 0.9, 0.999; eps 1e-8)."""

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr)
        self.beta1, self.beta2 = betas
        self.eps = eps

    def update(self, p, grad, state):
        m = state.setdefault("exp_avg", torch.zeros_like(p))
        v = state.setdefault("exp_avg_sq", torch.zeros_like(p))
        m.lerp_(grad, 1 - self.beta1)
        v.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        correction1 = 1 - self.beta1**self.steps
        correction2 = 1 - self.beta2**self.steps
        denom = (v.sqrt() / correction2**0.5).add_(self.eps)
        p.addcdiv_(m, denom, value=-self.lr / correction1)


def build_optimizer(name: str, params, lr: float, momentum: float = 0.9) -> Optimizer:
    """`sgd` (no momentum), `momentum` (SGD with heavy-ball momentum), `rmsprop`, `adam`."""
    if name == "sgd":
        return SGD(params, lr)
    if name == "momentum":
        return SGD(params, lr, momentum=momentum)
    if name == "rmsprop":
        return RMSprop(params, lr)
    if name == "adam":
        return Adam(params, lr)
    raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")


def penalty(weights, kind: str, strength: float) -> torch.Tensor | float:
    """Per-seed penalty [S] over stacked weight matrices [S, in, out].

    l1: strength * sum |w|;  l2: strength * sum w**2 (the Keras convention).
    """
    if kind == "none" or strength == 0:
        return 0.0
    if kind == "l1":
        return strength * sum(w.abs().sum(dim=(1, 2)) for w in weights)
    if kind == "l2":
        return strength * sum(w.square().sum(dim=(1, 2)) for w in weights)
    raise ValueError(f"unknown penalty {kind!r}; known: {', '.join(PENALTIES)}")
