"""Evaluation in chunks of several batches (`loop.EVAL_RUN_SAMPLES`) against a batch at a
time, side by side: `train_runs` on the default problem's 3x100 MLP (Adam, batch 64), the
same runs trained both ways, interleaved, CPU time of this process, one thread.

Usage: python bench/eval_chunks.py [--runs 1 5 21] [--epochs 10] [--repeats 5]
       [--config config/config.yaml]

"batch" sets `EVAL_RUN_SAMPLES` to 0 (one batch per forward, the evaluation before it was
chunked); "chunked" is the default. Prints the median over repetitions of chunked ÷ batch
CPU time within one repetition, the same for a second "batch" way (a control: the
ratio's noise), and the largest difference in any recorded metric (the
mean losses are float32 sums added up in another order). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import common
import peer
import torch
from common import interleaved, load_average, paired_ratio, prepare_for

from optreg.data.prepared import load_prepared
from optreg.training import loop

CPU = torch.device("cpu")


def largest_difference(a: list[dict], b: list[dict]) -> float:
    worst = 0.0
    for ra, rb in zip(a, b, strict=True):
        for ha, hb in zip(ra["history"], rb["history"], strict=True):
            for key, value in ha.items():
                if key != "elapsed_s" and isinstance(value, float):
                    worst = max(worst, abs(value - hb[key]))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 5, 21])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = common.study_config(args.config)
    print(f"load average at start: {load_average()}")
    with tempfile.TemporaryDirectory(prefix="optreg-eval-") as tmp:
        data = load_prepared(prepare_for(config, "mnist1d", Path(tmp) / "data.pt"))
    settings = peer.model_settings(config, "mlp", args.epochs)
    chunked = loop.EVAL_RUN_SAMPLES
    print("runs  chunked/batch CPU  batch again/batch  largest metric difference")
    for runs in args.runs:
        seeds, lrs = list(range(runs)), [settings["lr"]] * runs
        out = {}

        def way(budget: int, name: str, out=out, lrs=lrs, seeds=seeds):
            def run() -> float:
                loop.EVAL_RUN_SAMPLES = budget
                start = time.process_time()
                out[name] = loop.train_runs(data, settings, lrs, seeds, CPU)
                return time.process_time() - start

            return run

        # "batch again": the same as "batch", a control for the noise of the ratio.
        ways = {
            "batch": way(0, "batch"),
            "chunked": way(chunked, "chunked"),
            "batch again": way(0, "batch again"),
        }
        for fn in ways.values():  # warm up
            fn()
        times = interleaved(ways, args.repeats)
        loop.EVAL_RUN_SAMPLES = chunked
        ratio = paired_ratio(times["chunked"], times["batch"])
        control = paired_ratio(times["batch again"], times["batch"])
        diff = largest_difference(out["chunked"], out["batch"])
        print(f"{runs:4d}  {ratio:17.3f}  {control:19.3f}  {diff:.2e}")


if __name__ == "__main__":
    main()
