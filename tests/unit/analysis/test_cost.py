"""The cost table: Snakemake benchmark files of train jobs, summed per study cell."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import job_counts, snakemake

from optreg.analysis.cost import BenchmarkError, cost_table, read_benchmark, write_cost
from optreg.report.pdf import cell_labels, cost_section

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def bench(path, wall, rss, cpu):
    path.write_text(HEADER + f"{wall}\t0:00:0{int(wall)}\t{rss}\t1\t1\t1\t0\t0\t50\t{cpu}\n")
    return str(path)


def test_read_benchmark(tmp_path):
    row = read_benchmark(bench(tmp_path / "a.tsv", 2.5, 700.25, 1.75))
    assert row == {"wall_s": 2.5, "cpu_s": 1.75, "max_rss_mib": 700.25}
    # A job that ended before Snakemake's first sample has no memory or CPU figures.
    na = read_benchmark(bench(tmp_path / "b.tsv", 0.4, "NA", "NA"))
    assert na["wall_s"] == 0.4 and math.isnan(na["cpu_s"]) and math.isnan(na["max_rss_mib"])


def test_a_file_that_is_not_a_benchmark_is_named(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("s\th:m:s\n")
    with pytest.raises(BenchmarkError, match="bad.tsv"):
        read_benchmark(bad)


def test_cost_sums_a_cells_jobs_and_keeps_its_largest_memory(tmp_path):
    def job(name, wall, rss, cpu, **wildcards):
        return {"benchmark": bench(tmp_path / name, wall, rss, cpu), "wildcards": wildcards}

    jobs = [
        job("1", 2.0, 700, 1.5, study="opt", combination="a", block="0-4"),
        job("2", 3.0, 900, 2.5, study="opt", combination="a", block="5-9"),
        job("3", 1.0, 500, 0.5, study="opt", combination="b", block="0-4"),
        job("4", 0.5, "NA", "NA", study="reg", combination="a", block="0-4"),
    ]
    table = cost_table(jobs)
    assert list(table.columns) == ["study", "combination", "jobs", "wall_s", "cpu_s", "max_rss_mib"]
    rows = {(r.study, r.combination): r for r in table.itertuples()}
    assert (rows["opt", "a"].jobs, rows["opt", "a"].wall_s, rows["opt", "a"].cpu_s) == (2, 5, 4)
    assert rows["opt", "a"].max_rss_mib == 900 and rows["opt", "b"].jobs == 1
    # Unsampled jobs leave the figures missing rather than zero.
    assert math.isnan(rows["reg", "a"].cpu_s) and rows["reg", "a"].wall_s == 0.5


def test_a_jobs_own_usage_gives_its_cpu_and_memory(tmp_path):
    """A job's usage.tsv (getrusage at its end) replaces Snakemake's sampled CPU and memory;
    a job without one keeps its benchmark's figures."""
    usage = tmp_path / "usage.tsv"
    usage.write_text("cpu_s\tuser_s\tmax_rss_mib\n3.25\t3.0\t512.5\n")
    jobs = [
        {
            "benchmark": bench(tmp_path / "1", 2.0, 700, "NA"),
            "usage": str(usage),
            "wildcards": {"study": "s", "combination": "a"},
        },
        {
            "benchmark": bench(tmp_path / "2", 1.0, 300, 0.5),
            "usage": str(tmp_path / "missing.tsv"),
            "wildcards": {"study": "s", "combination": "b"},
        },
    ]
    rows = {r.combination: r for r in cost_table(jobs).itertuples()}
    assert (rows["a"].wall_s, rows["a"].cpu_s, rows["a"].max_rss_mib) == (2.0, 3.25, 512.5)
    assert (rows["b"].cpu_s, rows["b"].max_rss_mib) == (0.5, 300)


def test_phases_of_a_cell_are_summed_too(tmp_path):
    jobs = [
        {"benchmark": bench(tmp_path / p, 1.0, 100, 1.0), "wildcards": w}
        for p, w in [
            ("t", {"study": "s", "phase": "tune", "combination": "c", "block": "0-1"}),
            ("e", {"study": "s", "phase": "eval", "combination": "c", "block": "0-1"}),
        ]
    ]
    assert cost_table(jobs)[["study", "combination", "jobs"]].values.tolist() == [["s", "c", 2]]


def test_write_cost_without_jobs_writes_the_header(tmp_path):
    out = tmp_path / "cost.csv"
    write_cost([], out)
    assert out.read_text().strip() == "study,combination,jobs,wall_s,cpu_s,max_rss_mib"


@pytest.mark.workflow
def test_cost_rule_on_the_smoke_study(smoke_clone):
    # Part of the default run (the report shows it); rebuilt alone, it retrains nothing.
    (smoke_clone / "results" / "cost.csv").unlink()
    proc = snakemake(smoke_clone, "results/cost.csv")
    assert job_counts(proc.stdout + proc.stderr) == {"cost": 1}
    table = pd.read_csv(smoke_clone / "results" / "cost.csv")
    benchmarks = list((smoke_clone / "results" / "benchmarks" / "train").rglob("*.tsv"))
    assert benchmarks and table["jobs"].sum() == len(benchmarks)
    assert not table.duplicated(["study", "combination"]).any()
    assert (table["wall_s"] > 0).all() and (table["max_rss_mib"].dropna() > 0).all()


def test_report_cost_section_labels_cells_sorts_by_cpu_and_totals_studies(tmp_path):
    runs = tmp_path / "runs.csv"
    pd.DataFrame(
        {"combination": ["a", "b", "a"], "optimizer": ["adam", "sgd", "adam"], "lr": [1, 1, 2]}
    ).to_csv(runs, index=False)
    cost = tmp_path / "cost.csv"
    pd.DataFrame(
        {
            "study": ["s", "s"],
            "combination": ["a", "b"],
            "jobs": [2, 2],
            "wall_s": [3.0, 5.0],
            "cpu_s": [2.5, float("nan")],  # b's jobs ended before their first sample
            "max_rss_mib": [400.0, 500.0],
        }
    ).to_csv(cost, index=False)
    section = cost_section(cost, {"s": cell_labels(pd.read_csv(runs), ["optimizer"])})
    assert [(r["cell"], r["cpu_s"]) for r in section["rows"]] == [("adam", "2.5"), ("sgd", "–")]
    assert section["studies"] == [
        {
            "study": "s",
            "jobs": 4,
            "wall_s": "8.0",
            "cpu_s": "2.5",
            "max_rss_mib": "500",
            "unsampled_cells": 1,
        }
    ]
