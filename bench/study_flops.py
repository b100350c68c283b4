"""A finished study's train-job CPU against its training arithmetic (issue 23, scope 3).

Usage: python bench/study_flops.py [--results results] [--config config/config.yaml]

Reads a finished study's results (its `results/studies/*/runs.csv`, `results/data/*.json` and
`results/cost.csv`, whose CPU seconds are each train job's own `getrusage`, children included)
and prints, per study and in all:

- the training FLOPs of its runs: per run, epochs trained x training samples x the products'
  FLOPs per sample (6·a·b per dense layer, 6·L_out·out·in·k per 1-D convolution,
  6·H·W·out·in·9 per 3x3 2-D convolution: forward and both backward products; elementwise work,
  validation and test passes uncounted), each run once (a run two protocols share, trained
  once, is counted once);
- those FLOPs in seconds at the matmul peak measured in this process (512x512 float32
  products, one thread, as train jobs run);
- the train jobs' CPU seconds and their ratio to the FLOP seconds: the issue's target is
  <= 2.5 for the default study (the study's CPU is its arithmetic).

Run it on an idle machine: the peak is measured here, the CPU seconds when the study ran.
A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import common  # noqa: F401  (this checkout's src first on the path)
import pandas as pd

TARGET = 2.5


def study_flops(results: Path, config: dict) -> pd.DataFrame:
    """Per study: its runs (each once) and their training FLOPs, each run's through its
    cell's own model (a study's `depth` or `width` replaces its problem's hidden layers)."""
    from optreg.study.flops import flops_per_sample
    from optreg.study.matrix import cells

    models = {(c.study, c.id): c.settings.model for c in cells(config)}
    metas = {
        json.loads(p.read_text())["dataset"]: json.loads(p.read_text())
        for p in (results / "data").glob("*.json")
    }
    rows, seen = [], set()
    for path in sorted((results / "studies").glob("*/runs.csv")):
        runs = pd.read_csv(path)
        study = path.parent.name
        flops, count = 0.0, 0
        for run in runs.itertuples():
            key = (run.settings_hash, run.seed, run.lr)
            if key in seen:
                continue
            seen.add(key)
            spec = config["problems"][run.problem]
            meta = metas[spec["dataset"]]
            train = meta["sizes"]["train"]
            if spec.get("train_size"):
                train = min(train, int(spec["train_size"]))
            model = models[study, run.combination]
            per_sample = flops_per_sample(model, meta["input_shape"], meta["n_classes"])
            if per_sample is None:
                raise SystemExit(f"{study}: no FLOP count for model {model.model!r}")
            flops += run.epochs_run * train * per_sample
            count += 1
        rows.append({"study": study, "runs": count, "flops": flops})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results", type=Path)
    parser.add_argument("--config", default="config/config.yaml")
    args = parser.parse_args()
    from optreg.study.validate import load_config

    config = load_config(args.config)
    table = study_flops(args.results, config)
    cost = pd.read_csv(args.results / "cost.csv").groupby("study")["cpu_s"].sum()
    table["cpu_s"] = table["study"].map(cost).fillna(0.0)
    import torch
    from peak_fraction import matmul_peak

    torch.set_num_threads(1)  # as train jobs run (threads.train: 1)
    peak = matmul_peak(7)
    table.loc[len(table)] = {
        "study": "all",
        "runs": table["runs"].sum(),
        "flops": table["flops"].sum(),
        "cpu_s": table["cpu_s"].sum(),
    }
    table["flop_s_at_peak"] = table["flops"] / peak
    table["cpu_per_flop_s"] = table["cpu_s"] / table["flop_s_at_peak"]
    print(f"matmul peak, one thread: {peak / 1e9:.1f} GFLOP per CPU second (512x512 float32)")
    print(f"{'study':26} {'runs':>6} {'TFLOP':>8} {'s at peak':>10} {'job CPU s':>10} {'ratio':>7}")
    for row in table.itertuples():
        print(
            f"{row.study:26} {row.runs:>6} {row.flops / 1e12:>8.2f} {row.flop_s_at_peak:>10.1f} "
            f"{row.cpu_s:>10.1f} {row.cpu_per_flop_s:>7.2f}"
        )
    total = table.iloc[-1]["cpu_per_flop_s"]
    verdict = "PASS" if total <= TARGET else "FAIL"
    print(f"train-job CPU / training FLOPs at peak: {total:.2f} (target <= {TARGET}): {verdict}")


if __name__ == "__main__":
    main()
