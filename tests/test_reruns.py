"""What reruns after a change, determinism, crash safety and the workflow lock.

Every test works on a private copy of the finished smoke study.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import copy_project, dry_run, snakemake

pytestmark = pytest.mark.workflow
TRAIN_JOBS = 15  # the smoke study: 15 cells, each tuned and evaluated in one job


def edit(path: Path) -> None:
    """A real change to a source file (a comment: behaviour stays the same)."""
    time.sleep(0.01)
    path.write_text(path.read_text() + "\n# edited by a test\n")


def test_clone_of_finished_study_is_up_to_date(smoke_clone):
    assert dry_run(smoke_clone) == {}


def test_editing_a_plot_module_reruns_only_figures_and_report(smoke_clone):
    edit(smoke_clone / "src" / "optreg" / "plots.py")
    assert set(dry_run(smoke_clone)) == {"plot", "report", "all"}


def test_editing_the_training_loop_reruns_every_train_job(smoke_clone):
    edit(smoke_clone / "src" / "optreg" / "train.py")
    counts = dry_run(smoke_clone)
    assert counts["train"] == TRAIN_JOBS and counts["report"] == 1 and counts["summarize"] == 3
    assert "prepare_data" not in counts


def test_editing_the_model_reruns_every_train_job(smoke_clone):
    edit(smoke_clone / "src" / "optreg" / "models.py")
    counts = dry_run(smoke_clone)
    assert counts["train"] == TRAIN_JOBS and "prepare_data" not in counts


def test_editing_the_report_template_reruns_only_the_report(smoke_clone):
    edit(smoke_clone / "workflow" / "report" / "report.typ")
    assert dry_run(smoke_clone) == {"report": 1, "all": 1}


def test_editing_the_statistics_skips_training(smoke_clone):
    edit(smoke_clone / "src" / "optreg" / "stats.py")
    counts = dry_run(smoke_clone)
    assert "train" not in counts and counts["summarize"] == 3


def records(work: Path) -> dict[str, dict]:
    """Every metrics record, keyed by path, without its timing fields and code's folder."""
    out = {}
    for path in sorted((work / "results" / "studies").glob("*/*/*/seeds-*/*.json")):
        record = json.loads(path.read_text())
        record.pop("wall_time_s")
        record["provenance"]["code"].pop("path")  # each copy of the project has its own
        for epoch in record["history"]:
            epoch.pop("elapsed_s")
        out[str(path.relative_to(work))] = record
    return out


def test_same_settings_same_numbers_across_runs_and_core_counts(smoke, root, tmp_path):
    work = copy_project(root, tmp_path)
    (work / "config" / "config.yaml").write_text((smoke / "config" / "config.yaml").read_text())
    # Every train job and no figure or report: the smoke study ran with --cores 2.
    tables = [
        f"results/studies/{s}/runs.csv" for s in ("optimization", "regularization", "problems")
    ]
    snakemake(work, "--cores", "1", *tables)
    ours, theirs = records(work), records(smoke)
    # 120 planned runs, and the tuning runs of rates added past the grid's edge.
    assert len(ours) >= 120 and ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key] == theirs[key], key


def test_killed_job_leaves_nothing_valid_and_is_redone(root, tmp_path):
    work = copy_project(root, tmp_path)
    config = yaml.safe_load((work / "config" / "smoke.yaml").read_text())
    config["defaults"]["epochs"] = 5000  # long enough to be killed mid-run
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    cells = "results/studies/optimization/tune-eval"
    target = f"{cells}/optimizer-adam_activation-relu/seeds-0-1_10-11"
    other = f"{cells}/optimizer-adam_activation-sigmoid/seeds-0-1_10-11"
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1"]
    first = subprocess.Popen(
        [*cmd, target],
        cwd=work,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = (
        work
        / "logs"
        / "train"
        / "optimization"
        / "tune-eval"
        / Path(target).parent.name
        / "seeds-0-1_10-11.log"
    )
    try:
        deadline = time.monotonic() + 120
        while not log.exists():
            assert time.monotonic() < deadline and first.poll() is None, "train job never started"
            time.sleep(0.2)
        time.sleep(3)  # well into training

        # A second Snakemake on the same folder is refused by the lock.
        second = subprocess.run(
            [*cmd, other], cwd=work, capture_output=True, text=True, timeout=120
        )
        assert second.returncode != 0
        assert "cannot be locked" in second.stdout + second.stderr
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)  # the whole job tree, as a crash would
        first.wait()

    assert first.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    assert not (work / target).exists()
    assert not list((work / "results").rglob("*seed-*.json"))
    snakemake(work, "--unlock")
    config["defaults"]["epochs"] = 2
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    assert dry_run(work, target) == {"train": 1}
    snakemake(work, target)
    names = sorted(p.name for p in (work / target).glob("*.json"))
    # The grid's rates, the rates it was extended by (its best rate lay on an edge), 2 seeds each.
    tuned = json.loads((work / target / "tuned_seed-10.json").read_text())
    rates = sorted(["0.01", "0.1", *(f"{x:g}" for x in tuned["selection"]["extended"])])
    tuning = [f"lr-{lr}_seed-{s}.json" for lr in rates for s in (0, 1)]
    evaluation = [f"{p}_seed-{s}.json" for p in ("oneshot", "tuned") for s in (10, 11)]
    assert names == sorted(tuning + evaluation)


def test_corrupt_metrics_file_fails_aggregation_by_name_and_others_go_on(smoke_clone):
    studies = smoke_clone / "results" / "studies"
    bad = next((studies / "regularization").rglob("tuned_seed-11.json"))
    bad.write_text('{"schema_version": 1,')
    before = (studies / "optimization" / "runs.csv").stat().st_mtime_ns
    proc = snakemake(
        smoke_clone,
        "--keep-going",
        "-f",
        "results/studies/regularization/runs.csv",
        "results/studies/optimization/runs.csv",
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert str(bad.relative_to(smoke_clone)) in out  # the failed log is shown, naming the file
    assert not (studies / "regularization" / "runs.csv").exists()  # no stale or partial table
    assert (studies / "optimization" / "runs.csv").stat().st_mtime_ns > before  # went on
