"""What a user's optimizer or model costs against the built-in path, side by side.

Usage: python bench/extensions.py [--runs 1 5 10] [--epochs 5] [--repeats 5]

On the digits MLP (64 hidden units, batch 64, ReLU, one torch thread as in a train job),
`optreg.training.loop.train_runs` trains the same runs (one learning rate, `runs` seeds) five ways:

- `hand-stacked`: the built-in StackedMLP with the built-in Adam (the study's path);
- `torch.func vmap`: the same architecture as a user model (examples/nn_model.py:
  `nn.Sequential` of `nn.Linear` layers) stacked by `torch.func` (stack_module_state,
  functional_call, vmap), built-in Adam;
- `torch.func one at a time`: that user model with `stack: loop` (runs one after the
  other, each in a stack of one);
- `hand-stacked, one at a time`: the built-in model and Adam, one run per stack (what
  the stacking saves);
- `torch.optim Adam`: the built-in model with `torch.optim:Adam` as a user optimizer (one
  run at a time, as every torch.optim optimizer is trained).

The ways take turns within a repetition, in an order rotated each repetition; each ratio
is the median over repetitions of (seconds of the way) / (seconds of hand-stacked) within
one repetition, in CPU time of this process (robust to other processes taking turns on
the cores), with the wall-time ratio beside it. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import torch
from common import ROOT, cpu_and_wall, interleaved, load_average, paired_ratio, prepared_digits

from optreg import extensions as extend
from optreg.data.prepared import load_prepared
from optreg.training.loop import train_runs

BASE = {
    "problem": "digits_mlp",
    "optimizer": "adam",
    "activation": "relu",
    "penalty": "none",
    "strength": 0.0,
    "momentum": 0.9,
    "batch_size": 64,
    "model": {"model": "mlp", "hidden": [64]},
    "data": {"dataset": "digits", "split_seed": 0},
}
USER_MODEL = {
    "model": "torch_mlp",
    "factory": "nn_model:mlp",
    "kwargs": {"hidden": [64]},
    "stack": "vmap",
}


def ways(epochs: int) -> dict[str, tuple[dict, bool]]:
    """name -> (settings, one run per stack)."""
    base = {**BASE, "epochs": epochs}
    return {
        "hand-stacked": (base, False),
        "torch.func vmap": ({**base, "model": USER_MODEL}, False),
        "torch.func one at a time": ({**base, "model": {**USER_MODEL, "stack": "loop"}}, True),
        "hand-stacked, one at a time": (base, True),
        "torch.optim Adam": (
            {**base, "optimizer_spec": {"class": "torch.optim:Adam", "kwargs": {}}},
            True,
        ),
    }


def timed(data, settings, runs: int, one_by_one: bool) -> tuple[float, float]:
    """(CPU, wall) seconds of training `runs` seeds at one rate."""
    seeds = list(range(runs))
    max_stack = 1 if one_by_one else None
    return cpu_and_wall(
        lambda: train_runs(data, settings, [0.001] * runs, seeds, torch.device("cpu"), max_stack)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    extend.use_path([ROOT / "examples"])
    print(f"cpus {os.cpu_count()}, torch {torch.__version__}, load {load_average()}")
    with tempfile.TemporaryDirectory() as tmp:
        data = load_prepared(prepared_digits(Path(tmp)))
    candidates = ways(args.epochs)
    for settings, one_by_one in candidates.values():  # warm up: imports, the vmap probe
        timed(data, {**settings, "epochs": 1}, 2, one_by_one)
    print("\n| runs | way | CPU s (median) | × hand-stacked, CPU | × hand-stacked, wall |")
    print("| --- | --- | --- | --- | --- |")
    for runs in args.runs:
        seconds = interleaved(
            {
                name: (lambda s=settings, o=one_by_one, r=runs: timed(data, s, r, o))
                for name, (settings, one_by_one) in candidates.items()
            },
            args.repeats,
        )
        base = seconds["hand-stacked"]
        for name, values in seconds.items():
            cpu_ratio = paired_ratio([s[0] for s in values], [b[0] for b in base])
            wall_ratio = paired_ratio([s[1] for s in values], [b[1] for b in base])
            cpu = statistics.median(s[0] for s in values)
            print(f"| {runs} | {name} | {cpu:.2f} | {cpu_ratio:.2f} | {wall_ratio:.2f} |")
    print(f"\nload at the end {load_average()}")


if __name__ == "__main__":
    main()
