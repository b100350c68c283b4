"""The built-in optimizers as stacked rules, and the one builder of every cell's optimizer.

The four optimizers are written out here rather than taken from `torch.optim`:
constructing any `torch.optim.Optimizer` imports `torch._dynamo`, which costs
about 1.1 s per process, more than training one digits run. Their update rules
follow `torch.optim.SGD`, `RMSprop` and `Adam` with default arguments exactly,
and tests/unit/training/test_optimizers.py checks them against those classes.

Every rule acts elementwise, so one optimizer over stacked parameters equals
one optimizer per run; the learning rate may differ per run (a tensor with one
value per slice of the stack). A new built-in rule is a subclass of `Optimizer`
defining `update` here, and one entry in `optreg.training.registry.OPTIMIZERS`.
"""

from __future__ import annotations

import torch

from optreg.extensions import load, optimizer_kind
from optreg.settings import Settings
from optreg.training.penalties import per_slice
from optreg.training.registry import OPTIMIZERS, optimizer_entry
from optreg.training.torch_optim import TorchOptimizer


class Optimizer:
    """An elementwise optimizer over a list of stacked parameters with per-run rates [S].

    Each update is a handful of `torch._foreach_*` calls over all parameters at once
    (plain tensor kernels, no dynamo), so a step costs about as few kernel launches
    as `torch.optim`'s foreach implementation, whatever the number of layers.
    """

    def __init__(self, params, lr: torch.Tensor):
        self.state: dict[str, list[torch.Tensor]] = {}
        self.steps = 0
        self.factor = 1.0  # the schedule's factor of the step in progress (`scale`)
        self._use(list(params), lr)

    def _use(self, params: list, lr: torch.Tensor) -> None:
        self.params = params
        self.base = lr  # each run's configured rate
        self.lr = lr * self.factor if self.factor != 1.0 else lr.clone()  # the rate in use
        self.rates = [per_slice(self.lr, p) for p in params]  # viewed to broadcast per tensor

    def scale(self, factor: float) -> None:
        """Train the next steps at `factor` times each run's configured rate (a schedule,
        `optreg.training.schedules`): the rates every update and penalty step read."""
        if factor != self.factor:
            self.factor = factor
            self.lr.copy_(self.base * factor)

    # A stacked rule's step reads the gradients the loop computed: it needs no closure.
    needs_closure = False

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def train(self) -> None:
        """Called before training steps; a rule with a train mode of its own (schedule-free)
        overrides it and `eval`, called before every evaluation."""

    def eval(self) -> None:
        """Called before every validation and test evaluation and the final weights."""

    @torch.no_grad()
    def step(self) -> None:
        grads = [p.grad for p in self.params]
        if any(g is None for g in grads):
            missing = [i for i, g in enumerate(grads) if g is None]
            raise RuntimeError(
                f"parameters {missing} have no gradient: every stacked parameter must take "
                "part in the loss (the update of a stack is one call over all of them)"
            )
        self.steps += 1
        self.update(self.params, grads, self.rates)

    def buffer(self, name: str, init=torch.zeros_like) -> list[torch.Tensor]:
        """The state tensors called `name`, one per parameter, created by `init` on first use."""
        if name not in self.state:
            self.state[name] = [init(p) for p in self.params]
        return self.state[name]

    def update(self, params: list, grads: list, rates: list) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not define its update rule")

    def keep(self, mask: torch.Tensor, params) -> None:
        """Continue with `params` (the model's after it dropped the slices where `mask` is
        False) and drop the same slices from the rates and every state tensor."""
        self._use(list(params), self.base[mask])
        for name, tensors in self.state.items():
            self.state[name] = [t[mask] for t in tensors]

    @classmethod
    def trial(cls, kwargs: dict) -> str | None:
        """What is wrong with this rule, found in 3 steps on a stack of 3 runs (each also
        trained alone), or None: it raises, mixes runs or ignores their rates. Such a rule
        would train without a word, its tuned rates meaning nothing."""
        rates = torch.tensor([1e-3, 1e-2, 1e-1])
        generator = torch.Generator().manual_seed(0)
        start = torch.randn(1, 4, 3, generator=generator).expand(3, 4, 3)
        alike = [torch.randn(1, 4, 3, generator=generator).expand(3, 4, 3) for _ in range(3)]
        apart = [torch.randn(3, 4, 3, generator=generator) for _ in range(3)]

        def train(grads, lr: torch.Tensor, runs: slice) -> torch.Tensor:
            param = start[runs].clone().requires_grad_()
            optimizer = cls([param], lr, **kwargs)
            for grad in grads:
                param.grad = grad[runs].clone()
                optimizer.step()
            return param.detach()

        try:
            ends = {}
            for name, grads in (("alike", alike), ("apart", apart)):
                ends[name] = train(grads, rates, slice(None))
                alone = [train(grads, rates[i : i + 1], slice(i, i + 1)) for i in range(3)]
                ends[name, "alone"] = torch.cat(alone)
        except Exception as exc:
            return f"fails a trial of 3 steps on a stack of 3 runs: {type(exc).__name__}: {exc}"
        # Before comparing: NaN equals nothing, so a non-finite update would otherwise be
        # blamed on mixing runs.
        if not all(torch.isfinite(v).all() for v in ends.values()):
            return (
                "(a trial of 3 steps on a stack of 3 runs at rates 0.001, 0.01 and 0.1, "
                "gradients of N(0, 1)) turns the parameters non-finite (NaN or inf)"
            )
        for name in ("alike", "apart"):
            if not torch.allclose(ends[name], ends[name, "alone"], rtol=1e-5, atol=1e-7):
                return (
                    "(a trial of 3 steps): a run trained in a stack ends elsewhere than the "
                    "same run trained alone: its update reads other runs' slices (act "
                    "elementwise, docs/extending.md)"
                )
        same = ends["alike"]
        if torch.equal(same[0], same[1]) and torch.equal(same[1], same[2]):
            return (
                "(a trial of 3 steps): runs at rates 0.001, 0.01 and 0.1, from the same start "
                "with the same gradients, end at the same parameters: its update ignores "
                "`rates` (multiply by rates[i], docs/extending.md)"
            )
        return None


class SGD(Optimizer):
    """p -= lr * g, or heavy-ball momentum: b = m * b + g; p -= lr * b (torch.optim.SGD)."""

    def __init__(self, params, lr, momentum: float = 0.0):
        super().__init__(params, lr)
        self.momentum = momentum

    def update(self, params, grads, rates):
        if self.momentum:
            if "buffer" in self.state:
                buffer = self.state["buffer"]
                torch._foreach_mul_(buffer, self.momentum)
                torch._foreach_add_(buffer, grads)
            else:
                buffer = self.state["buffer"] = [g.clone() for g in grads]
            grads = buffer
        torch._foreach_addcmul_(params, grads, rates, value=-1)


class RMSprop(Optimizer):
    """v = a * v + (1 - a) * g^2; p -= lr * g / (sqrt(v) + eps) (torch.optim.RMSprop defaults)."""

    def __init__(self, params, lr, alpha: float = 0.99, eps: float = 1e-8):
        super().__init__(params, lr)
        self.alpha, self.eps = alpha, eps

    def update(self, params, grads, rates):
        v = self.buffer("square_avg")
        torch._foreach_mul_(v, self.alpha)
        torch._foreach_addcmul_(v, grads, grads, value=1 - self.alpha)
        denom = torch._foreach_sqrt(v)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, torch._foreach_mul(grads, rates), denom, value=-1)


class Adam(Optimizer):
    """Adam with bias correction (torch.optim.Adam defaults: betas 0.9, 0.999; eps 1e-8).

    The update is torch's fused Adam kernel (`torch._fused_adam_`, one pass over each tensor
    for both moments and the step, as `torch.optim.Adam(fused=True)` runs it) applied at
    rate 1 to a zeroed work tensor, which then moves the parameters at each run's own rate:
    three kernel calls a step instead of eight, and no temporaries. Plain tensor kernels,
    no dynamo.
    """

    def __init__(self, params, lr, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr)
        self.beta1, self.beta2 = betas
        self.eps = eps

    def _use(self, params: list, lr: torch.Tensor) -> None:
        super()._use(params, lr)
        self.work = [torch.zeros_like(p) for p in params]
        self.step_count = torch.zeros((), device=params[0].device)

    def update(self, params, grads, rates):
        m, v = self.buffer("exp_avg"), self.buffer("exp_avg_sq")
        work = self.work
        # The kernel reads memory in order: a strided gradient would be read wrong, silently.
        grads = [g if g.is_contiguous() else g.contiguous() for g in grads]
        torch._foreach_zero_(work)
        # The kernel reads each tensor's step count (it never writes it).
        self.step_count.fill_(self.steps)
        torch._fused_adam_(
            work, grads, m, v, [], [self.step_count] * len(params),
            lr=1.0, beta1=self.beta1, beta2=self.beta2, weight_decay=0.0, eps=self.eps,
            amsgrad=False, maximize=False,
        )  # fmt: skip
        torch._foreach_addcmul_(params, work, rates)


def build_optimizer(settings: Settings | dict, params, lr):
    """The optimizer a cell's `settings` name (its `optreg.training.registry` entry) over
    stacked `params`, at `lr`: a float, or one rate per slice of the stack.

    A stacked rule trains every run of the stack at once; a `torch.optim.Optimizer` drives a
    one-run stack (`TorchOptimizer`). Entries name their class by import path, built-ins and
    the user's alike.
    """
    settings = Settings.of(settings)
    if settings.optimizer not in OPTIMIZERS and settings.optimizer_spec is None:
        known = ", ".join(OPTIMIZERS)
        raise ValueError(f"unknown optimizer {settings.optimizer!r}; known: {known}")
    entry = optimizer_entry(settings)
    params = list(params)
    rates = torch.as_tensor(lr, dtype=params[0].dtype, device=params[0].device).reshape(-1)
    if rates.numel() == 1:
        rates = rates.expand(params[0].shape[0]).clone()
    cls = load(entry.target)
    kwargs = {**entry.kwargs, **{key: getattr(settings, key) for key in entry.settings}}
    if optimizer_kind(cls) == "torch":
        return TorchOptimizer(cls, params, rates, kwargs)
    return cls(params, rates, **kwargs)
