"""What progress lines and checkpoints cost a train job, measured side by side.

    python bench/long_jobs.py [--rounds 5] [--threads 1]

1. A job of the default study (config/config.yaml: the `tune-eval` job of its digits MLP
   cell with Adam and ReLU, `bench/common.py:default_digits_job`), the variants interleaved
   round by round and timed in CPU seconds of this process (other load on the machine
   inflates them all alike): `loop` (its tuning phase, every grid rate x the tuning seeds
   stacked for the cell's epochs, with no progress and no checkpoints: the loop as it was)
   against `loop+progress` (a line per epoch into a log file); `job` (the whole job through
   `run_job`, no checkpoint file) against `job+checkpoints` (checkpoints at the default
   `checkpoint.every_minutes`, which such a job never reaches: the loop's check between
   batches, and the finished job's records saved at the end).
2. What one checkpoint of a real-data preset costs: the largest stack of each preset's model
   (its tuning phase, params and Adam's two states), saved as a train job saves it; the time
   per save divided by the default interval is the share of a long job's time it takes.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import default_digits_job, job_kwargs, paired_ratio, prepare_for, study_config

from optreg.data.prepared import load_prepared
from optreg.study.matrix import cells
from optreg.training.checkpoint import Checkpoints
from optreg.training.job import run_job
from optreg.training.loop import train_runs
from optreg.training.models import build_model
from optreg.training.optimizers import build_optimizer
from optreg.training.progress import Progress
from optreg.training.watch import Watch

CPU = torch.device("cpu")
DEFAULT_MINUTES = study_config("config/config.yaml")["checkpoint"]["every_minutes"]


def job_cost(rounds: int, threads: int, tmp: Path) -> None:
    config = study_config("config/config.yaml")
    job = default_digits_job(config)
    cell = job.cell
    seeds = job.tuning_seeds
    lrs = [lr for _ in seeds for lr in cell.lr_grid]
    run_seeds = [s for s in seeds for _ in cell.lr_grid]
    data = load_prepared(prepare_for(config, "digits", tmp / "digits.pt"))
    handler = logging.FileHandler(tmp / "train.log")
    logging.getLogger("optreg").addHandler(handler)
    logging.getLogger("optreg").setLevel(logging.INFO)
    total = len(lrs) * cell.settings["epochs"]
    job_args = job_kwargs(job, data_path=tmp / "digits.pt", threads=threads)

    def run(name: str, index: int) -> None:
        if name == "loop":
            train_runs(data, cell.settings, lrs, run_seeds, CPU)
        elif name == "loop+progress":
            watch = Watch(Progress("bench", cell.id, total))
            train_runs(data, cell.settings, lrs, run_seeds, CPU, watch=watch)
        elif name == "job":
            run_job(out_dir=tmp / f"out-{index}", **job_args)
        else:  # the job as Snakemake runs it: checkpoints at the default interval
            checkpoint = tmp / f"ckpt-{index}.pt"
            run_job(
                out_dir=tmp / f"ckpt-{index}",
                checkpoint=checkpoint,
                checkpoint_minutes=DEFAULT_MINUTES,
                **job_args,
            )
            # Only the finished job's records: no checkpoint during the job.
            assert torch.load(checkpoint, weights_only=True)["finished"]

    names = ("loop", "loop+progress", "job", "job+checkpoints")
    cpu = {name: [] for name in names}
    run("loop", -1)  # warm-up
    for index in range(rounds):
        for name in names:
            start = time.process_time()
            run(name, index)
            cpu[name].append(time.process_time() - start)
    lines = len((tmp / "train.log").read_text().splitlines())
    print(
        f"default-study job {cell.id}: tuning {len(lrs)} runs x {cell.settings['epochs']} "
        f"epochs (loop), the whole tune-eval job (job); CPU seconds over {rounds} rounds"
    )
    pairs = {"loop+progress": "loop", "job+checkpoints": "job"}
    for name in names:
        line = f"  {name:16s} median {statistics.median(cpu[name]):7.3f} s"
        if name in pairs:
            base = pairs[name]
            ratio = paired_ratio(cpu[name], cpu[base])
            line += f"  vs {base}: {100 * (ratio - 1):+6.2f} % (median of per-round ratios)"
        print(line + "  [" + ", ".join(f"{c:.3f}" for c in cpu[name]) + "]")
    print(f"  ({lines} progress lines written)")
    # The cost of one line alone, far above the noise of whole jobs: many lines, timed.
    progress = Progress("bench", cell.id, 10**9)
    losses, accuracies = [0.5] * len(lrs), [0.9] * len(lrs)
    count = 20_000
    start = time.process_time()
    for epoch in range(count):
        progress.end_epoch(
            "tune", epoch, count, training=len(lrs), diverged=0,
            train_loss=losses, val_accuracy=accuracies, dropped=0,
        )  # fmt: skip
    per_line = (time.process_time() - start) / count
    job_lines = 2 * cell.settings["epochs"] + 3  # an epoch line per phase, start, end, more
    # What checkpointing at the default adds to a job that never reaches it: the check
    # between batches, and saving the finished job's records once.
    watch = Watch(progress, Checkpoints(tmp / "check.pt", "bench", 60 * DEFAULT_MINUTES))
    start = time.process_time()
    for _ in range(count):
        if time.monotonic() >= watch.due:
            raise AssertionError("not due")
    per_check = (time.process_time() - start) / count
    batches = (
        2 * cell.settings["epochs"] * -(-data.y["train"].numel() // cell.settings["batch_size"])
    )
    finished = tmp / "ckpt-0.pt"  # the finished checkpoint of the first round's job
    payload = torch.load(finished, weights_only=True)
    start = time.process_time()
    Checkpoints(tmp / "final.pt", "bench", None).save(
        {k: payload[k] for k in ("finished", "records")}
    )
    final_save = time.process_time() - start
    print(
        f"  default checkpointing: check between batches {1e6 * per_check:.2f} us x {batches} "
        f"batches + final save {1e3 * final_save:.1f} ms = "
        f"{100 * (batches * per_check + final_save) / statistics.median(cpu['job']):.3f} % "
        "of the job's CPU time"
    )
    print(
        f"  one progress line: {1e6 * per_line:.1f} us CPU; the job's {job_lines} lines: "
        f"{100 * job_lines * per_line / statistics.median(cpu['job']):.3f} % of its CPU time"
    )


def checkpoint_cost(tmp: Path) -> None:
    print(f"one checkpoint of each preset's largest stack (Adam), every {DEFAULT_MINUTES} min:")
    shapes = {"mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
    for preset in ("mnist", "fashion_mnist", "cifar10"):
        config = study_config(f"config/{preset}.yaml")
        cell = cells(config)[0]
        stack = len(cell.lr_grid) * len(config["protocol"]["tuning_seeds"])
        shape = shapes[cell.settings["data"]["dataset"]]
        meta = {"n_features": shape[0] * shape[1] * shape[2], "input_shape": shape, "n_classes": 10}
        model = build_model(cell.settings["model"], meta, "relu", list(range(stack)))
        optimizer = build_optimizer({"optimizer": "adam"}, model.parameters(), 0.001)
        params = [p.detach() for p in model.parameters()]
        state = {
            "stack": {
                "params": params,
                "optimizer": {
                    "steps": 1,
                    "state": {
                        "exp_avg": [torch.zeros_like(p) for p in params],
                        "exp_avg_sq": [torch.zeros_like(p) for p in params],
                    },
                },
            }
        }
        del optimizer
        checkpoints = Checkpoints(tmp / f"{preset}.pt", "bench", None)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            checkpoints.save(state)
            times.append(time.perf_counter() - start)
        size = (tmp / f"{preset}.pt").stat().st_size
        save = min(times)
        print(
            f"  {preset:14s} {stack:3d} runs  {size / 1e6:8.1f} MB  {save:6.3f} s per save"
            f"  = {100 * save / (60 * DEFAULT_MINUTES):.3f} % of a job's time"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        job_cost(args.rounds, args.threads, Path(tmp))
        checkpoint_cost(Path(tmp))


if __name__ == "__main__":
    main()
