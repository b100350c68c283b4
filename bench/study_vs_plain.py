"""The study through Snakemake against the same runs as a plain loop; its rerun, jobs, memory.

Usage: python bench/study_vs_plain.py [--plain-sample K | --plain-full] [--plain-threads 1]
                                      [--cores 8] [--config config/config.yaml]

Side by side, on this machine:

- the study of `--config` through Snakemake (`snakemake --cores N` on a fresh copy of the
  project in a temporary folder: data preparation, training, aggregation, figures, PDF)
  against the same training runs as a plain sequential loop in this process, the way the
  original notebooks did it (`optreg.training.reference.plain_run`: one run at a time, an
  `nn.Module` of the same architecture and initialization scheme, a `torch.optim`
  optimizer, the same epochs, batch size, rates and seeds, validation after every epoch,
  test at the end). `--plain-sample K` (default 3) times K runs of every cell and
  extrapolates by the cell's run count (and says so); `--plain-full` runs them all, tuning
  included. Target: study wall <= 0.35 x the plain loop's;
- a no-op rerun of the finished study (median of 3), target <= 2 s;
- the train jobs' wall time, CPU time and peak memory (Snakemake's benchmark files), and
  their CPU time against training the same runs in this process (`train_runs`).

A benchmark, not a test: its numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import common
import torch
from common import (
    ROOT,
    children_cpu,
    clock,
    copy_project,
    load_average,
    prepare_for,
    row,
    since,
    snakemake,
    timed,
    train_benchmark_rows,
)

from optreg.data.prepared import load_prepared
from optreg.records import read_run
from optreg.study.matrix import cells, jobs
from optreg.study.validate import load_config
from optreg.training.loop import train_runs
from optreg.training.protocol import plan_runs
from optreg.training.reference import plain_run

CPU = torch.device("cpu")


# ---------------------------------------------------------------- the plain loop
def cell_runs(config: dict, cell) -> list[tuple[float, int]]:
    """(rate, seed) of every run of a cell, tuned evaluation runs at the default rate.

    Only for timing a sample: a run costs the same arithmetic whatever its rate.
    """
    protocol = config["protocol"]
    tuning = [(lr, seed) for seed in protocol["tuning_seeds"] for lr in cell.lr_grid]
    evaluation = [(cell.default_lr, seed) for seed in protocol["evaluation_seeds"]]
    return tuning + 2 * evaluation  # tuned and one-shot


def plain_cell_full(config: dict, cell, data) -> int:
    """Every run of a cell: tune on the tuning seeds, choose the rate, evaluate both rates."""
    protocol = config["protocol"]
    tuning = []
    for lr in cell.lr_grid:
        for seed in protocol["tuning_seeds"]:
            result = plain_run(data, cell.settings, lr, seed)
            tuning.append(
                {"settings": {"lr": lr}, "seed": seed, "combination": cell.id}
                | {"final": result, "diverged": result["diverged"]}
            )
    runs, _ = plan_runs("eval", protocol["evaluation_seeds"], cell.lr_grid, cell.default_lr, tuning)
    for run in runs:
        plain_run(data, cell.settings, run.lr, run.seed)
    return len(tuning) + len(runs)


def plain_loop(config: dict, sample: int | None, data_dir: Path) -> dict:
    """Every run of `config` as a plain loop in this process: wall and CPU seconds.

    Includes preparing the datasets. With `sample`, times that many runs of each cell and
    scales their mean by the cell's run count.
    """
    start = clock()
    datasets = {}
    for cell in cells(config):
        name = cell.settings["data"]["dataset"]
        if name not in datasets:
            data = load_prepared(prepare_for(config, name, data_dir / f"{name}.pt"))
            data.x = {k: v.clone() for k, v in data.x.items()}  # in memory, not memory-mapped
            data.y = {k: v.clone() for k, v in data.y.items()}
            datasets[name] = data
    wall, cpu = since(start)
    runs = timed_runs = 0
    for cell in cells(config):
        data = datasets[cell.settings["data"]["dataset"]]
        start = clock()
        if sample is None:
            count = plain_cell_full(config, cell, data)
            scale, timed_count = 1.0, count
        else:
            specs = cell_runs(config, cell)
            chosen = [specs[int((i + 0.5) * len(specs) / sample)] for i in range(sample)]
            for lr, seed in chosen:
                plain_run(data, cell.settings, lr, seed)
            count, timed_count = len(specs), len(chosen)
            scale = count / timed_count
        cell_wall, cell_cpu = since(start)
        wall, cpu = wall + cell_wall * scale, cpu + cell_cpu * scale
        runs, timed_runs = runs + count, timed_runs + timed_count
    how = "all runs timed" if sample is None else f"EXTRAPOLATED from {sample} runs per cell"
    return {"wall": wall, "cpu": cpu, "runs": runs, "timed_runs": timed_runs, "how": how}


# ---------------------------------------------------------------- the study
def job_steps(folder: Path, grid) -> list[list[tuple[float, int]]]:
    """The (rate, seed) runs of each `train_runs` call a train job made, from its records:
    the grid's tuning runs, one round per rate added past the grid's edge, the evaluation
    runs (a tuned rate equal to the default rate is one run, recorded twice)."""
    records = [read_run(f) for f in sorted(folder.glob("*.json"))]
    tune = [r for r in records if r["phase"] == "tune"]
    on_grid = [r for r in tune if any(math.isclose(r["settings"]["lr"], g) for g in grid)]
    added = {}
    for r in tune:
        if r not in on_grid:
            added.setdefault(r["settings"]["lr"], []).append(r)
    evaluation = [r for r in records if r["phase"] == "eval"]
    steps = [on_grid, *added.values(), evaluation]
    runs = [list(dict.fromkeys((r["settings"]["lr"], r["seed"]) for r in step)) for step in steps]
    return [step for step in runs if step]


def in_process_training(work: Path, config: dict) -> dict:
    """The runs every train job of the finished study in `work` trained, trained again in
    this process by `train_runs`, job by job and step by step, in stacks of the size the job
    used (its records' `stacked_seeds`), on the study's prepared data: CPU seconds of
    training alone, none of a job's process start, imports, data loading or writing."""
    threads = torch.get_num_threads()
    torch.set_num_threads(config["threads"]["train"])
    datasets, cpu, runs, n_jobs = {}, 0.0, 0, 0
    try:
        for job in jobs(config):
            if not job.trains:
                continue  # its runs are another study's job's
            folder = work / "results" / "studies" / job.study / job.phase / job.cell.id
            folder = folder / f"seeds-{job.block}"
            name = job.cell.settings["data"]["dataset"]
            if name not in datasets:
                datasets[name] = load_prepared(work / "results" / "data" / f"{name}.pt")
            stacked = read_run(next(folder.glob("*.json")))["provenance"]["stacked_seeds"]
            for step in job_steps(folder, job.cell.lr_grid):
                lrs, seeds = [lr for lr, _ in step], [seed for _, seed in step]
                start = time.process_time()
                train_runs(datasets[name], job.cell.settings, lrs, seeds, CPU, stacked)
                cpu += time.process_time() - start
                runs += len(step)
            n_jobs += 1
    finally:
        torch.set_num_threads(threads)
    return {"cpu": cpu, "runs": runs, "jobs": n_jobs}


def run_study(config: Path, cores: int, repeats: int) -> dict:
    """The study on a fresh copy: wall and CPU seconds (all processes), then no-op reruns,
    then its train jobs' runs trained again in this process (`in_process_training`)."""
    with tempfile.TemporaryDirectory(prefix="optreg-perf-") as tmp:
        work = copy_project(Path(tmp), config)
        cpu = children_cpu()
        wall = timed(snakemake(cores), work)
        cpu = children_cpu() - cpu
        runs = len(list((work / "results" / "studies").rglob("*seed-*.json")))
        noop = statistics.median(timed(snakemake(cores), work) for _ in range(repeats))
        rows = train_benchmark_rows(work)
        usage = [
            float(line.split("\t")[0])
            for path in (work / "results" / "studies").rglob("usage.tsv")
            for line in path.read_text().splitlines()[1:2]
        ]
        in_process = in_process_training(work, load_config(str(config)))
    rss = [float(r["max_rss"]) for r in rows if r["max_rss"] != "NA"]
    sampled_cpu = sum(float(r["cpu_time"]) for r in rows if r["cpu_time"] != "NA")
    # Each job's own getrusage (usage.tsv) where every job wrote one; else Snakemake's samples.
    train_cpu = sum(usage) if len(usage) == len(rows) else sampled_cpu
    return {
        "sampled_cpu": sampled_cpu,
        "usage_jobs": len(usage),
        "in_process": in_process,
        "unsampled_jobs": sum(r["cpu_time"] == "NA" for r in rows),
        "train_cpu": train_cpu,
        "wall": wall,
        "cpu": cpu,
        "runs": runs,
        "noop": noop,
        "jobs": len(rows),
        "job_wall": statistics.median(float(r["s"]) for r in rows),
        "max_rss": max(rss) if rss else math.nan,
        "median_rss": statistics.median(rss) if rss else math.nan,
    }


# ---------------------------------------------------------------- the rows
def rows(
    config: dict, config_path: Path, cores: int, sample: int | None, plain_threads: int
) -> None:
    """The study against the plain loop, its no-op rerun, its train jobs' time and memory.

    `sample`: runs timed per cell of the plain loop (None: all of them)."""
    with tempfile.TemporaryDirectory(prefix="optreg-plain-") as tmp:
        torch.set_num_threads(plain_threads)
        plain = plain_loop(config, sample, Path(tmp))
    print(f"load average after the plain loop: {load_average()}", flush=True)
    study = run_study(config_path, cores, 3)
    ratio, cpu_ratio = study["wall"] / plain["wall"], study["cpu"] / plain["cpu"]
    row(
        f"plain loop, one process, {plain_threads} torch thread(s) ({plain['how']}: "
        f"{plain['timed_runs']} of {plain['runs']} runs timed)",
        f"{plain['wall']:.0f} s",
        f"CPU {plain['cpu']:.0f} s",
    )
    row(
        f"study through the PDF, snakemake --cores {cores} ({study['runs']} runs, "
        f"{study['jobs']} train jobs)",
        f"{study['wall']:.0f} s",
        f"CPU {study['cpu']:.0f} s; CPU ratio {cpu_ratio:.2f}",
        f"{ratio:.2f} (<= 0.35)",
        ratio <= 0.35,
    )
    row("no-op rerun (median of 3)", f"{study['noop']:.1f} s", "", "(<= 2 s)", study["noop"] <= 2)
    row(
        "train jobs: wall (median); CPU (sum, each job's getrusage in usage.tsv; "
        "Snakemake's samples beside it)",
        f"{study['job_wall']:.1f} s",
        f"CPU {study['train_cpu']:.0f} s ({study['usage_jobs']} of {study['jobs']} jobs' own); "
        f"sampled {study['sampled_cpu']:.0f} s",
    )
    trained = study["in_process"]
    ratio = study["train_cpu"] / trained["cpu"]
    unsampled = study["unsampled_jobs"]
    row(
        f"training phase: train jobs' CPU (sum) / the same {trained['runs']} runs' training CPU "
        f"in this process (train_runs, the jobs' stacks, {trained['jobs']} jobs)",
        f"{ratio:.2f}",
        f"jobs {study['train_cpu']:.0f} CPU s, in process {trained['cpu']:.0f} CPU s: "
        f"{(study['train_cpu'] - trained['cpu']) / trained['jobs']:.2f} CPU s a job around "
        "its training"
        + (
            f"; {unsampled} job(s) too short to sample, counted 0"
            if unsampled and study["usage_jobs"] < study["jobs"]
            else ""
        ),
    )
    row(
        "train job peak memory (max RSS: largest; median)",
        f"{study['max_rss']:.0f} MiB",
        f"median {study['median_rss']:.0f} MiB",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the plain loop (also bench/perf.py's)."""
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--plain-sample", type=int, default=3, metavar="K")
    how.add_argument("--plain-full", action="store_true")
    parser.add_argument(
        "--plain-threads",
        type=int,
        default=1,
        help="torch threads of the plain loop (1, the fastest for these small models)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--cores", type=int, default=8)
    common.table(parser, lambda args: rows_of(args))


def rows_of(args: argparse.Namespace) -> None:
    """`rows` as the command line (this file's or bench/perf.py's) asks for them."""
    sample = None if args.plain_full else args.plain_sample
    config_path = ROOT / args.config
    rows(common.study_config(args.config), config_path, args.cores, sample, args.plain_threads)


if __name__ == "__main__":
    main()
