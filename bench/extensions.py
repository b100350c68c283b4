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
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from optreg import extensions as extend  # noqa: E402
from optreg.data.prepare import prepare  # noqa: E402
from optreg.data.prepared import load_prepared  # noqa: E402
from optreg.training.loop import train_runs  # noqa: E402

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
    seeds = list(range(runs))
    cpu, wall = time.process_time(), time.perf_counter()
    train_runs(
        data, settings, [0.001] * runs, seeds, torch.device("cpu"), 1 if one_by_one else None
    )
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    extend.use_path([ROOT / "examples"])
    print(f"cpus {os.cpu_count()}, torch {torch.__version__}, load {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        prepare("digits", Path(tmp) / "digits.pt")
        data = load_prepared(Path(tmp) / "digits.pt")
    candidates = ways(args.epochs)
    for settings, one_by_one in candidates.values():  # warm up: imports, the vmap probe
        timed(data, {**settings, "epochs": 1}, 2, one_by_one)
    print("\n| runs | way | CPU s (median) | × hand-stacked, CPU | × hand-stacked, wall |")
    print("| --- | --- | --- | --- | --- |")
    names = list(candidates)
    for runs in args.runs:
        seconds: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
        for r in range(args.repeats):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                settings, one_by_one = candidates[name]
                seconds[name].append(timed(data, settings, runs, one_by_one))
        base = seconds["hand-stacked"]
        for name in names:
            cpu_ratio = statistics.median(
                s[0] / b[0] for s, b in zip(seconds[name], base, strict=True)
            )
            wall_ratio = statistics.median(
                s[1] / b[1] for s, b in zip(seconds[name], base, strict=True)
            )
            cpu = statistics.median(s[0] for s in seconds[name])
            print(f"| {runs} | {name} | {cpu:.2f} | {cpu_ratio:.2f} | {wall_ratio:.2f} |")
    print(f"\nload at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
