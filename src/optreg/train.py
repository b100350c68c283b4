"""The training loop: all seeds of one combination trained together.

Data lives in tensors on the device and batches are index slices; each seed
has its own initialization and its own data order. A seed whose loss turns
non-finite is recorded as diverged at that epoch and dropped from the stack;
the others go on unaffected.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from . import __version__
from .data import Prepared, load_prepared
from .io import canonical_hash
from .metrics import NEAR_ZERO, SCHEMA_VERSION, read_run, write_run
from .models import Stacked, build_model, derived_seed
from .optim import after_step, before_step, build_optimizer, penalty
from .protocol import plan_runs


def resolve_device(device: str) -> torch.device:
    """'auto' picks CUDA when available; 'cuda' without a GPU is an error, not a silent fallback."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but torch sees no CUDA device")
    return torch.device(device)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


@torch.no_grad()
def _evaluate(model: Stacked, x: torch.Tensor, y: torch.Tensor):
    """Per-seed mean cross-entropy and accuracy on a whole split."""
    logits = model(x)
    stack = logits.shape[0]
    loss = F.cross_entropy(logits.flatten(0, 1), y.repeat(stack), reduction="none")
    accuracy = (logits.argmax(-1) == y).float().mean(1)
    return loss.view(stack, -1).mean(1), accuracy


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


def train_runs(data: Prepared, settings: dict, lrs, seeds, device: torch.device) -> list[dict]:
    """Train one cell for every (learning rate, seed) pair, all as one stacked model.

    Returns one result per run, each holding `history`, `final`, `weights`, `diverged`
    and `diverged_epoch`. Runs that share a seed share their initialization and data
    order, so runs at different learning rates differ in nothing else.
    """
    seeds = list(seeds)
    x_train, y_train = data.x["train"].to(device), data.y["train"].to(device)
    x_val, y_val = data.x["val"].to(device), data.y["val"].to(device)
    model = build_model(settings["model"], data.meta, settings["activation"], seeds).to(device)
    optimizer = build_optimizer(
        settings["optimizer"], model.parameters(), list(lrs), settings["momentum"]
    )
    kind, strength = settings["penalty"], settings["strength"]
    distinct = sorted(set(seeds))
    orders = [torch.Generator().manual_seed(derived_seed(s, "order")) for s in distinct]
    order_of = torch.tensor([distinct.index(s) for s in seeds])  # run -> its seed's shuffle
    alive = list(range(len(seeds)))  # positions in `seeds` still in the stack
    results = [
        {"history": [], "diverged": False, "diverged_epoch": None, "final": None, "weights": None}
        for _ in seeds
    ]
    n, batch_size = len(y_train), settings["batch_size"]
    start = time.perf_counter()

    for epoch in range(1, settings["epochs"] + 1):
        shuffles = torch.stack([torch.randperm(n, generator=g) for g in orders])
        perms = shuffles[order_of[alive]].to(device)
        loss_sum = torch.zeros(len(alive), device=device)
        correct = torch.zeros(len(alive), device=device)
        for first in range(0, n, batch_size):
            idx = perms[:, first : first + batch_size]
            xb, yb = x_train[idx], y_train[idx]
            logits = model(xb)
            data_loss = (
                F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="none")
                .view(len(alive), -1)
                .mean(1)
            )
            loss = data_loss + penalty(model.weights, kind, strength)
            optimizer.zero_grad()
            loss.sum().backward()
            before_step(model.weights, kind, strength, optimizer.lr)
            optimizer.step()
            after_step(model.weights, kind, strength, optimizer.lr)
            with torch.no_grad():
                loss_sum += data_loss * idx.shape[1]
                correct += (logits.argmax(-1) == yb).sum(1)
        val_loss, val_acc = _evaluate(model, x_val, y_val)
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
        if not all(finite):
            mask = torch.tensor(finite, device=device)
            model.keep(mask)
            optimizer.keep(mask, model.parameters())
            alive = [pos for pos, ok in zip(alive, finite, strict=True) if ok]
            if not alive:
                break

    if alive:
        test_loss, test_acc = _evaluate(model, data.x["test"].to(device), data.y["test"].to(device))
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
    weight_count = sum(p[0].numel() for p in model.weights) if alive else None
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
                "count": weight_count or 0,
                "l1_norm": None,
                "l2_norm": None,
                "near_zero_fraction": None,
                "zero_fraction": None,
                "near_zero_threshold": NEAR_ZERO,
            }
    return results


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
    tuning_files=(),
    device: str = "cpu",
    threads: int = 1,
) -> list[Path]:
    """Train every run of one job (see `optreg.protocol`); write one metrics JSON per run.

    The files appear together: they are written into a hidden temporary folder that
    is renamed to `out_dir` at the end, so a killed job leaves no `out_dir` at all.
    `threads` caps torch's threads: Snakemake's OMP_NUM_THREADS reaches torch only when
    the job runs under Snakemake. On CUDA the job trains on a GPU no concurrent job holds
    (`optreg.gpus`: Snakemake counts GPUs but does not assign them).
    """
    from .gpus import hold_gpu  # only training claims GPUs

    torch.set_num_threads(threads)
    tuning = [read_run(f) for f in tuning_files]
    runs, selection = plan_runs(phase, seeds, lr_grid, default_lr, tuning)
    dev = resolve_device(device)
    on_gpu = dev.type == "cuda"
    with hold_gpu(torch.cuda.device_count() if on_gpu else 0) as slot:
        if slot is not None:
            dev = torch.device("cuda", slot.index)
        data = load_prepared(data_path, device=dev)
        start = time.perf_counter()
        results = train_runs(data, settings, [r.lr for r in runs], [r.seed for r in runs], dev)
        wall = time.perf_counter() - start
    base = provenance(dev, len(runs), slot.gpu_id if slot else None)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for run, result in zip(runs, results, strict=True):
            run_settings = {**settings, "lr": run.lr}
            record = {
                "schema_version": SCHEMA_VERSION,
                "study": study,
                "combination": combination,
                "factors": factors,
                "settings": run_settings,
                "phase": phase,
                "protocol": run.protocol,
                "selection": selection if run.protocol == "tuned" else None,
                "seed": run.seed,
                **result,
                "wall_time_s": wall,
                "provenance": {
                    **base,
                    "settings_hash": canonical_hash({"settings": run_settings, "seed": run.seed}),
                    "data_sha256": data.sha256,
                },
            }
            write_run(tmp_dir / run.filename, record)
        os.chmod(tmp_dir, 0o755)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp_dir, out_dir)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return [out_dir / r.filename for r in runs]
