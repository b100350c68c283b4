"""What optimizers and models exist: one table each, built-ins and the config's own alike.

Each entry names its class (or factory) by import path, so this module imports no torch:
config validation and the workflow read it to know the names, the schema's enums and the
default learning rates, and only a train job imports what an entry names. A built-in
optimizer is one class in `optreg.training.optimizers` and one line in `OPTIMIZERS`; a
config's `optimizers:` section adds entries of the same kind (`optimizer_entries`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from optreg.settings import Settings


@dataclass(frozen=True)
class OptimizerEntry:
    """An optimizer: its class, customary learning rate and the arguments it is built with.

    `target` is "module:Class": a stacked rule (`optreg.training.optimizers.Optimizer`) or a
    `torch.optim.Optimizer`. `kwargs` are fixed arguments; `settings` names cell settings
    passed as arguments of the same name (the momentum of SGD with momentum).
    """

    name: str
    target: str
    default_lr: float
    kwargs: dict[str, Any] = field(default_factory=dict)
    settings: tuple[str, ...] = ()
    # Sets its own step size (Prodigy): `lr` only scales it; the figures say so.
    lr_free: bool = False


@dataclass(frozen=True)
class ModelEntry:
    """A model: the class or factory that builds it, and the problem keys that size it.

    A built-in model's `target` builds a stacked model (`optreg.training.models.Stacked`)
    as `build(spec, meta, activation, seeds)`; a config's own model is a factory of one
    `torch.nn.Module`, stacked with `torch.func` (`optreg.training.funcmodel`). `sizes` are
    the problem keys that shape it, the only ones a cell's settings keep. `parameters`
    counts one run's parameters from a cell's model settings, one sample's shape and the
    number of classes, where that is known without building it.
    """

    name: str
    target: str
    sizes: tuple[str, ...] = ()
    parameters: Callable[[dict, tuple[int, ...], int], int] | None = None


def _mlp_parameters(model: dict, input_shape: tuple[int, ...], classes: int) -> int:
    """Weights and biases of the dense layers through the features, `hidden` and classes."""
    sizes = [math.prod(input_shape), *model.get("hidden", ()), classes]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


_SGD = "optreg.training.optimizers:SGD"
OPTIMIZERS: dict[str, OptimizerEntry] = {
    "sgd": OptimizerEntry("sgd", _SGD, 0.01),
    # SGD with heavy-ball momentum, its coefficient the cell's `momentum` setting.
    "momentum": OptimizerEntry("momentum", _SGD, 0.01, settings=("momentum",)),
    "rmsprop": OptimizerEntry("rmsprop", "optreg.training.optimizers:RMSprop", 0.001),
    "adam": OptimizerEntry("adam", "optreg.training.optimizers:Adam", 0.001),
}

MODELS: dict[str, ModelEntry] = {
    "mlp": ModelEntry("mlp", "optreg.training.models:build_mlp", ("hidden",), _mlp_parameters),
    # On signals [channels, length] a 1-D CNN, on images [channels, height, width] a 2-D.
    "cnn": ModelEntry("cnn", "optreg.training.models:build_cnn", ("channels", "dense", "kernel")),
}


def optimizer_entries(config: dict | None = None) -> dict[str, OptimizerEntry]:
    """Every optimizer a config can name: the built-ins, then the config's `optimizers:`."""
    entries = dict(OPTIMIZERS)
    for name, entry in ((config or {}).get("optimizers") or {}).items():
        entries.setdefault(
            name,
            OptimizerEntry(
                name,
                entry["class"],
                float(entry["default_lr"]),
                dict(entry.get("kwargs", {})),
                lr_free=bool(entry.get("lr_free", False)),
            ),
        )
    return entries


def optimizer_entry(settings: Settings) -> OptimizerEntry:
    """The optimizer a cell's settings name (a user's carries its `optimizer_spec`)."""
    spec = settings.optimizer_spec
    if spec is not None:
        return OptimizerEntry(settings.optimizer, spec.target, 0.0, dict(spec.kwargs))
    return OPTIMIZERS[settings.optimizer]
