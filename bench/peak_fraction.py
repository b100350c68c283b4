"""Training's fraction of the measured matmul peak, for every model of the default problem.

Usage: python bench/peak_fraction.py [--config config/config.yaml] [--repeats 3]

For each model the studies give the default problem (`bench/common.py:default_cells`: the
optimization study's depths), a cell's tuning stack (each tuning seed at every grid rate, all
at the cell's default rate so that none diverges and drops out of the count) is trained for
10 epochs with the config's `threads.train` torch threads. The MLP's training FLOPs (6·a·b
per layer and sample: forward and both backward products; elementwise work and the
validation pass uncounted, though their time is in) ÷ CPU seconds ÷ the matmul peak measured
in the same process between repetitions (512×512 float32 products); the median over
repetitions, target >= 0.35. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import common
import torch
from common import default_cells, prepare_for, row

from optreg.data.prepared import load_prepared
from optreg.study.flops import flops_per_sample
from optreg.training.loop import train_runs

CPU = torch.device("cpu")


def matmul_peak(repeats: int, size: int = 512) -> float:
    """Measured matmul peak of this process (FLOP per CPU second): the median of `repeats`
    products of two size x size float32 matrices, each timed by CPU time."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    rates = []
    for _ in range(repeats):
        cpu = time.process_time()
        for _ in range(10):
            torch.mm(a, b)
        rates.append(10 * 2 * size**3 / (time.process_time() - cpu))
    return statistics.median(rates)


def peak_fraction_row(data, settings: dict, seeds: list[int], repeats: int) -> None:
    """Training FLOPs / CPU time / the matmul peak measured in this run, one run per entry
    of `seeds` stacked as a study's job stacks them (a tuning stack: each tuning seed once
    per grid rate; here all at the cell's default rate, so that none diverges and drops out
    of the FLOP count); CPU time includes each epoch's validation pass."""
    if settings["model"]["model"] != "mlp":
        return
    lrs = [settings["lr"]] * len(seeds)
    train_runs(data, settings, lrs, seeds, CPU)  # warm up
    fractions = []
    for _ in range(repeats):
        peak = matmul_peak(3)
        cpu = time.process_time()
        train_runs(data, settings, lrs, seeds, CPU)
        seconds = time.process_time() - cpu
        meta = data.meta
        flops = flops_per_sample(settings["model"], meta["input_shape"], meta["n_classes"])
        flops *= len(seeds) * settings["epochs"] * len(data.y["train"])
        fractions.append(flops / seconds / peak)
    fraction = statistics.median(fractions)
    row(
        f"training / matmul peak, {settings['problem']} {settings['model']['hidden']}, "
        f"{len(seeds)} runs stacked",
        f"{100 * fraction:.0f}% of peak",
        f"peak {matmul_peak(5) / 1e9:.0f} GFLOP/CPU s (512x512 matmul)",
        f"{fraction:.2f} (>= 0.35)",
        fraction >= 0.35,
    )


def rows(config: dict, repeats: int) -> None:
    """The fraction of matmul peak for every model of the default problem."""
    torch.set_num_threads(config["threads"]["train"])
    models = default_cells(config)
    cell = models[0]
    # The runs of one cell's tuning stack: each tuning seed at every grid rate.
    seeds = list(config["protocol"]["tuning_seeds"]) * len(cell.lr_grid)
    with tempfile.TemporaryDirectory(prefix="optreg-perf-data-") as tmp:
        path = prepare_for(config, cell.settings["data"]["dataset"], Path(tmp) / "data.pt")
        prepared = load_prepared(path)
        for model in models:
            model_settings = {**model.settings, "lr": model.default_lr, "epochs": 10}
            peak_fraction_row(prepared, model_settings, seeds, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--repeats", type=int, default=3, help="timed stacks per model")
    common.table(parser, lambda args: rows(common.study_config(args.config), args.repeats))


if __name__ == "__main__":
    main()
