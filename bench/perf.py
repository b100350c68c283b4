"""Fast studies, measured: the project's costs next to the plain ways of doing the same work.

Usage: python bench/perf.py [--plain-sample K | --plain-full] [--cores 8] [--repeats 15]
                            [--config config/config.yaml] [--skip-study]

Runs, in one process and one table, the benchmarks that each file runs alone
(bench/README.md):

- bench/throughput.py: `train_runs` against a minimal PyTorch loop, 5 runs stacked against
  5 one by one (`--repeats` interleaved repetitions);
- bench/peak_fraction.py: training's fraction of the measured matmul peak, per model of the
  default problem (max(3, repeats / 5) repetitions);
- bench/train_imports.py: a train job's imports (5 processes);
- bench/dry_run.py: `snakemake -n` on a generated matrix of over 10,000 runs;
- bench/study_vs_plain.py (not with `--skip-study`): the study of `--config` through
  Snakemake against the same runs as a plain loop, its no-op rerun, the train jobs' time,
  CPU and memory.

A benchmark, not a test: its numbers depend on the machine and on what else runs on it;
the load average is printed at the start and at the end.
"""

from __future__ import annotations

import argparse

import common
import dry_run
import peak_fraction
import study_vs_plain
import throughput
import train_imports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    study_vs_plain.add_arguments(parser)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--cores", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=15, help="throughput repetitions")
    parser.add_argument("--skip-study", action="store_true", help="only the quick measurements")
    args = parser.parse_args()
    config = common.study_config(args.config)

    common.table_start()
    throughput.rows(config, args.repeats)
    peak_fraction.rows(config, max(3, args.repeats // 5))
    train_imports.rows(5)
    dry_run.rows(config, args.cores, runs=10_000, repeats=3)
    if not args.skip_study:
        study_vs_plain.rows_of(args)
    common.table_end()


if __name__ == "__main__":
    main()
