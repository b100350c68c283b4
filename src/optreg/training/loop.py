"""The training loop: all seeds of one combination trained together.

Data lives in tensors on the device and batches are index slices; each seed
has its own initialization and its own data order. A seed whose loss turns
non-finite is recorded as diverged at that epoch and dropped from the stack;
the others go on unaffected.
"""

from __future__ import annotations

import logging
import math
import time

import torch
import torch.nn.functional as F

from optreg.data.prepared import Prepared
from optreg.records import NEAR_ZERO
from optreg.training.models import Stacked, build_model
from optreg.training.optimizers import build_optimizer
from optreg.training.penalties import (
    add_penalty_gradients,
    after_step,
    before_step,
    penalty,
    penalty_hooks,
)
from optreg.training.seeds import derived_seed
from optreg.training.watch import Watch

log = logging.getLogger("optreg.training.loop")


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy [S, B] of stacked logits [S, B, classes] and labels [S, B].

    The classes go in the middle ([S, classes, B], torch's layout for extra dimensions):
    log-softmax over a short innermost dimension (10 digits) is several times slower on a
    CPU than over a middle one, and this is the largest kernel of a small model's step.
    """
    return F.cross_entropy(logits.transpose(1, 2), y, reduction="none")


def _predictions(logits: torch.Tensor) -> torch.Tensor:
    """The predicted class [S, B] of logits [S, B, classes]: `max(-1).indices`, the first
    largest like `argmax`, which is ten times slower on the models' logits (a transposed
    view of [S, classes, B])."""
    return logits.max(-1).indices


def _batch(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, device):
    """Inputs [S, B, ...] and labels [S, B] of the sample indices `idx` [S, B], on `device`;
    `index_select` on the flattened indices is four times faster than `x[idx]` here."""
    flat = idx.reshape(-1)
    xb = x.index_select(0, flat).view(*idx.shape, *x.shape[1:])
    return xb.to(device), y.index_select(0, flat).view(idx.shape).to(device)


@torch.no_grad()
def _evaluate(model: Stacked, x: torch.Tensor, y: torch.Tensor, batch_size: int, device):
    """Per-seed mean cross-entropy and accuracy on a whole split, `batch_size` samples at a
    time: a whole split at once would hold every run's activations for every sample."""
    loss_sum, correct = 0.0, 0
    for first in range(0, len(y), batch_size):
        xb, yb = x[first : first + batch_size].to(device), y[first : first + batch_size].to(device)
        logits = model(xb)
        loss_sum = loss_sum + _cross_entropy(logits, yb.expand(logits.shape[0], -1)).sum(1)
        correct = correct + (_predictions(logits) == yb).sum(1)
    return loss_sum / len(y), correct / len(y)


def _weight_stats(model: Stacked, slot: int) -> dict:
    w = torch.cat([p[slot].flatten() for p in model.weights]).double()
    return {
        "count": w.numel(),
        "l1_norm": w.abs().sum().item(),
        "l2_norm": w.square().sum().sqrt().item(),
        "near_zero_fraction": (w.abs() < NEAR_ZERO).double().mean().item(),
        "zero_fraction": (w == 0).double().mean().item(),
        "near_zero_threshold": NEAR_ZERO,
    }


def train_seeds(data: Prepared, settings: dict, seeds, device: torch.device) -> list[dict]:
    """Train every seed at `settings["lr"]`; see `train_runs`."""
    seeds = list(seeds)
    return train_runs(data, settings, [settings["lr"]] * len(seeds), seeds, device)


def train_runs(
    data: Prepared,
    settings: dict,
    lrs,
    seeds,
    device: torch.device,
    max_stack: int | None = None,
    watch: Watch | None = None,
    resume: dict | None = None,
) -> list[dict]:
    """Train one cell for every (learning rate, seed) pair, all as one stacked model.

    Returns one result per run, each holding `history`, `final`, `weights`, `diverged`
    and `diverged_epoch`. Runs that share a seed share their initialization and data
    order, so runs at different learning rates differ in nothing else. With `max_stack`,
    consecutive runs are stacked that many at a time (see `max_stack`): the results are
    the same, since the runs of a stack never interact. `watch` reports progress and saves
    checkpoints between batches; `resume` (from a checkpoint: the results of the finished
    stacks and the state of the stack in training) continues where it was saved.
    """
    lrs, seeds = list(lrs), list(seeds)
    size = max_stack or len(seeds) or 1
    results = list(resume["results"]) if resume else []
    stack = resume["stack"] if resume else None
    for first in range(len(results), len(seeds), size):
        chunk = slice(first, first + size)
        if watch is not None:
            watch.start_stack(results)
        results += train_stack(
            data, settings, lrs[chunk], seeds[chunk], device, watch=watch, resume=stack
        )[0]
        stack = None
    return results


def train_stack(
    data: Prepared,
    settings: dict,
    lrs,
    seeds,
    device: torch.device,
    watch: Watch | None = None,
    resume: dict | None = None,
):
    """`train_runs`, also returning each run's final parameters (None for a diverged run).

    A run's parameters are its own slices of the stack, weights then biases (each model's
    `weights` and `biases` order): what one network trained alone would end with. With
    `resume` (a state `watch` saved), training continues from that batch exactly as if it
    had never stopped: same parameters, optimizer state, data order and running sums.
    """
    lrs, seeds = list(lrs), list(seeds)
    # The data stays where load_prepared put it: on the device, or memory-mapped on the CPU
    # when it does not fit the device; batches are then moved one at a time.
    x_train, y_train = data.x["train"], data.y["train"]
    x_val, y_val = data.x["val"], data.y["val"]
    model = build_model(settings["model"], data.meta, settings["activation"], seeds).to(device)
    alive = list(range(len(seeds)))  # positions in `seeds` still in the stack
    if resume:
        alive = resume["alive"]
        if len(alive) < len(seeds):
            model.keep(torch.tensor([i in alive for i in range(len(seeds))], device=device))
        with torch.no_grad():
            for p, saved in zip(model.parameters(), resume["params"], strict=True):
                p.copy_(saved)
    optimizer = build_optimizer(settings, model.parameters(), [lrs[i] for i in alive])
    if resume:
        optimizer.steps = resume["optimizer"]["steps"]
        optimizer.state = {
            name: [t.to(device) for t in tensors]
            for name, tensors in resume["optimizer"]["state"].items()
        }
    kind, strength = settings["penalty"], settings["strength"]
    # Only the penalty's own steps run per batch: none at all without a penalty.
    in_loss, shrink_before, threshold_after = penalty_hooks(kind, strength)
    # The built-in MLP's backward is written out (StackedMLP.loss_and_gradients); other
    # models go through autograd.
    by_hand = hasattr(model, "loss_and_gradients")
    distinct = sorted(set(seeds))
    orders = [torch.Generator().manual_seed(derived_seed(s, "order")) for s in distinct]
    order_of = torch.tensor([distinct.index(s) for s in seeds])  # run -> its seed's shuffle
    results = [
        {"history": [], "diverged": False, "diverged_epoch": None, "final": None, "weights": None}
        for _ in seeds
    ]
    n, batch_size, epochs = len(y_train), settings["batch_size"], settings["epochs"]
    weight_count = sum(w[0].numel() for w in model.weights)
    final_parameters = [None] * len(seeds)
    start = time.perf_counter()
    first_epoch = 1
    if resume:
        for g, saved in zip(orders, resume["orders"], strict=True):
            g.set_state(saved)
        results = resume["results"]
        start -= resume["elapsed"]
        first_epoch = resume["epoch"]

    def snapshot(next_batch: int) -> dict:
        """Everything the rest of this stack's training depends on, at a batch boundary."""
        return {
            "epoch": epoch,
            "next_batch": next_batch,
            "alive": alive,
            "params": [p.detach() for p in model.parameters()],
            "optimizer": {"steps": optimizer.steps, "state": optimizer.state},
            "orders": [g.get_state() for g in orders],
            "perms": perms,
            "loss_sum": loss_sum,
            "correct": correct,
            "results": results,
            "elapsed": time.perf_counter() - start,
        }

    for epoch in range(first_epoch, epochs + 1):
        if resume and epoch == first_epoch:  # the saved epoch, from the saved batch on
            perms = resume["perms"].to(x_train.device)
            loss_sum, correct = resume["loss_sum"].to(device), resume["correct"].to(device)
            first_batch = resume["next_batch"]
        else:
            shuffles = torch.stack([torch.randperm(n, generator=g) for g in orders])
            perms = shuffles[order_of[alive]].to(x_train.device)
            loss_sum = torch.zeros(len(alive), device=device)
            correct = torch.zeros(len(alive), device=device)
            first_batch = 0
        for first in range(first_batch, n, batch_size):
            xb, yb = _batch(x_train, y_train, perms[:, first : first + batch_size], device)
            if by_hand:
                losses, predicted = model.loss_and_gradients(xb, yb)
                if in_loss:
                    add_penalty_gradients(model.weights, kind, strength)
            else:
                logits = model(xb)
                losses = _cross_entropy(logits, yb)
                # Each run minimizes its mean loss over the batch (+ penalty); runs share no
                # parameters, so the sum over runs gives each run its own gradient. Every run
                # has the same batch, so the sum of the means is one sum over all / B. (A
                # scalar on purpose: explicit output gradients make torch import sympy.)
                loss = losses.sum() / losses.shape[1]
                if in_loss:
                    loss = loss + penalty(model.weights, kind, strength).sum()
                optimizer.zero_grad()
                loss.backward()
                losses = losses.detach()
                predicted = _predictions(logits.detach())
            if shrink_before:
                before_step(model.weights, kind, strength, optimizer.lr)
            optimizer.step()
            if threshold_after:
                after_step(model.weights, kind, strength, optimizer.lr)
            loss_sum.add_(losses.sum(1))
            correct.add_((predicted == yb).sum(1))
            # One comparison per batch; a signal makes `due` 0, so it is handled here at once.
            if watch is not None and time.monotonic() >= watch.due:
                end = min(first + batch_size, n)
                watch.between_batches(epoch, epochs, end, n, lambda end=end: snapshot(end))
        val_loss, val_acc = _evaluate(model, x_val, y_val, batch_size, device)
        train_loss = (loss_sum / n).tolist()
        train_acc = (correct / n).tolist()
        val_loss, val_acc = val_loss.tolist(), val_acc.tolist()
        elapsed = time.perf_counter() - start

        # Slices are independent, so a non-finite seed cannot have touched the others
        # during the epoch: checking once per epoch is exact and costs one sync.
        finite = [
            math.isfinite(a) and math.isfinite(b) for a, b in zip(train_loss, val_loss, strict=True)
        ]
        for slot, pos in enumerate(alive):
            if finite[slot]:
                results[pos]["history"].append(
                    {
                        "epoch": epoch,
                        "train_loss": train_loss[slot],
                        "train_accuracy": train_acc[slot],
                        "val_loss": val_loss[slot],
                        "val_accuracy": val_acc[slot],
                        "elapsed_s": elapsed,
                    }
                )
            else:
                results[pos]["diverged"] = True
                results[pos]["diverged_epoch"] = epoch
        if watch is not None:
            kept = [slot for slot, ok in enumerate(finite) if ok]
            watch.end_epoch(
                epoch,
                epochs,
                training=len(kept),
                diverged=sum(r["diverged"] for r in results),
                train_loss=[train_loss[slot] for slot in kept],
                val_accuracy=[val_acc[slot] for slot in kept],
                dropped=len(finite) - len(kept),
            )
        if not all(finite):
            mask = torch.tensor(finite, device=device)
            model.keep(mask)
            optimizer.keep(mask, model.parameters())
            alive = [pos for pos, ok in zip(alive, finite, strict=True) if ok]
            if not alive:
                break

    if alive:
        test_loss, test_acc = _evaluate(model, data.x["test"], data.y["test"], batch_size, device)
        for slot, pos in enumerate(alive):
            last = results[pos]["history"][-1]
            results[pos]["final"] = {
                "train_loss": last["train_loss"],
                "train_accuracy": last["train_accuracy"],
                "val_loss": last["val_loss"],
                "val_accuracy": last["val_accuracy"],
                "test_loss": _finite_or_none(test_loss[slot].item()),
                "test_accuracy": test_acc[slot].item(),
            }
            results[pos]["weights"] = _weight_stats(model, slot)
            final_parameters[pos] = [p[slot].detach().clone() for p in model.parameters()]
    for result in results:
        if result["final"] is None:  # diverged: no final metrics to report
            result["final"] = dict.fromkeys(
                (
                    "train_loss",
                    "train_accuracy",
                    "val_loss",
                    "val_accuracy",
                    "test_loss",
                    "test_accuracy",
                )
            )
            result["weights"] = {
                "count": weight_count,
                "l1_norm": None,
                "l2_norm": None,
                "near_zero_fraction": None,
                "zero_fraction": None,
                "near_zero_threshold": NEAR_ZERO,
            }
    return results, final_parameters
