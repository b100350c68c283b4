"""Weight penalties over stacked weights. They apply to weight tensors only, never to biases:

- `l1`, `l2`: strength * sum |w| and strength * sum w**2 added to the loss
  (`l1` is then a subgradient method, which rarely yields exact zeros);
- `l1_prox`: the proximal step of strength * sum |w| after each update,
  soft-thresholding every weight by lr * strength (exact zeros);
- `wd`: decoupled weight decay, w <- w * (1 - 2 * lr * strength) before each
  update: the shrinkage plain SGD gets from the `l2` penalty, applied outside
  the adaptive scaling (with `adam` this is AdamW, Loshchilov and Hutter).
"""

from __future__ import annotations

import torch

PENALTIES = ("none", "l1", "l1_prox", "l2", "wd")


def per_slice(lr: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """View a per-run learning rate [S] so it broadcasts over a stacked tensor [S, ...]."""
    return lr.view(-1, *([1] * (like.dim() - 1)))


def _check(kind: str) -> None:
    if kind not in PENALTIES:
        raise ValueError(f"unknown penalty {kind!r}; known: {', '.join(PENALTIES)}")


def penalty_hooks(kind: str, strength: float) -> tuple[bool, bool, bool]:
    """Which of `penalty`, `before_step` and `after_step` act for this penalty.

    The training loop calls only those, so a run without a penalty pays nothing for
    penalties per step.
    """
    _check(kind)
    active = bool(strength)
    return (
        active and kind in ("l1", "l2"),
        active and kind == "wd",
        active and kind == "l1_prox",
    )


def penalty(weights, kind: str, strength: float) -> torch.Tensor | float:
    """Per-run loss term [S] over stacked weight tensors [S, ...] (0 for step-wise penalties)."""
    _check(kind)
    if kind == "l1" and strength:
        return strength * sum(w.abs().flatten(1).sum(1) for w in weights)
    if kind == "l2" and strength:
        return strength * sum(w.square().flatten(1).sum(1) for w in weights)
    return 0.0


@torch.no_grad()
def add_penalty_gradients(weights, kind: str, strength: float) -> None:
    """Add the gradient of `penalty` to each weight's `.grad`, as autograd would: strength *
    sgn(w) for `l1`, 2 * strength * w for `l2` (for models whose backward is by hand)."""
    _check(kind)
    if kind == "l1" and strength:
        for w in weights:
            w.grad.add_(w.sgn() * strength)
    elif kind == "l2" and strength:
        for w in weights:
            w.grad.add_(w * 2 * strength)


@torch.no_grad()
def before_step(weights, kind: str, strength: float, lr: torch.Tensor) -> None:
    """Decoupled weight decay (`wd`): shrink weights by 2 * lr * strength before the update."""
    _check(kind)
    if kind == "wd" and strength:
        for w in weights:
            w.mul_(1 - 2 * strength * per_slice(lr, w))


@torch.no_grad()
def after_step(weights, kind: str, strength: float, lr: torch.Tensor) -> None:
    """Proximal L1 (`l1_prox`): soft-threshold weights by lr * strength after the update."""
    _check(kind)
    if kind == "l1_prox" and strength:
        for w in weights:
            threshold = strength * per_slice(lr, w)
            w.copy_(w.sign() * (w.abs() - threshold).clamp_(min=0))
