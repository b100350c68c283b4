"""What the benchmarks share: fresh copies of the project, timing, interleaved repetitions,
child processes and their CPU time, prepared data, train jobs' arguments, the results table.

Importing it puts this checkout's `src` first on the module path, so that a benchmark
measures the code beside it whatever is installed. Importing it loads neither torch nor
optreg (the functions that need them import them), so that the benchmarks that only run
Snakemake stay light.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# What a fresh copy of the project needs to run the workflow (no results).
COPIED = ("workflow", "scripts", "config", "envs", "profiles", "src")
# The config keys of `data:` that `prepare` takes, as the workflow passes them.
SPLIT_KEYS = ("split_seed", "validation_fraction", "test_fraction")


# ---------------------------------------------------------------- the machine, the table
def load_average() -> str:
    """The 1-, 5- and 15-minute load averages."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def table_start() -> None:
    """The machine (CPUs, torch, Python, load average) and the header of the results table."""
    import torch

    print(
        f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, Python "
        f"{sys.version.split()[0]}; load average at start: {load_average()}"
    )
    print("| measurement | value | reference | ratio (target) | result |")
    print("| --- | --- | --- | --- | --- |", flush=True)


def row(name: str, value: str, reference: str = "", ratio: str = "", target=None) -> None:
    """One row of the results table; `target` (a bool, or None: no target) is PASS or MISS."""
    verdict = "" if target is None else ("PASS" if target else "MISS")
    print(f"| {name} | {value} | {reference} | {ratio} | {verdict} |", flush=True)


def table_end() -> None:
    """The line after the results table: the load average at the end."""
    print(f"load average at end: {load_average()}")


def table(parser: argparse.ArgumentParser, rows: Callable[[argparse.Namespace], None]) -> None:
    """A benchmark run alone: its command line parsed, then its results table (the machine
    and the header, `rows(args)`, the load average at the end)."""
    args = parser.parse_args()
    table_start()
    rows(args)
    table_end()


def study_config(path: str) -> dict:
    """The validated config at `path` (relative to the checkout)."""
    from optreg.study.validate import load_config

    return load_config(str(ROOT / path))


# ---------------------------------------------------------------- the project, Snakemake
def copy_project(dest: Path, config: Path | None = None) -> Path:
    """The workflow, its code and config in `dest` (no results); `config` as the default."""
    for name in COPIED:
        shutil.copytree(ROOT / name, dest / name, symlinks=True)
    if config is not None:
        shutil.copy(config, dest / "config" / "config.yaml")
    return dest


def snakemake(cores: int, *args: str) -> list[str]:
    """The command line of Snakemake, run by this Python, with `cores` and `args`."""
    return [sys.executable, "-m", "snakemake", "--cores", str(cores), *args]


def timed(cmd: list[str], cwd: Path) -> float:
    """Wall seconds of a command that must succeed (its output is shown only if it fails)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return wall


def train_benchmark_rows(work: Path) -> list[dict]:
    """The last row of every train job's Snakemake benchmark file in the project `work`."""
    rows = []
    for path in sorted((work / "results" / "benchmarks" / "train").rglob("*.tsv")):
        with open(path, newline="") as fh:
            rows.append(list(csv.DictReader(fh, delimiter="\t"))[-1])
    return rows


# ---------------------------------------------------------------- time, CPU time
def clock() -> tuple[float, float]:
    """(wall, CPU) seconds of this process, to subtract."""
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    """(wall, CPU) seconds of this process since `start` (a `clock()`)."""
    now = clock()
    return now[0] - start[0], now[1] - start[1]


def cpu_and_wall(fn: Callable[[], Any]) -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) of one call of `fn`."""
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def children_cpu() -> float:
    """CPU seconds of every finished child process and their waited-for descendants."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def checkout_env() -> dict:
    """This process's environment with this checkout's `src` first on PYTHONPATH: what a
    child Python needs to import the code beside the benchmark."""
    paths = [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


@dataclass
class Child:
    """A finished child process: exit status, wall and CPU seconds, its output."""

    returncode: int
    wall: float
    cpu: float  # user + system, of the child and its waited-for descendants (wait4)
    stdout: str
    stderr: str


def run_child(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> Child:
    """Run `cmd` to its end; its own CPU time comes from `wait4`, whatever else this
    process's other children used."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # so that Popen does not wait again
        out.seek(0)
        err.seek(0)
        return Child(proc.returncode, wall, usage.ru_utime + usage.ru_stime, out.read(), err.read())


def python_child(code: str, *args: str, what: str, env: dict | None = None) -> Child:
    """`python -c code args` run to its end; exits naming `what`, with the end of its
    stderr, if it fails."""
    child = run_child([sys.executable, "-c", code, *args], env=env)
    if child.returncode != 0:
        sys.exit(f"{what} failed ({child.returncode}):\n{child.stderr[-3000:]}")
    return child


# ---------------------------------------------------------------- repetitions
def interleaved(ways: dict[str, Callable[[], Any]], repeats: int, rotate: bool = True) -> dict:
    """Each way's results (name -> one result per repetition) over `repeats` repetitions in
    which the ways take turns: in an order rotated each repetition (`rotate=False`: always
    in the given order), so that a drift in the machine's load falls on all of them."""
    names = list(ways)
    results: dict[str, list] = {name: [] for name in names}
    for rep in range(repeats):
        shift = rep % len(names) if rotate else 0
        for name in names[shift:] + names[:shift]:
            results[name].append(ways[name]())
    return results


def paired_ratio(a: list[float], b: list[float]) -> float:
    """Median over repetitions of a / b: the load drifts less within one repetition."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


# ---------------------------------------------------------------- data, train jobs
def prepare_for(config: dict, dataset: str, path: Path) -> Path:
    """`dataset` prepared at `path` as the workflow prepares it for `config` (its split and
    MNIST-1D generation arguments)."""
    from optreg.data.prepare import prepare

    split = {k: config["data"][k] for k in SPLIT_KEYS}
    prepare(dataset, path, **split, generation=config["data"]["mnist1d"])
    return path


def prepared_digits(folder: Path) -> Path:
    """The digits data set prepared in `folder` (split seed 0, the default fractions)."""
    from optreg.data.prepare import prepare

    path = folder / "digits.pt"
    prepare("digits", path, split_seed=0)
    return path


def default_digits_job(config: dict):
    """The `tune-eval` job of the default study's digits MLP cell with Adam and ReLU, no
    penalty (a whole grid of rates on the tuning seeds, then the evaluation seeds)."""
    from optreg.study.matrix import jobs

    wanted = {"problem": "digits_mlp", "optimizer": "adam", "activation": "relu"}
    for job in jobs(config):
        settings = job.cell.settings
        if (
            job.phase == "tune-eval"
            and job.trains
            and settings["penalty"] == "none"
            and all(settings[k] == v for k, v in wanted.items())
        ):
            return job
    sys.exit("the config has no tune-eval job of digits_mlp with adam, relu and no penalty")


def job_kwargs(job, **overrides) -> dict:
    """The arguments of `optreg.training.job.run_job` that Snakemake gives `job` (its cell,
    phase, seeds and grid), with `overrides` (the data, the output folder, the device...)."""
    return {
        "study": job.study,
        "combination": job.cell.id,
        "factors": job.cell.factors,
        "settings": job.cell.settings,
        "phase": job.phase,
        "seeds": list(job.seeds),
        "tuning_seeds": list(job.tuning_seeds),
        "lr_grid": list(job.cell.lr_grid),
        "default_lr": job.cell.default_lr,
        **overrides,
    }


def default_cells(config: dict) -> list:
    """The cells of the default problem, optimizer, activation and penalty: one per model
    the studies give that problem (the optimization study's depths)."""
    from optreg.study.matrix import cells

    defaults = config["defaults"]
    keys = ("problem", "optimizer", "activation", "penalty")
    found = [c for c in cells(config) if all(c.settings[k] == defaults[k] for k in keys)]
    models = {}
    for cell in found:
        models.setdefault(repr(cell.settings["model"]), cell)
    return list(models.values()) or cells(config)[:1]
