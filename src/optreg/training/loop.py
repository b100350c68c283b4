"""The training loop: all seeds of one combination trained together.

Data lives in tensors on the device and batches are index slices; each seed
has its own initialization and its own data order. A seed whose loss turns
non-finite is recorded as diverged at that epoch and dropped from the stack;
the others go on unaffected.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from optreg.data.prepared import Prepared
from optreg.records import NEAR_ZERO
from optreg.settings import Settings
from optreg.training.models import Stacked, build_model
from optreg.training.optimizers import build_optimizer
from optreg.training.penalties import (
    add_penalty_gradients,
    after_step,
    before_step,
    penalty,
    penalty_hooks,
)
from optreg.training.schedules import schedule, steps_per_epoch
from optreg.training.seeds import derived_seed
from optreg.training.watch import Watch


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


# Bytes of inputs gathered at once: a chunk of the epoch's batches in one `index_select`,
# small enough to stay in cache until its batches are trained.
GATHER_BYTES = 1 << 19


def _batch(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, device):
    """Inputs [S, B, ...] and labels [S, B] of the sample indices `idx` [S, B], on `device`;
    `index_select` on the flattened indices is four times faster than `x[idx]` here."""
    flat = idx.reshape(-1)
    xb = x.index_select(0, flat).view(*idx.shape, *x.shape[1:])
    return xb.to(device), y.index_select(0, flat).view(idx.shape).to(device)


def _batches(x: torch.Tensor, y: torch.Tensor, perms: torch.Tensor, first: int, batch_size: int,
             device):  # fmt: skip
    """(start, inputs [S, B, ...], labels [S, B]) of each batch of the epoch's data order
    `perms` [S, n] from sample `first` on. The inputs of as many whole batches as fit in
    `GATHER_BYTES` are gathered (and moved to `device`) at once, batch-major, and each batch
    is one contiguous block of them, laid out as `_batch` lays it out: one gather and one
    move per chunk instead of two each per batch, the same values. (Slices of a run-major
    chunk were strided across runs, and the batched products copied them.) A chunk never
    starts but at a batch boundary, so the batches are the same wherever training resumes."""
    stack, n = perms.shape
    sample_bytes = stack * x[:1].numel() * x.element_size()
    per_chunk = max(1, GATHER_BYTES // max(1, sample_bytes * batch_size))
    for start in range(first, n, per_chunk * batch_size):
        idx = perms[:, start : start + per_chunk * batch_size]
        whole = idx.shape[1] // batch_size  # whole batches; the epoch's last may be short
        if whole:
            # Batch-major [K, S, B]: each batch one contiguous [S, B, ...] block, as alone.
            rows = idx[:, : whole * batch_size].reshape(stack, whole, batch_size).transpose(0, 1)
            xs, ys = _batch(x, y, rows, device)
            for k in range(whole):
                yield start + k * batch_size, xs[k], ys[k]
        if whole * batch_size < idx.shape[1]:
            xb, yb = _batch(x, y, idx[:, whole * batch_size :], device)
            yield start + whole * batch_size, xb, yb


# Samples times runs evaluated at once: a small stack evaluates several batches per forward
# (per-call overhead dominates one run's batch of 64), a large one a batch at a time (more
# would leave the cache). Measured on MNIST-1D's MLP, one thread: a 1-run validation in
# 0.36x the CPU of batches of 64, 5 runs in 0.82x; 21 runs slower with any larger chunk.
EVAL_RUN_SAMPLES = 1280


@torch.no_grad()
def _evaluate(model: Stacked, x: torch.Tensor, y: torch.Tensor, batch_size: int, device):
    """Per-seed mean cross-entropy and accuracy on a whole split, a whole number of batches
    at a time (`EVAL_RUN_SAMPLES` samples times runs, at least one batch): a whole split at
    once would hold every run's activations for every sample. Each sample's logits are the
    same whatever the chunk; only the float32 sum of the losses is added up in another
    order (a rounding-level difference in the mean loss; the accuracy is exact)."""
    loss_sum, correct = 0.0, 0
    chunk = batch_size * max(1, EVAL_RUN_SAMPLES // (model.stack * batch_size))
    for first in range(0, len(y), chunk):
        xb, yb = x[first : first + chunk].to(device), y[first : first + chunk].to(device)
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
    settings: Settings | dict,
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
    stacks and the snapshot of the stack in training) continues where it was saved.
    """
    lrs, seeds, settings = list(lrs), list(seeds), Settings.of(settings)
    size = max_stack or len(seeds) or 1
    saved = resume or {"results": [], "stack": None}
    results = list(saved["results"])
    snapshot = saved["stack"]
    for first in range(len(results), len(seeds), size):
        chunk = slice(first, first + size)
        if watch is not None:
            watch.start_stack(results)
        results += train_stack(
            data, settings, lrs[chunk], seeds[chunk], device, watch=watch, resume=snapshot
        )[0]
        snapshot = None  # only the first stack trained here can be the saved one
    return results


def _empty_result() -> dict:
    return {
        "history": [],
        "diverged": False,
        "diverged_epoch": None,
        "final": None,
        "weights": None,
    }


@dataclass
class Stack:
    """A stack of runs in training: everything the rest of its training depends on.

    Built for new runs (`Stack.fresh`) or from a checkpoint's snapshot (`Stack.restore`), so
    the training loop reads the same either way. `epoch` is the epoch in progress (or the
    next to start); `perms` its data order, None until drawn at the epoch's start;
    `next_batch` the sample where its next batch starts; `loss_sum` and `correct` the
    epoch's running sums; `alive` the positions (in the job's seeds) still training.
    """

    model: torch.nn.Module
    optimizer: object
    orders: list[torch.Generator]  # one shuffle per distinct seed
    order_of: torch.Tensor  # run -> its seed's shuffle
    alive: list[int]
    results: list[dict]
    epoch: int = 1
    next_batch: int = 0
    perms: torch.Tensor | None = None
    loss_sum: torch.Tensor | None = None
    correct: torch.Tensor | None = None
    elapsed: float = 0.0  # training seconds before this process took the stack over

    @classmethod
    def fresh(cls, data: Prepared, settings: Settings, lrs, seeds, device) -> Stack:
        """New runs: each slice initialized from its seed, every run alive."""
        model = build_model(settings.model, data.meta, settings.activation, seeds)
        model = model.to(device)
        optimizer = build_optimizer(settings, model.parameters(), lrs)
        orders, order_of = _shuffles(seeds)
        return cls(model, optimizer, orders, order_of, list(range(len(seeds))), _results(seeds))

    @classmethod
    def restore(cls, saved: dict, data: Prepared, settings: Settings, lrs, seeds, device) -> Stack:
        """The stack a snapshot (`Stack.snapshot`) describes, exactly as it was saved."""
        model = build_model(settings.model, data.meta, settings.activation, seeds)
        model = model.to(device)
        alive = saved["alive"]
        if len(alive) < len(seeds):
            model.keep(torch.tensor([i in alive for i in range(len(seeds))], device=device))
        with torch.no_grad():
            for p, value in zip(model.parameters(), saved["params"], strict=True):
                p.copy_(value)
        optimizer = build_optimizer(settings, model.parameters(), [lrs[i] for i in alive])
        optimizer.steps = saved["optimizer"]["steps"]
        optimizer.state = {
            name: [t.to(device) if isinstance(t, torch.Tensor) else t for t in tensors]
            for name, tensors in saved["optimizer"]["state"].items()
        }
        if "groups" in saved["optimizer"]:  # a torch.optim optimizer's param groups
            optimizer.groups = saved["optimizer"]["groups"]
        orders, order_of = _shuffles(seeds)
        for generator, state in zip(orders, saved["orders"], strict=True):
            generator.set_state(state)
        return cls(
            model,
            optimizer,
            orders,
            order_of,
            alive,
            saved["results"],
            epoch=saved["epoch"],
            next_batch=saved["next_batch"],
            perms=saved["perms"].to(data.x["train"].device),
            loss_sum=saved["loss_sum"].to(device),
            correct=saved["correct"].to(device),
            elapsed=saved["elapsed"],
        )

    def snapshot(self, elapsed: float) -> dict:
        """What `restore` needs, at a batch boundary (`next_batch`), for a checkpoint."""
        return {
            "epoch": self.epoch,
            "next_batch": self.next_batch,
            "alive": self.alive,
            "params": [p.detach() for p in self.model.parameters()],
            "optimizer": {
                "steps": self.optimizer.steps,
                "state": self.optimizer.state,
                **({"groups": self.optimizer.groups} if hasattr(self.optimizer, "groups") else {}),
            },
            "orders": [g.get_state() for g in self.orders],
            "perms": self.perms,
            "loss_sum": self.loss_sum,
            "correct": self.correct,
            "results": self.results,
            "elapsed": elapsed,
        }

    def start_epoch(self, n: int, device, data_device) -> None:
        """Draw the epoch's data order (each run its seed's shuffle) and zero its sums."""
        shuffles = torch.stack([torch.randperm(n, generator=g) for g in self.orders])
        self.perms = shuffles[self.order_of[self.alive]].to(data_device)
        self.loss_sum = torch.zeros(len(self.alive), device=device)
        self.correct = torch.zeros(len(self.alive), device=device)
        self.next_batch = 0

    def drop(self, finite: list[bool], device) -> None:
        """Drop the runs whose epoch was not finite from the model and the optimizer."""
        mask = torch.tensor(finite, device=device)
        self.model.keep(mask)
        self.optimizer.keep(mask, self.model.parameters())
        self.alive = [pos for pos, ok in zip(self.alive, finite, strict=True) if ok]


def _shuffles(seeds) -> tuple[list[torch.Generator], torch.Tensor]:
    """One data-order generator per distinct seed, and each run's index into them."""
    distinct = sorted(set(seeds))
    orders = [torch.Generator().manual_seed(derived_seed(s, "order")) for s in distinct]
    return orders, torch.tensor([distinct.index(s) for s in seeds])


def _results(seeds) -> list[dict]:
    """One empty result per run, filled epoch by epoch."""
    empty = {"history": [], "diverged": False, "diverged_epoch": None}
    return [{**empty, "history": [], "final": None, "weights": None} for _ in seeds]


def train_stack(
    data: Prepared,
    settings: Settings | dict,
    lrs,
    seeds,
    device: torch.device,
    watch: Watch | None = None,
    resume: dict | None = None,
):
    """`train_runs` for one stack, also returning each run's final parameters (None for a
    diverged run).

    A run's parameters are its own slices of the stack, weights then biases (each model's
    `weights` and `biases` order): what one network trained alone would end with. With
    `resume` (a snapshot `watch` saved), training continues from that batch exactly as if it
    had never stopped: same parameters, optimizer state, data order and running sums.
    """
    lrs, seeds, settings = list(lrs), list(seeds), Settings.of(settings)
    if resume:
        stack = Stack.restore(resume, data, settings, lrs, seeds, device)
    else:
        stack = Stack.fresh(data, settings, lrs, seeds, device)
    start = time.perf_counter() - stack.elapsed
    while stack.alive and stack.epoch <= settings.epochs:
        if stack.perms is None:
            stack.start_epoch(len(data.y["train"]), device, data.x["train"].device)
        _train_epoch(stack, data, settings, device, watch, start)
        _end_epoch(stack, data, settings, device, watch, start)
    return _finish(stack, data, settings, device)


def _train_epoch(stack: Stack, data, settings: Settings, device, watch, start: float) -> None:
    """The rest of the stack's epoch, from `stack.next_batch` on: one step per batch."""
    # The data stays where load_prepared put it: on the device, or memory-mapped on the CPU
    # when it does not fit the device; batches are then moved one at a time.
    x_train, y_train = data.x["train"], data.y["train"]
    model, optimizer = stack.model, stack.optimizer
    n, batch_size, epochs = len(y_train), settings.batch_size, settings.epochs
    kind, strength = settings.penalty, settings.strength
    # Only the penalty's own steps run per batch: none at all without a penalty.
    in_loss, shrink_before, threshold_after = penalty_hooks(kind, strength)
    # The built-in MLP's backward is written out (StackedMLP.loss_and_gradients); other
    # models go through autograd.
    by_hand = hasattr(model, "loss_and_gradients")
    # A schedule scales every run's rate by the factor of the step about to be taken (its
    # count is the optimizer's, which a checkpoint holds); a constant rate costs nothing.
    factor = None if settings.schedule == "constant" else schedule(settings.schedule)
    total_steps = epochs * steps_per_epoch(n, batch_size)
    # Schedule-free optimizers keep two iterates: the one trained here (train mode) and the
    # average evaluated (eval mode, `_end_epoch`); the others have no modes.
    optimizer.train()
    for first, xb, yb in _batches(
        x_train, y_train, stack.perms, stack.next_batch, batch_size, device
    ):
        if factor is not None:
            optimizer.scale(factor(optimizer.steps, total_steps))
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
        if optimizer.needs_closure:
            # LBFGS and SAM-style rules evaluate the loss again (at other parameters) within
            # their step: on this same batch, the loss the batch's records already hold.
            optimizer.step(_closure(model, optimizer, xb, yb, kind, strength, by_hand, in_loss))
        else:
            optimizer.step()
        if threshold_after:
            after_step(model.weights, kind, strength, optimizer.lr)
        stack.loss_sum.add_(losses.sum(1))
        stack.correct.add_((predicted == yb).sum(1))
        # One comparison per batch; a signal makes `due` 0, so it is handled here at once.
        if watch is not None and time.monotonic() >= watch.due:
            stack.next_batch = min(first + batch_size, n)
            watch.between_batches(
                stack.epoch,
                epochs,
                stack.next_batch,
                n,
                lambda: stack.snapshot(time.perf_counter() - start),
            )


def _closure(model, optimizer, xb, yb, kind: str, strength: float, by_hand: bool, in_loss: bool):
    """The closure of an optimizer that needs one: zero the gradients, the loss of batch
    `xb`, `yb` (with the penalty) and its gradients at the current parameters; the loss."""

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        if by_hand:  # gradients by hand, as in the loop: no graph (the step enables grad)
            with torch.no_grad():
                losses, _ = model.loss_and_gradients(xb, yb)
                loss = losses.sum() / losses.shape[1]
                if in_loss:
                    add_penalty_gradients(model.weights, kind, strength)
                    loss = loss + penalty(model.weights, kind, strength).sum()
            return loss
        losses = _cross_entropy(model(xb), yb)
        loss = losses.sum() / losses.shape[1]
        if in_loss:
            loss = loss + penalty(model.weights, kind, strength).sum()
        loss.backward()
        return loss.detach()

    return closure


def _end_epoch(stack: Stack, data, settings: Settings, device, watch, start: float) -> None:
    """Validate, record each run's epoch, drop the runs that turned non-finite."""
    n, epochs, epoch = len(data.y["train"]), settings.epochs, stack.epoch
    stack.optimizer.eval()
    val_loss, val_acc = _evaluate(
        stack.model, data.x["val"], data.y["val"], settings.batch_size, device
    )
    # At a budget mark, the test split too: the runs as a shorter budget leaves them.
    marked = epoch in settings.marks and epoch < epochs
    if marked:
        test_loss, test_acc = _evaluate(
            stack.model, data.x["test"], data.y["test"], settings.batch_size, device
        )
        test_loss, test_acc = test_loss.tolist(), test_acc.tolist()
    # Back to training mode at once: a checkpoint holds a stack in training.
    stack.optimizer.train()
    train_loss = (stack.loss_sum / n).tolist()
    train_acc = (stack.correct / n).tolist()
    val_loss, val_acc = val_loss.tolist(), val_acc.tolist()
    elapsed = time.perf_counter() - start
    # Slices are independent, so a non-finite seed cannot have touched the others
    # during the epoch: checking once per epoch is exact and costs one sync.
    finite = [
        math.isfinite(a) and math.isfinite(b) for a, b in zip(train_loss, val_loss, strict=True)
    ]
    for slot, pos in enumerate(stack.alive):
        result = stack.results[pos]
        if finite[slot]:
            result["history"].append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss[slot],
                    "train_accuracy": train_acc[slot],
                    "val_loss": val_loss[slot],
                    "val_accuracy": val_acc[slot],
                    **(
                        {
                            "test_loss": _finite_or_none(test_loss[slot]),
                            "test_accuracy": test_acc[slot],
                        }
                        if marked
                        else {}
                    ),
                    "elapsed_s": elapsed,
                }
            )
        else:
            result["diverged"] = True
            result["diverged_epoch"] = epoch
    if watch is not None:
        kept = [slot for slot, ok in enumerate(finite) if ok]
        watch.end_epoch(
            epoch,
            epochs,
            training=len(kept),
            diverged=sum(r["diverged"] for r in stack.results),
            train_loss=[train_loss[slot] for slot in kept],
            val_accuracy=[val_acc[slot] for slot in kept],
            dropped=len(finite) - len(kept),
        )
    if not all(finite):
        stack.drop(finite, device)
    stack.epoch, stack.perms = epoch + 1, None


def _finish(stack: Stack, data, settings: Settings, device) -> tuple[list[dict], list]:
    """Test the runs still alive; each run's final metrics, weight statistics, parameters."""
    model, results = stack.model, stack.results
    final_parameters = [None] * len(results)
    # The records hold what is evaluated: a schedule-free optimizer's average, not y.
    stack.optimizer.eval()
    if stack.alive:
        test_loss, test_acc = _evaluate(
            model, data.x["test"], data.y["test"], settings.batch_size, device
        )
        for slot, pos in enumerate(stack.alive):
            last = results[pos]["history"][-1]
            results[pos]["final"] = {
                "train_loss": last["train_loss"],
                "train_accuracy": last["train_accuracy"],
                "val_loss": last["val_loss"],
                "val_accuracy": last["val_accuracy"],
                "test_loss": _finite_or_none(test_loss[slot].item()),
                "test_accuracy": test_acc[slot].item(),
            }
            # The last epoch is the last budget: its history entry has the test too.
            last.update(
                test_loss=results[pos]["final"]["test_loss"],
                test_accuracy=results[pos]["final"]["test_accuracy"],
            )
            results[pos]["weights"] = _weight_stats(model, slot)
            final_parameters[pos] = [p[slot].detach().clone() for p in model.parameters()]
    weight_count = sum(math.prod(w.shape[1:]) for w in model.weights)  # per run
    for result in results:
        if result["final"] is None:  # diverged: no final metrics to report
            result["final"] = dict.fromkeys(FINAL_METRICS)
            result["weights"] = {
                "count": weight_count,
                "l1_norm": None,
                "l2_norm": None,
                "near_zero_fraction": None,
                "zero_fraction": None,
                "near_zero_threshold": NEAR_ZERO,
            }
    return results, final_parameters


FINAL_METRICS = (
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "test_loss",
    "test_accuracy",
)
