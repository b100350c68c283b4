"""User optimizers in training: a `torch.optim` optimizer as one run's optimizer, and the
trial every such optimizer passes before any job (see `optreg.extensions`).

Third-party optimizers are used the way their authors document them:

- one that needs a **closure** (`torch.optim.LBFGS`, SAM-style two-pass rules) gets one that
  recomputes the loss and gradients on the same batch (`TorchOptimizer.needs_closure`);
- one with **train and eval modes** (schedule-free) is put in train mode before training
  steps and in eval mode before every validation and test evaluation and the final weights
  (`TorchOptimizer.train`, `eval`);
- its **whole state** (per-parameter state and the param groups' own entries, such as
  Prodigy's `d` or schedule-free's `k`) is what a checkpoint saves and restores.
"""

from __future__ import annotations

import inspect
import io
import math

import torch
import torch.nn.functional as F

from optreg.extensions import ExtensionError, resolve_arguments

# Values of a param group a checkpoint keeps (`torch.load(weights_only=True)` reads them).
_PLAIN = (bool, int, float, str, type(None), torch.Tensor)
_closure_needed: dict[tuple, bool] = {}


def _plain(value) -> bool:
    if isinstance(value, tuple | list):
        return all(_plain(v) for v in value)
    return isinstance(value, _PLAIN)


def needs_closure(cls, kwargs: dict, lr: float) -> bool:
    """Whether `cls.step` must be given a closure: its `closure` has no default
    (`torch.optim.LBFGS`), or a step without one fails saying it needs one (SAM). Tried on
    a throwaway parameter, once per class and arguments in a process."""
    try:
        closure = inspect.signature(cls.step).parameters.get("closure")
    except (TypeError, ValueError):
        closure = None
    if closure is None:
        return False
    if closure.default is inspect.Parameter.empty:
        return True
    key = (cls, repr(sorted(kwargs.items(), key=lambda kv: kv[0])), lr)
    if key not in _closure_needed:
        param = torch.zeros(1, 2, requires_grad=True)
        param.grad = torch.ones_like(param)
        try:
            optimizer = cls([param], lr=lr, **kwargs)
            if _has_modes(optimizer):
                optimizer.train()
            optimizer.step()
            needed = False
        except Exception as exc:  # whatever else fails is the trial's to report
            needed = "closure" in str(exc).lower()
        _closure_needed[key] = needed
    return _closure_needed[key]


def _has_modes(optimizer) -> bool:
    return all(callable(getattr(optimizer, mode, None)) for mode in ("train", "eval"))


class TorchOptimizer:
    """A `torch.optim.Optimizer` driving a one-run stack, with the interface of
    `optreg.training.optimizers.Optimizer` that the training loop and the penalties use.

    `kwargs` may name classes as `{class: "module:attribute"}` (`resolve_arguments`)."""

    def __init__(self, cls, params, lr, kwargs: dict):
        if lr.numel() != 1:
            raise ExtensionError(
                f"{cls.__name__} is a torch.optim optimizer: it trains one run at a time, "
                f"got {lr.numel()} runs in one stack"
            )
        self.cls, self.kwargs = cls, resolve_arguments(kwargs)
        self.base, self.lr, self.factor = lr, lr.clone(), 1.0
        self.params = list(params)
        self.inner = cls(self.params, lr=lr.item(), **self.kwargs)
        self.has_modes = _has_modes(self.inner)
        self.needs_closure = needs_closure(cls, self.kwargs, lr.item())
        self.steps = 0

    def zero_grad(self) -> None:
        self.inner.zero_grad(set_to_none=True)

    def train(self) -> None:
        """Train mode before training steps (schedule-free: the parameters hold `y`)."""
        if self.has_modes:
            self.inner.train()

    def eval(self) -> None:
        """Eval mode before evaluating (schedule-free: the parameters hold the average `x`)."""
        if self.has_modes:
            self.inner.eval()

    def scale(self, factor: float) -> None:
        """Train the next steps at `factor` times the configured rate (a schedule): the
        param groups' `lr`, and `lr` for the penalties' steps."""
        if factor != self.factor:
            self.factor = factor
            self.lr.copy_(self.base * factor)
            for group in self.inner.param_groups:
                group["lr"] = self.lr.item()

    def step(self, closure=None) -> None:
        """One step; `closure` (zero the gradients, recompute the loss on the same batch,
        backward, return the loss) goes to an optimizer that needs one."""
        if self.needs_closure:
            if closure is None:
                raise ExtensionError(f"{self.cls.__name__} needs a closure for its step")
            self.inner.step(closure)
        else:
            self.inner.step()
        self.steps += 1

    def keep(self, mask, params) -> None:
        """Keep the run (`mask` [True]) on the model's new parameters, or drop it."""
        params = list(params)
        if not bool(mask.all()):
            self.params, self.base, self.lr = params, self.base[mask], self.lr[mask]
            return
        state, groups = [self.inner.state.get(p, {}) for p in self.params], self.groups
        self.params = params
        self.inner = self.cls(params, lr=self.lr.item(), **self.kwargs)
        for p, s in zip(params, state, strict=True):
            if s:
                self.inner.state[p] = s
        self.groups = groups

    @property
    def state(self) -> dict[str, list]:
        """The state as named lists, one entry per parameter (the stacked rules' layout)."""
        out: dict[str, list] = {}
        for i, p in enumerate(self.params):
            for name, value in self.inner.state.get(p, {}).items():
                out.setdefault(name, [None] * len(self.params))[i] = value
        return out

    @state.setter
    def state(self, named: dict[str, list]) -> None:
        # torch.optim keeps scalar state (step counts) on the CPU unless `capturable`; a
        # checkpoint restored onto a GPU moves every tensor there.
        scalars_on_cpu = not self.inner.defaults.get("capturable", False)
        for name, values in named.items():
            for p, value in zip(self.params, values, strict=True):
                if value is None:
                    continue
                if scalars_on_cpu and isinstance(value, torch.Tensor) and value.dim() == 0:
                    value = value.cpu()
                self.inner.state[p][name] = value

    @property
    def groups(self) -> list[dict]:
        """Each param group's own entries but its parameters (Prodigy's `d`, schedule-free's
        `k`, `weight_sum` and mode): state too, which a resumed run must continue from."""
        return [
            {k: v for k, v in group.items() if k != "params" and _plain(v)}
            for group in self.inner.param_groups
        ]

    @groups.setter
    def groups(self, saved: list[dict]) -> None:
        for group, values in zip(self.inner.param_groups, saved, strict=True):
            group.update(values)


# ---------------------------------------------------------------- the trial before any job
def _trial_problem(features: int = 4, classes: int = 3, samples: int = 8):
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(1, features, classes, generator=generator) * 0.5
    bias = torch.zeros(1, classes)
    x = torch.randn(samples, features, generator=generator)
    y = torch.randint(0, classes, (samples,), generator=generator)
    return (weight, bias), x, y


def _loss(params, x, y) -> torch.Tensor:
    weight, bias = params
    return F.cross_entropy(x @ weight[0] + bias[0], y)


def _train(optimizer: TorchOptimizer, params, x, y, steps: int) -> None:
    def closure():
        optimizer.zero_grad()
        loss = _loss(params, x, y)
        loss.backward()
        return loss

    for _ in range(steps):
        optimizer.train()
        closure()
        optimizer.step(closure)


def _round_trip(saved: dict) -> dict:
    """`saved` through a checkpoint file: `torch.save`, then `torch.load(weights_only=True)`."""
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _class_hint(kwargs: dict) -> str:
    named = [k for k, v in kwargs.items() if isinstance(v, str) and ("." in v or ":" in v)]
    if not named:
        return ""
    return (
        f"; if {', '.join(map(repr, named))} should be a class, write it "
        '{class: "module:Class"} (docs/extending.md)'
    )


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float, atol: float) -> bool:
    return torch.allclose(a, b, rtol=rtol, atol=atol)


def trial(cls, kwargs: dict, lr: float, steps: int = 4) -> str | None:
    """What keeps `cls` (a `torch.optim.Optimizer`) from training a run correctly, found
    before any job on a tiny linear model on the CPU, or None. It is built as the jobs build
    it (`TorchOptimizer`, a closure where it needs one, train mode for its steps), takes
    `steps` steps at `lr`, and must: not raise, keep the parameters finite (in train and
    eval mode), come back to the same parameters after eval() then train(), and resume from
    its checkpointed state (saved and loaded as a checkpoint is) exactly where it stopped."""
    start, x, y = _trial_problem()

    def fresh():
        params = [p.clone().requires_grad_() for p in start]
        return params, TorchOptimizer(cls, params, torch.tensor([float(lr)]), kwargs)

    def fail(what: str) -> str:
        return f"(a trial of {steps} steps on a tiny model at lr={lr:g}) {what}"

    try:
        params, optimizer = fresh()
        _train(optimizer, params, x, y, steps)
        trained = [p.detach().clone() for p in params]
        optimizer.eval()
        evaluated = [p.detach().clone() for p in params]
        optimizer.train()
        back = [p.detach().clone() for p in params]
        # Resume: half the steps, a checkpoint's round trip, then the other half.
        params, first = fresh()
        _train(first, params, x, y, steps // 2)
        saved = _round_trip(
            {
                "params": [p.detach() for p in params],
                "state": first.state,
                "groups": first.groups,
                "steps": first.steps,
            }
        )
        params = [p.clone().requires_grad_() for p in saved["params"]]
        resumed = TorchOptimizer(cls, params, torch.tensor([float(lr)]), kwargs)
        resumed.steps, resumed.state = saved["steps"], saved["state"]
        resumed.groups = saved["groups"]
        _train(resumed, params, x, y, steps - steps // 2)
        after_resume = [p.detach().clone() for p in params]
    except Exception as exc:
        return fail(f"fails: {type(exc).__name__}: {exc}{_class_hint(kwargs)}")
    if not all(torch.isfinite(p).all() for p in trained + evaluated):
        return fail("turns the parameters non-finite")
    if not all(_close(a, b, 1e-4, 1e-6) for a, b in zip(trained, back, strict=True)):
        return fail("ends elsewhere after eval() then train(): its modes do not switch back")
    if not all(_close(a, b, 1e-5, 1e-7) for a, b in zip(trained, after_resume, strict=True)):
        return fail(
            "resumed from its saved state ends elsewhere than trained without a stop: it keeps "
            "state outside `state` and its param groups' plain values (a checkpoint cannot "
            "restore it)"
        )
    if not math.isfinite(float(_loss(evaluated, x, y))):
        return fail("gives a non-finite loss in eval mode")
    return None
