"""User optimizers in training: a `torch.optim` optimizer as one run's optimizer, and
which cells train one run at a time (see `optreg.extend`)."""

from __future__ import annotations

import torch

from . import optim
from .extend import ExtensionError, load, optimizer_kind


def per_run(settings: dict, meta: dict) -> bool:
    """Whether a cell's runs train one at a time (a torch.optim optimizer, or a model that
    torch.func cannot stack on data set `meta`), rather than stacked."""
    spec = settings.get("optimizer_spec")
    if spec and optimizer_kind(load(spec["class"])) == "torch":
        return True
    if "factory" in settings["model"]:
        from .funcmodel import stackable

        return not stackable(settings["model"], meta)
    return False


def stack_limit(settings: dict, meta: dict, limit: int | None) -> int | None:
    """The most runs a stack of this cell may hold: 1 for per-run cells, else `limit`."""
    return 1 if per_run(settings, meta) else limit


class TorchOptimizer:
    """A `torch.optim.Optimizer` driving a one-run stack, with the interface of
    `optreg.optim.Optimizer` that the training loop and the penalties use."""

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


def build_optimizer(settings: dict, params, lrs):
    """The optimizer of a cell: a built-in one, or the user's (`settings["optimizer_spec"]`)."""
    spec = settings.get("optimizer_spec")
    if spec is None:
        return optim.build_optimizer(settings["optimizer"], params, lrs, settings["momentum"])
    params = list(params)
    lr = torch.as_tensor(lrs, dtype=params[0].dtype, device=params[0].device).reshape(-1)
    if lr.numel() == 1:
        lr = lr.expand(params[0].shape[0]).clone()
    cls = load(spec["class"])
    if optimizer_kind(cls) == "torch":
        return TorchOptimizer(cls, params, lr, dict(spec["kwargs"]))
    return cls(params, lr, **spec["kwargs"])


def user_source(settings: dict) -> dict:
    """The SHA-256 of each user module a cell's jobs import (none for built-in cells), for
    the checkpoint key: a checkpoint saved before the user's file changed is not resumed."""
    import hashlib

    from .extend import cell_modules, current_path, module_file

    digests = {}
    for module in cell_modules(settings):
        path = module_file(module, current_path())
        if path is not None:
            digests[module] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"user_source": digests} if digests else {}
