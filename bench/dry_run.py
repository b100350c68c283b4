"""`snakemake -n` on a generated matrix of over 10,000 runs.

Usage: python bench/dry_run.py [--config config/config.yaml] [--runs 10000] [--cores 8]
                               [--repeats 3]

The config with its studies replaced by one crossing 4 optimizers, 3 activations, 4
penalties and as many strengths as make over `--runs` runs, on a fresh copy of the project:
the median wall time of `repeats` dry runs (which parse the workflow, validate the config
and plan every job), target <= 10 s. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import tempfile
from pathlib import Path

import common
import yaml
from common import copy_project, row, snakemake, timed

from optreg.study.matrix import cells, jobs


def big_matrix(config: dict, runs: int) -> dict:
    """The config with its studies replaced by one crossing 4 optimizers, 3 activations,
    4 penalties and as many strengths as make over `runs` runs."""
    big = copy.deepcopy(config)
    per_cell = sum(j.runs for j in jobs(config)) / len(cells(config))
    n_strengths = math.ceil(runs / per_cell / (4 * 3 * 4))
    big["studies"] = {
        "matrix": {
            "factors": {
                "optimizer": ["sgd", "momentum", "rmsprop", "adam"],
                "activation": ["relu", "sigmoid", "tanh"],
                "penalty": ["l1", "l1_prox", "l2", "wd"],
                "strength": [round(1e-6 * (i + 1), 9) for i in range(n_strengths)],
            }
        }
    }
    big["max_runs"] = 10 * runs
    return big


def dry_run(config: dict, cores: int, repeats: int) -> tuple[float, int, int]:
    """Median seconds of `snakemake -n` on a fresh project with `config`; its runs and jobs."""
    with tempfile.TemporaryDirectory(prefix="optreg-dry-") as tmp:
        work = copy_project(Path(tmp))
        (work / "config" / "config.yaml").write_text(yaml.safe_dump(config))
        wall = statistics.median(timed(snakemake(cores, "-n"), work) for _ in range(repeats))
    trained = [j for j in jobs(config) if j.trains]
    return wall, sum(j.runs for j in trained), len(trained)


def rows(config: dict, cores: int, runs: int = 10_000, repeats: int = 3) -> None:
    dry, big_runs, big_jobs = dry_run(big_matrix(config, runs), cores, repeats)
    row(
        f"snakemake -n, {big_runs:,} runs in {big_jobs} train jobs",
        f"{dry:.1f} s",
        "",
        "(<= 10 s)",
        dry <= 10,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--runs", type=int, default=10_000, help="at least this many runs")
    parser.add_argument("--cores", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="dry runs timed")
    common.table(
        parser,
        lambda args: rows(common.study_config(args.config), args.cores, args.runs, args.repeats),
    )


if __name__ == "__main__":
    main()
