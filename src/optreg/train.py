"""The training loop: all seeds of one combination trained together.

Data lives in tensors on the device and batches are index slices; each seed
has its own initialization and its own data order. A seed whose loss turns
non-finite is recorded as diverged at that epoch and dropped from the stack;
the others go on unaffected.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import math
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from . import __version__
from .checkpoint import Checkpoints, Interrupted, job_key
from .config import FUSED
from .data import Prepared, load_verified
from .io import canonical_hash
from .metrics import NEAR_ZERO, SCHEMA_VERSION, read_run, write_manifest, write_run
from .models import Stacked, build_model, derived_seed
from .optim import add_penalty_gradients, after_step, before_step, penalty, penalty_hooks
from .origin import code_origin
from .progress import Progress
from .protocol import Run, added_rates, extend_grid, plan_runs, select_lr
from .user_optim import build_optimizer, stack_limit, user_source

log = logging.getLogger("optreg.train")
progress_log = logging.getLogger("optreg.progress")


def resolve_device(device: str) -> torch.device:
    """'auto' picks CUDA when available; 'cuda' without a GPU is an error, not a silent fallback."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but torch sees no CUDA device")
    return torch.device(device)


# Share of the free memory that one stack's training may take: the rest is for the data,
# evaluation and whatever else runs on the machine.
STACK_SHARE = 0.5


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


class Watch:
    """Where a job's training loop reports between batches and after each epoch: progress
    lines (`optreg.progress`) and checkpoints (`optreg.checkpoint`, None: none are written).

    `due` is the monotonic time at which the loop must next call `between_batches`: the
    next progress line during a long epoch, the next checkpoint, or 0 after a signal.
    `job_state` is run_job's part of a checkpoint (phase, finished phases' records).
    """

    def __init__(self, progress: Progress, checkpoints: Checkpoints | None = None):
        self.progress, self.checkpoints = progress, checkpoints
        self.phase = ""
        self.job_state: dict = {}
        self.step_results: list = []
        self.step_started = time.perf_counter()

    @property
    def due(self) -> float:
        if self.checkpoints is None:
            return self.progress.due
        return min(self.progress.due, self.checkpoints.due)

    def start_stack(self, step_results: list) -> None:
        """A stack starts; `step_results`: the results of the phase's finished stacks."""
        self.step_results = step_results
        self.progress.start_epoch()

    def between_batches(self, epoch: int, epochs: int, end: int, n: int, snapshot) -> None:
        """After the batch that ends at sample `end` of `n`; `snapshot()` is the stack's state."""
        now, checkpoints = time.monotonic(), self.checkpoints
        where = f"{self.phase} epoch {epoch}/{epochs}, {end}/{n} samples"
        if checkpoints is not None and now >= checkpoints.due:
            started = time.perf_counter()
            checkpoints.save(
                {
                    **self.job_state,
                    "step_results": self.step_results,
                    "step_wall": time.perf_counter() - self.step_started,
                    "progress_done": self.progress.done,
                    "stack": snapshot(),
                }
            )
            if checkpoints.signum is not None:
                name = signal.Signals(checkpoints.signum).name
                log.warning(
                    "%s: checkpoint %s written at %s; stopping", name, checkpoints.path, where
                )
                raise Interrupted(checkpoints.signum, checkpoints.path)
            log.info(
                "checkpoint %s written at %s in %.2g s",
                checkpoints.path,
                where,
                time.perf_counter() - started,
            )
        if now >= self.progress.due:
            self.progress.during_epoch(self.phase, epoch, epochs, end, n)

    def end_epoch(self, epoch: int, epochs: int, **numbers) -> None:
        self.progress.end_epoch(self.phase, epoch, epochs, **numbers)


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


def free_memory(device: torch.device) -> int | None:
    """Bytes free for new tensors on `device`: CUDA's free memory, or the system's available
    memory (Linux's MemAvailable); None where neither can be read."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def bytes_per_run(data: Prepared, settings: dict, device: torch.device) -> int:
    """The memory one more run adds to a stack's training step, measured on a one-run stack.

    The tensors autograd keeps for the backward pass of one batch, twice (the backward pass
    makes gradients of about their size), plus the parameters, their gradients and two
    optimizer states. Measured rather than modelled, so it holds for every model.
    """
    model = build_model(settings["model"], data.meta, settings["activation"], [0]).to(device)
    batch = torch.arange(min(settings["batch_size"], len(data.y["train"])))
    xb, yb = data.x["train"][batch].to(device)[None], data.y["train"][batch].to(device)[None]
    saved: dict[int, int] = {}  # storage address -> bytes: views of one storage count once

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        _cross_entropy(model(xb), yb)
    parameters = sum(p.numel() * p.element_size() for p in model.parameters())
    return 2 * sum(saved.values()) + 4 * parameters


def max_stack(
    data: Prepared, settings: dict, device: torch.device, free_bytes: int | None = None
) -> int | None:
    """The most runs one stack may hold: their training takes at most STACK_SHARE of the free
    memory (`free_bytes`, else `free_memory`); at least 1; None when nothing limits it.

    Nothing else limits stacking: no setting couples the runs of a stack (optimizers and
    penalties act per run, each run has its own data order), so a job too large for the
    memory trains its runs in consecutive stacks with the same results.
    """
    free = free_memory(device) if free_bytes is None else free_bytes
    if free is None:
        return None
    return max(1, int(STACK_SHARE * free) // bytes_per_run(data, settings, device))


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


def provenance(device: torch.device, stacked: int, gpu_id: str | None = None) -> dict:
    """Versions and machine facts recorded with every run, including the device it used.

    `device` names the hardware (`cpu` or the GPU's model), `torch_device` is torch's name
    for it in the job (`cpu`, `cuda:1`), `gpu_id` the machine's id of that GPU (its index,
    or its CUDA_VISIBLE_DEVICES entry; null on the CPU).
    """
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": importlib.metadata.version("numpy"),
        "optreg": __version__,
        "code": code_origin(),
        "platform": platform.platform(),
        "host": platform.node(),
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "torch_device": str(device),
        "gpu_id": gpu_id,
        "torch_threads": torch.get_num_threads(),
        "stacked_seeds": stacked,
    }


def run_job(
    *,
    data_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    study: str,
    combination: str,
    factors: dict,
    settings: dict,
    phase: str,
    seeds,
    lr_grid,
    default_lr: float,
    tuning_seeds=(),
    tuning_files=(),
    lr_limits=(1e-5, 10.0),
    device: str = "cpu",
    threads: int = 1,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_minutes: float | None = None,
) -> list[Path]:
    """Train every run of one job (see `optreg.protocol`); write one metrics JSON per run.

    `phase` is `tune` (every grid rate on `seeds`), `eval` (`seeds` at the rate chosen from
    `tuning_files`, and at `default_lr`) or `tune-eval`: tune on `tuning_seeds`, choose from
    those runs, evaluate `seeds`, all in one process; the records are the same as those of a
    `tune` job followed by an `eval` job. Before evaluating, a best rate on an edge of the grid
    makes the job train the tuning seeds at further rates within `lr_limits` (see
    `optreg.protocol.extend_grid`); their records are tuning records of this job.
    The files appear together: they are written into a hidden temporary folder that
    is renamed to `out_dir` at the end, so a killed job leaves no `out_dir` at all.
    `threads` caps torch's threads: Snakemake's OMP_NUM_THREADS reaches torch only when
    the job runs under Snakemake. On CUDA the job trains on a GPU no concurrent job holds
    (`optreg.gpus`: Snakemake counts GPUs but does not assign them).
    With `checkpoint` (a file path, see `optreg.checkpoint`), the job saves its state there
    every `checkpoint_minutes` (None: never on a timer) and on SIGTERM or SIGINT, after which
    it raises `Interrupted`; a matching checkpoint found at the start is resumed. Once the
    job's files are written, the checkpoint holds only their records, marked finished (see
    `optreg.checkpoint.remove_finished`). Progress goes to `optreg.progress`.
    """
    from .gpus import hold_gpu  # only training claims GPUs

    torch.set_num_threads(threads)
    tuning = [read_run(f) for f in tuning_files]
    steps = [("tune", tuning_seeds), ("eval", seeds)] if phase == FUSED else [(phase, seeds)]
    records = []  # (file name, record)
    job = {"study": study, "combination": combination, "factors": factors, "settings": settings}
    dev = resolve_device(device)
    on_gpu = dev.type == "cuda"
    with hold_gpu(torch.cuda.device_count() if on_gpu else 0) as slot:
        if slot is not None:
            dev = torch.device("cuda", slot.index)
        data = load_verified(data_path, device=dev)
        job["data_sha256"] = data.sha256
        checkpoints, state = None, None
        if checkpoint is not None:
            key = job_key(
                {
                    **job,
                    "phase": phase,
                    "steps": steps,
                    "lr_grid": sorted(lr_grid),
                    "default_lr": default_lr,
                    "selection": select_lr(tuning) if tuning else None,
                    "device": dev.type,
                    "threads": threads,
                    **user_source(settings),
                }
            )
            every_s = None if checkpoint_minutes is None else 60 * checkpoint_minutes
            checkpoints = Checkpoints(checkpoint, key, every_s)
            state = checkpoints.load()
        if state and state.get("finished"):
            progress_log.info(
                "%s %s finished before, but its files were lost: writing them from checkpoint %s",
                study,
                combination,
                checkpoints.path,
            )
            records = [tuple(pair) for pair in json.loads(state["records"])]
            return _write_together(out_dir, records)
        # A resumed job keeps its stack size: the results would not change, its checkpoint would.
        limit = (
            state["limit"]
            if state
            else stack_limit(settings, data.meta, max_stack(data, settings, dev))
        )
        run_counts = [
            len(step_seeds) * (len(lr_grid) if step == "tune" else 2) for step, step_seeds in steps
        ]
        progress = Progress(study, combination, sum(run_counts) * settings["epochs"])
        stack = min(max(run_counts), limit or max(run_counts))
        progress_log.info(
            "%s %s start: %s %s runs, stacks of up to %d, %s epochs, device %s, %d threads, "
            "data %s",
            study,
            combination,
            phase,
            " + ".join(map(str, run_counts)),
            stack,
            settings["epochs"],
            dev,
            threads,
            data_path,
        )
        if state:
            records = [tuple(pair) for pair in json.loads(state["records"])]
            # The tuning runs: those of the tune files, and those this job trained (its own
            # tune step, or rates it added past the grid's edge), each (rate, seed) once.
            own = [record for _, record in records if record["phase"] == "tune"]
            tuning = list({(r["settings"]["lr"], r["seed"]): r for r in [*tuning, *own]}.values())
            progress.resumed(state["progress_done"])
            at = state["stack"]
            progress_log.info(
                "%s %s resuming from checkpoint %s: %s, %d runs done, epoch %d, %d samples in",
                study,
                combination,
                checkpoints.path,
                steps[state["step"]][0],
                len(state["step_results"]),
                at["epoch"],
                at["next_batch"],
            )
        watch = Watch(progress, checkpoints)
        gpu_id = slot.gpu_id if slot else None

        def _step_records(runs, step, selection, started, watch=None, resume=None):
            """Train `runs` and make their records. A run at the same rate and seed as another
            (a tuned rate equal to the default rate) is the same run: trained once, recorded
            under both names."""
            distinct = list(dict.fromkeys((r.lr, r.seed) for r in runs))
            lrs, run_seeds = [lr for lr, _ in distinct], [seed for _, seed in distinct]
            trained = train_runs(
                data, settings, lrs, run_seeds, dev, limit, watch=watch, resume=resume
            )
            by_run = dict(zip(distinct, trained, strict=True))
            wall = time.perf_counter() - started
            base = provenance(dev, min(len(distinct), limit or len(distinct)), gpu_id)
            return [
                (
                    run.filename,
                    run_record(
                        run,
                        by_run[(run.lr, run.seed)],
                        job=job,
                        phase=step,
                        selection=selection,
                        wall=wall,
                        provenance=base,
                    ),
                )
                for run in runs
            ]

        with checkpoints.on_signals() if checkpoints else contextlib.nullcontext():
            for index, (step, step_seeds) in enumerate(steps):
                if state and index < state["step"]:
                    continue
                extension = None
                if step == "eval":
                    # One extra tuning round per rate past the grid's edge, on the tuning seeds
                    # only (optreg.protocol.extend_grid); its runs are tuning records of this job.
                    seeds_tuned = sorted({r["seed"] for r in tuning})
                    added_records = []

                    def extra_round(lr, seeds_tuned=seeds_tuned, added_records=added_records):
                        extra = [Run(lr, s, None) for s in seeds_tuned]
                        new = _step_records(extra, "tune", None, time.perf_counter())
                        added_records += new
                        return [record for _, record in new]

                    tuning, _ = extend_grid(tuning, lr_limits, extra_round)
                    records += added_records
                    extension = {
                        "extended": added_rates(tuning, lr_grid),
                        "lr_limits": list(lr_limits),
                    }
                runs, selection = plan_runs(
                    step, step_seeds, lr_grid, default_lr, tuning, extension
                )
                resume = None
                if state and index == state["step"]:
                    resume = {"results": state["step_results"], "stack": state["stack"]}
                watch.phase = step
                watch.job_state = {
                    "step": index,
                    # As JSON, like the files: any record field survives weights-only loading.
                    "records": json.dumps(records),
                    "selection": selection,
                    "limit": limit,
                }
                watch.step_started = time.perf_counter() - (state["step_wall"] if resume else 0)
                step_records = _step_records(
                    runs, step, selection, watch.step_started, watch=watch, resume=resume
                )
                if step == "tune":
                    tuning = [record for _, record in step_records]  # what `eval` chooses from
                records += step_records
    written = _write_together(out_dir, records)
    if checkpoints is not None:
        # Kept until the workflow has the files (optreg.checkpoint.remove_finished): a job
        # stopped before Snakemake is done with it loses them, and writes them again from here.
        checkpoints.save({"finished": True, "records": json.dumps(records)})
    progress.finish(len(records), sum(record["diverged"] for _, record in records))
    return written


def run_record(
    run, result: dict, *, job: dict, phase: str, selection, wall: float, provenance: dict
) -> dict:
    """The metrics record of one run. `job`: the job's study, combination, factors, settings
    and data fingerprint (`data_sha256`); `provenance`: its machine and versions."""
    settings = {**job["settings"], "lr": run.lr}
    return {
        "schema_version": SCHEMA_VERSION,
        "study": job["study"],
        "combination": job["combination"],
        "factors": job["factors"],
        "settings": settings,
        "phase": phase,
        "protocol": run.protocol,
        "selection": selection if run.protocol == "tuned" else None,
        "seed": run.seed,
        **result,
        "wall_time_s": wall,
        "provenance": {
            **provenance,
            "settings_hash": canonical_hash({"settings": settings, "seed": run.seed}),
            "data_sha256": job["data_sha256"],
        },
    }


def _write_together(out_dir: str | os.PathLike, records) -> list[Path]:
    """Validate and write (file name, record) pairs into `out_dir`, all or none: into a
    hidden temporary folder first, renamed to `out_dir` once every file is written."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, record in records:
            write_run(tmp_dir / name, record)
        write_manifest(tmp_dir, [name for name, _ in records])
        os.chmod(tmp_dir, 0o755)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp_dir, out_dir)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return [out_dir / name for name, _ in records]
