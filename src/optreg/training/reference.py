"""The textbook loop: a plain nn.Module and torch.optim, what one stacked run must equal.

One loop, `textbook_epochs`, serves two ends:

- the tests train `textbook_mlp` (a plain network holding one run's own initialization) in
  that run's data order (`data_order`) and check each epoch against the run's history: the
  stacked path must train every run exactly as this loop trains it alone;
- the benchmarks train `plain_model` (the cell's architecture as an `nn.Sequential`,
  Glorot-uniform weights, torch's global random order) with `plain_optimizer`, one run at a
  time (`plain_run`): the way the original notebooks did the same work.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from optreg.training.penalties import PENALTIES
from optreg.training.seeds import derived_seed

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
# The built-in optimizer names `plain_optimizer` has a torch.optim optimizer for.
PLAIN_OPTIMIZERS = ("adam", "momentum", "rmsprop", "sgd")
WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)


def textbook_mlp(seed: int) -> nn.Sequential:
    """The digits MLP of one run (64 -> 8 ReLU -> 10) as a plain nn.Sequential, starting
    from that run's own initialization."""
    from optreg.training.models import StackedMLP

    start = StackedMLP(64, [8], 10, "relu", seeds=[seed])
    plain = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10))
    with torch.no_grad():
        for layer, w, b in zip(plain[::2], start.weights, start.biases, strict=True):
            layer.weight.copy_(w[0])
            layer.bias.copy_(b[0, :, 0])
    return plain


def data_order(seed: int) -> torch.Generator:
    """The generator of one run's data order in the stacked path (one shuffle an epoch)."""
    return torch.Generator().manual_seed(derived_seed(seed, "order"))


def plain_model(spec: dict, meta: dict, activation: str) -> nn.Module:
    """The cell's network as a plain nn.Sequential, Glorot-uniform weights and zero biases."""
    act = ACTIVATIONS[activation]
    if spec["model"] == "mlp":
        sizes = [meta["n_features"], *spec["hidden"], meta["n_classes"]]
        layers = []
        for a, b in zip(sizes, sizes[1:], strict=False):
            layers += [nn.Linear(a, b), act()]
        model = nn.Sequential(*layers[:-1])
    elif len(meta["input_shape"]) == 2:  # signals: the strided 1-D CNN of optreg.training.models
        c, length = meta["input_shape"]
        layers = [nn.Unflatten(1, (c, length))]
        kernels = [*spec.get("kernel", []), *[3] * len(spec["channels"])]
        for out, k in zip(spec["channels"], kernels, strict=False):
            layers += [nn.Conv1d(c, out, k, stride=2, padding=1), act()]
            c, length = out, (length + 2 - k) // 2 + 1
        model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * length, meta["n_classes"]))
    else:
        c, h, w = meta["input_shape"]
        layers = [nn.Unflatten(1, (c, h, w))]
        for out in spec["channels"]:
            layers += [nn.Conv2d(c, out, 3, padding=1), act(), nn.MaxPool2d(2)]
            c, h, w = out, h // 2, w // 2
        model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * h * w, meta["n_classes"]))
    for module in model.modules():
        if isinstance(module, WEIGHTED):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    return model


def plain_optimizer(settings: dict, params, lr: float) -> torch.optim.Optimizer:
    """The torch.optim optimizer of the built-in optimizer `settings` names (AdamW for Adam
    with decoupled weight decay); an error naming the known ones for any other name."""
    name, kind, strength = settings["optimizer"], settings["penalty"], settings["strength"]
    if name not in PLAIN_OPTIMIZERS:
        raise ValueError(
            f"no plain torch.optim optimizer for {name!r}; known: {', '.join(PLAIN_OPTIMIZERS)}"
        )
    if name == "adam" and kind == "wd":
        return torch.optim.AdamW(params, lr=lr, weight_decay=2 * strength)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    momentum = settings["momentum"] if name == "momentum" else 0.0
    return torch.optim.SGD(params, lr=lr, momentum=momentum)


def textbook_epochs(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data,
    epochs: int,
    batch_size: int,
    *,
    order: torch.Generator | None = None,
    penalty: str = "none",
    strength: float = 0.0,
    lr: float = 0.0,
    closure: bool = False,
    scheduler=None,
) -> list[dict]:
    """Train `model` in place for `epochs` epochs of mini-batches of the prepared `data`'s
    training split, shuffled each epoch by `order` (None: torch's global generator); one
    entry per epoch: training loss and accuracy (means over the epoch's batches, weighted by
    their size) and validation loss and accuracy after the epoch.

    `penalty` at `strength`: `l1` and `l2` are added to the loss, `l1_prox` is a proximal
    step after each update and `wd` decoupled weight decay, by the optimizer where it has its
    own (AdamW) and by hand before each step otherwise; the last two need the rate `lr`.

    Third-party optimizers as their packages document them: with `closure`, each step is
    `optimizer.step(closure)`, the closure recomputing the loss and gradients on the same
    batch (`torch.optim.LBFGS`; pytorch_optimizer's SAM, after the first backward); an
    optimizer with `train()` and `eval()` (schedulefree) switches with the model.
    `scheduler` (a `torch.optim.lr_scheduler`) is stepped after every optimizer step, as its
    documentation has it for per-iteration schedules; the penalties' steps use its rate.
    """
    modes = all(callable(getattr(optimizer, m, None)) for m in ("train", "eval"))
    if penalty not in PENALTIES:
        raise ValueError(f"unknown penalty {penalty!r}; known: {', '.join(PENALTIES)}")
    weights = [m.weight for m in model.modules() if isinstance(m, WEIGHTED)]
    decay_by_hand = penalty == "wd" and not isinstance(optimizer, torch.optim.AdamW)
    x, y = data.x["train"], data.y["train"]
    n = len(y)
    history = []
    for _ in range(epochs):
        model.train()
        if modes:
            optimizer.train()
        perm = torch.randperm(n, generator=order)
        total, correct = 0.0, 0
        for first in range(0, n, batch_size):
            idx = perm[first : first + batch_size]
            rate = optimizer.param_groups[0]["lr"] if scheduler is not None else lr
            out = model(x[idx])
            loss = F.cross_entropy(out, y[idx])
            if penalty == "l1":
                loss = loss + strength * sum(w.abs().sum() for w in weights)
            elif penalty == "l2":
                loss = loss + strength * sum(w.square().sum() for w in weights)
            optimizer.zero_grad()
            loss.backward()
            with torch.no_grad():
                if decay_by_hand:
                    for w in weights:
                        w.mul_(1 - 2 * rate * strength)
            if closure:

                def again(idx=idx):
                    optimizer.zero_grad()
                    again_loss = F.cross_entropy(model(x[idx]), y[idx])
                    again_loss.backward()
                    return again_loss

                optimizer.step(again)
            else:
                optimizer.step()
            with torch.no_grad():
                if penalty == "l1_prox":
                    for w in weights:
                        w.copy_(w.sign() * (w.abs() - rate * strength).clamp(min=0))
            if scheduler is not None:
                scheduler.step()
            total += loss.item() * len(idx)
            correct += (out.argmax(1) == y[idx]).sum().item()
        model.eval()
        if modes:
            optimizer.eval()
        with torch.no_grad():
            out = model(data.x["val"])
            val_loss = F.cross_entropy(out, data.y["val"]).item()
            val_accuracy = (out.argmax(1) == data.y["val"]).float().mean().item()
        history.append(
            {
                "train_loss": total / n,
                "train_accuracy": correct / n,
                "val_loss": val_loss,
                "val_accuracy": val_accuracy,
            }
        )
    return history


def plain_run(data, settings: dict, lr: float, seed: int) -> dict:
    """One run, notebook style: `plain_model` seeded by `seed` through torch's global
    generator, `plain_optimizer`, the textbook loop, test at the end; its final validation
    and test accuracy and whether it diverged."""
    torch.manual_seed(seed)
    model = plain_model(settings["model"], data.meta, settings["activation"])
    optimizer = plain_optimizer(settings, model.parameters(), lr)
    history = textbook_epochs(
        model,
        optimizer,
        data,
        settings["epochs"],
        settings["batch_size"],
        penalty=settings["penalty"],
        strength=settings["strength"],
        lr=lr,
    )
    with torch.no_grad():
        out = model(data.x["test"])
        test_accuracy = (out.argmax(1) == data.y["test"]).float().mean().item()
    diverged = not all(math.isfinite(h["train_loss"] + h["val_loss"]) for h in history)
    return {
        "val_accuracy": history[-1]["val_accuracy"],
        "test_accuracy": test_accuracy,
        "diverged": diverged,
    }
