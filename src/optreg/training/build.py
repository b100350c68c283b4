"""The optimizer of a cell: a built-in stacked rule or the user's, from the cell's settings."""

from __future__ import annotations

import torch

from optreg.extensions import load, optimizer_kind
from optreg.training import optimizers as optim
from optreg.training.torch_optim import TorchOptimizer


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
