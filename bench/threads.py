"""Effect of the thread setting on the default study's training phase.

Usage: python bench/threads.py [--config config/config.yaml] [--setups 2x1,2x2,8x1,16x2]

Each setup CORESxTHREADS runs `snakemake --cores CORES --until train` with config
`threads.train: THREADS` on a fresh copy of the project (the checkout's results/ is untouched)
and reports the wall time of the whole call (data preparation, about 3 s, included), the CPU
seconds and the largest memory of the train jobs (their benchmark files), how many jobs ran
at once and how many torch threads that is on this machine.

`16x2` on a 2-core machine is what `--cores 8` would run if train jobs did not cap torch's
threads (torch's default is one per core): 8 jobs at once, each with 2 threads. Snakemake
sets OMP_NUM_THREADS to a job's threads and `optreg.training.job.run_job` calls
`torch.set_num_threads(threads)`, so with the cap the same 8 jobs run one thread each (`8x1`).
A benchmark, not a test: its numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from common import copy_project, snakemake, timed, train_benchmark_rows


def train_benchmarks(work: Path) -> tuple[int, float, float]:
    """Train jobs, their summed CPU seconds and largest RSS (MiB), from benchmark files."""
    jobs, cpu, rss = 0, 0.0, 0.0
    for row in train_benchmark_rows(work):
        jobs += 1
        if row["cpu_time"] != "NA":
            cpu += float(row["cpu_time"])
            rss = max(rss, float(row["max_rss"]))
    return jobs, cpu, rss


def run_setup(config: str, cores: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="optreg-threads-") as tmp:
        work = copy_project(Path(tmp))
        (work / "threads.yaml").write_text(f"threads:\n  train: {threads}\n")
        cmd = snakemake(cores, "--until", "train", "--configfile", config, "threads.yaml")
        wall = timed(cmd, work)
        jobs, cpu, rss = train_benchmarks(work)
    return {"cores": cores, "threads": threads, "wall": wall, "jobs": jobs, "cpu": cpu, "rss": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--setups", default="2x1,2x2,8x1,16x2", help="CORESxTHREADS,...")
    args = parser.parse_args()
    setups = [tuple(int(n) for n in s.split("x")) for s in args.setups.split(",")]
    print(f"machine: {os.cpu_count()} CPUs; snakemake --until train; config {args.config}")
    print(
        f"{'--cores':>8}{'threads':>9}{'jobs at once':>14}{'torch threads':>15}"
        f"{'wall s':>9}{'train CPU s':>13}{'max RSS MiB':>13}{'train jobs':>12}",
        flush=True,
    )
    for cores, threads in setups:  # one row as each setup ends: the slow ones take long
        r = run_setup(args.config, cores, threads)
        at_once = cores // threads
        print(
            f"{cores:>8}{threads:>9}{at_once:>14}{at_once * threads:>15}"
            f"{r['wall']:>9.1f}{r['cpu']:>13.1f}{r['rss']:>13.0f}{r['jobs']:>12}",
            flush=True,
        )


if __name__ == "__main__":
    main()
