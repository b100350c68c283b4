"""User optimizers in training: a `torch.optim` optimizer as one run's optimizer, and
which cells train one run at a time (see `optreg.extensions`)."""

from __future__ import annotations

import torch

from optreg.extensions import ExtensionError


class TorchOptimizer:
    """A `torch.optim.Optimizer` driving a one-run stack, with the interface of
    `optreg.training.optimizers.Optimizer` that the training loop and the penalties use."""

    def __init__(self, cls, params, lr, kwargs: dict):
        if lr.numel() != 1:
            raise ExtensionError(
                f"{cls.__name__} is a torch.optim optimizer: it trains one run at a time, "
                f"got {lr.numel()} runs in one stack"
            )
        self.cls, self.kwargs, self.lr = cls, kwargs, lr
        self.params = list(params)
        self.inner = cls(self.params, lr=lr.item(), **kwargs)
        self.steps = 0

    def zero_grad(self) -> None:
        self.inner.zero_grad(set_to_none=True)

    def step(self) -> None:
        self.inner.step()
        self.steps += 1

    def keep(self, mask, params) -> None:
        """Keep the run (`mask` [True]) on the model's new parameters, or drop it."""
        params = list(params)
        if not bool(mask.all()):
            self.params, self.lr = params, self.lr[mask]
            return
        state = [self.inner.state.get(p, {}) for p in self.params]
        self.params = params
        self.inner = self.cls(params, lr=self.lr.item(), **self.kwargs)
        for p, s in zip(params, state, strict=True):
            if s:
                self.inner.state[p] = s

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
