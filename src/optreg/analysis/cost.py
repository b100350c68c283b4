"""What the study cost: CPU time, memory and wall time of its train jobs, per cell.

Every train job has a Snakemake `benchmark:` file, one TSV row written when the job ends:
`s` (wall seconds), `max_rss` (MiB, summed over the job's processes), `cpu_time` (user +
system seconds) among others. Snakemake samples memory and CPU once a second for the first
30 s of a job and every 30 s after, so a job's CPU time is what it had used at its last
sample (a lower bound, short by at most one interval), and a job that ends before the
first sample has `NA` for both; the table keeps those as missing rather than zero.

So a job's CPU time and peak memory come from the job itself where it wrote them: its
`usage.tsv` beside its records (`optreg.training.job.process_usage`: `getrusage` of the
job's process and its children at the end of the job, exact). The benchmark file gives the
wall time, and the CPU time and memory of a job without that file (one written by an older
version).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping

import pandas as pd

from optreg.io import atomic_path

# Wildcards of a train job that split one cell's work into several jobs: its seed block and,
# where the workflow has one, its phase. Costs are summed over them.
PER_JOB_WILDCARDS = ("block", "phase")


COST_COLUMNS = ["jobs", "wall_s", "cpu_s", "max_rss_mib"]


class BenchmarkError(ValueError):
    """A benchmark file that is missing its header or its row."""


def _number(text: str) -> float:
    text = text.strip()
    return math.nan if text in ("", "NA", "-") else float(text)


def read_benchmark(path: str | os.PathLike) -> dict[str, float]:
    """The last row of a Snakemake benchmark TSV as wall_s, cpu_s and max_rss_mib."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows or not {"s", "max_rss", "cpu_time"} <= set(rows[-1]):
        raise BenchmarkError(f"{path}: not a Snakemake benchmark file (no s/max_rss/cpu_time row)")
    row = rows[-1]  # with `repeat(...)` there is one row per repetition; the last one counts
    return {
        "wall_s": _number(row["s"]),
        "cpu_s": _number(row["cpu_time"]),
        "max_rss_mib": _number(row["max_rss"]),
    }


def read_usage(path: str | os.PathLike | None) -> dict[str, float]:
    """A train job's own `usage.tsv` (`optreg.training.job.process_usage`) as cpu_s and
    max_rss_mib; empty if it has none."""
    if path is None or not os.path.exists(path):
        return {}
    with open(path, newline="") as fh:
        row = list(csv.DictReader(fh, delimiter="\t"))[-1]
    return {"cpu_s": float(row["cpu_s"]), "max_rss_mib": float(row["max_rss_mib"])}


def cost_table(jobs: Iterable[Mapping]) -> pd.DataFrame:
    """One row per study cell: its train jobs, summed wall and CPU seconds, largest RSS.

    `jobs` holds one mapping per train job: `benchmark` (its file), `wildcards` (the
    job's wildcards; all but the per-job ones, seed block and phase, name the cell) and
    optionally `usage` (its `usage.tsv`: where it exists, its CPU time and memory).
    """
    records = []
    for job in jobs:
        wildcards = {k: str(v) for k, v in job["wildcards"].items()}
        key = {k: v for k, v in wildcards.items() if k not in PER_JOB_WILDCARDS}
        measured = {**read_benchmark(job["benchmark"]), **read_usage(job.get("usage"))}
        records.append({**key, **measured})
    if not records:
        return pd.DataFrame(columns=["study", "combination", *COST_COLUMNS])
    frame = pd.DataFrame.from_records(records)
    keys = [c for c in frame.columns if c not in ("wall_s", "cpu_s", "max_rss_mib")]
    table = frame.groupby(keys, sort=False, dropna=False).agg(
        jobs=("wall_s", "size"),
        wall_s=("wall_s", "sum"),
        # min_count=1: a cell whose jobs were all too short to sample stays missing, not 0.
        cpu_s=("cpu_s", lambda s: s.sum(min_count=1)),
        max_rss_mib=("max_rss_mib", "max"),
    )
    return table.reset_index().round({"wall_s": 2, "cpu_s": 2, "max_rss_mib": 1})


def write_cost(jobs: Iterable[Mapping], out: str | os.PathLike) -> pd.DataFrame:
    """Write the cost table to `out` (CSV, atomically) and return it."""
    table = cost_table(jobs)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    return table
