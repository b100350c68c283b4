"""What reruns after a change, determinism, crash safety and the workflow lock.

Every test works on a private copy of the finished smoke study.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import copy_project, dry_run, snakemake

pytestmark = pytest.mark.workflow
# The smoke study: 15 cells, each tuned and evaluated in one job, but regularization's
# `none` cell is optimization's adam+relu cell (optreg.study.matrix.share_runs): 14 train jobs.
TRAIN_JOBS = 14


def edit(path: Path) -> None:
    """A real change to a source file (a comment: behaviour stays the same)."""
    time.sleep(0.01)
    path.write_text(path.read_text() + "\n# edited by a test\n")


def test_clone_of_finished_study_is_up_to_date(smoke_clone):
    assert dry_run(smoke_clone) == {}


def test_editing_a_plot_module_reruns_only_figures_and_report(smoke_clone):
    edit(smoke_clone / "src" / "optreg" / "report" / "plots.py")
    assert set(dry_run(smoke_clone)) == {"plot", "report", "all"}


@pytest.mark.parametrize(
    "path",
    [
        "src/optreg/training/loop.py",
        "src/optreg/training/job.py",
        "src/optreg/training/models.py",
        "src/optreg/training/optimizers.py",
        "workflow/schemas/metrics.schema.json",
    ],
)
def test_editing_the_training_code_reruns_every_train_job(smoke_clone, path):
    edit(smoke_clone / path)
    counts = dry_run(smoke_clone)
    assert counts["train"] == TRAIN_JOBS and counts["report"] == 1 and counts["summarize"] == 3
    assert "prepare_data" not in counts


def test_editing_data_loading_reruns_preparation_and_every_train_job(smoke_clone):
    edit(smoke_clone / "src" / "optreg" / "data" / "prepared.py")
    counts = dry_run(smoke_clone)
    assert counts["prepare_data"] == 2 and counts["train"] == TRAIN_JOBS
    assert counts["report"] == 1


def test_touching_a_source_file_reruns_nothing(smoke_clone):
    """Snakemake 9 compares an input newer than the outputs by checksum (files up to 1 MB):
    a new modification time alone, as `touch` or a `git checkout` of the same content
    gives, is no change."""
    source = smoke_clone / "src" / "optreg" / "training" / "loop.py"
    later = source.stat().st_mtime + 60
    os.utime(source, (later, later))
    assert dry_run(smoke_clone) == {}


def test_editing_the_report_template_reruns_only_the_report(smoke_clone):
    edit(smoke_clone / "workflow" / "report" / "report.typ")
    assert dry_run(smoke_clone) == {"report": 1, "all": 1}


@pytest.mark.parametrize("module", ["analysis/stats.py", "analysis/tables.py"])
def test_editing_the_statistics_skips_training(smoke_clone, module):
    edit(smoke_clone / "src" / "optreg" / module)
    counts = dry_run(smoke_clone)
    assert "train" not in counts and "prepare_data" not in counts
    assert counts["summarize"] == 3 and counts["findings"] == 1 and counts["report"] == 1


def with_config(work: Path, edit_config) -> None:
    path = work / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    edit_config(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))  # factor order names cells


def test_changing_the_grid_or_the_tuning_seeds_reruns_every_cell(smoke_clone):
    with_config(smoke_clone, lambda c: c["protocol"].update(lr_grid=[0.01, 0.1, 1.0]))
    assert dry_run(smoke_clone)["train"] == TRAIN_JOBS
    with_config(smoke_clone, lambda c: c["protocol"].update(lr_grid=[0.01, 0.1]))
    assert dry_run(smoke_clone) == {}
    with_config(smoke_clone, lambda c: c["protocol"].update(tuning_seeds=[0, 1, 2]))
    # 0-1 and 2-3 are two tuning blocks now: each cell gets two tune jobs and an eval job.
    assert dry_run(smoke_clone)["train"] == 3 * TRAIN_JOBS


def test_changing_a_fixed_setting_reruns_only_the_cells_it_changes(smoke_clone):
    with_config(
        smoke_clone, lambda c: c["studies"]["regularization"]["fixed"].update(activation="tanh")
    )
    counts = dry_run(smoke_clone)
    assert counts["train"] == 5 and counts["collect_runs"] == 1  # the regularization cells
    with_config(smoke_clone, lambda c: c["defaults"].update(batch_size=64))
    # every cell: none of the studies fixes the batch size; with tanh, regularization's
    # `none` cell no longer equals optimization's adam+relu cell and has a job of its own
    assert dry_run(smoke_clone)["train"] == TRAIN_JOBS + 1


def planned_train_folders(work: Path) -> set[str]:
    proc = snakemake(work, "-n")
    return set(re.findall(r"output: (results/studies/\S+/seeds-\S+)", proc.stdout + proc.stderr))


def test_a_study_that_stops_sharing_a_cell_trains_its_own_and_nothing_else(smoke_clone):
    """Regularization's `none` cell reads optimization's adam+relu runs while the two are
    equal; a change that makes them differ trains exactly the cells it changes."""
    own = "results/studies/regularization/tune-eval/penalty-none_strength-0/seeds-0-1_10-11"
    with_config(smoke_clone, lambda c: c["studies"]["optimization"].update(lr_grid=[0.01, 0.3]))
    planned = planned_train_folders(smoke_clone)
    # optimization's 6 cells, and the regularization cell that no longer equals one of them
    assert len(planned) == 7 and own in planned
    assert {p.split("/")[2] for p in planned} == {"optimization", "regularization"}
    with_config(smoke_clone, lambda c: c["studies"]["optimization"].pop("lr_grid"))
    assert dry_run(smoke_clone) == {}  # equal again: shared again, nothing to train
    with_config(smoke_clone, lambda c: c["studies"]["regularization"]["fixed"].update(epochs=4))
    planned = planned_train_folders(smoke_clone)
    assert len(planned) == 5 and own in planned  # the regularization cells only
    assert all(p.startswith("results/studies/regularization/") for p in planned)


def test_evaluation_seeds_of_a_started_block_rerun_only_that_block(smoke_clone):
    problems = "results/studies/problems/runs.csv"  # 4 cells
    with_config(smoke_clone, lambda c: c["protocol"].update(evaluation_seeds=[10]))
    # the first block shares its job with the tuning: the 4 cells' tune-eval jobs
    assert dry_run(smoke_clone, problems) == {"train": 4, "collect_runs": 1}
    with_config(smoke_clone, lambda c: c["protocol"].update(evaluation_seeds=[10, 11, 12]))
    snakemake(smoke_clone, problems)
    with_config(smoke_clone, lambda c: c["protocol"].update(evaluation_seeds=[10, 11, 12, 13]))
    # the 12-13 block's eval job of each cell; the first block (with the tuning) stays
    assert dry_run(smoke_clone, problems) == {"train": 4, "collect_runs": 1}


BROKEN = """

def run_job(**kwargs):  # appended by a test: a code change that makes every train job fail
    raise RuntimeError("broken by a test")
"""


def test_a_failed_run_is_redone_with_everything_after_it(smoke_clone):
    """A failed job's outputs are removed; Snakemake (since 7.7) does not redo a job whose
    output is missing while the outputs after it are present, so the next run would call
    the old tables and report done. The workflow's target names every product."""
    train = smoke_clone / "src" / "optreg" / "training" / "job.py"  # where run_job is
    good = train.read_text()
    train.write_text(good + BROKEN)
    failed = snakemake(smoke_clone, check=False)
    assert failed.returncode != 0
    assert "RuntimeError: broken by a test" in failed.stdout + failed.stderr  # its log, shown
    assert not list((smoke_clone / "results" / "studies").glob("*/*/*/seeds-*"))
    after_failure = dry_run(smoke_clone)  # still broken: tried again, not "nothing to be done"
    train.write_text(good)
    after_fix = dry_run(smoke_clone)
    for counts in (after_failure, after_fix):
        assert counts["train"] == TRAIN_JOBS and counts["collect_runs"] == 3
        assert counts["summarize"] == 3 and counts["findings"] == 1 and counts["report"] == 1


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
    """A hand-edited result, still a valid record: only the job's SHA256SUMS can tell."""
    studies = smoke_clone / "results" / "studies"
    bad = next((studies / "regularization").rglob("tuned_seed-11.json"))
    record = json.loads(bad.read_text())
    record["final"]["test_accuracy"] = 1.0
    bad.write_text(json.dumps(record, indent=1))
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


def test_a_deleted_metrics_file_is_named_with_what_to_do(smoke_clone):
    """Issue 24: a metrics file deleted from a finished study (its job's folder, the rule's
    output, is still there, so Snakemake sees nothing missing)."""
    studies = smoke_clone / "results" / "studies"
    gone = next((studies / "regularization").rglob("tuned_seed-11.json"))
    gone.unlink()
    proc = snakemake(smoke_clone, "-f", "results/studies/regularization/runs.csv", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    folder = gone.parent.relative_to(smoke_clone)
    assert f"{folder}/{gone.name}: metrics file is missing" in out, out
    assert f"snakemake --forcerun {folder}" in out, out
    assert not (studies / "regularization" / "runs.csv").exists()


def test_a_deleted_product_is_redone_with_everything_after_it(smoke_clone):
    (smoke_clone / "results" / "data" / "digits.pt").unlink()
    counts = dry_run(smoke_clone)
    # every cell but the two on the breast-cancer table
    assert counts["prepare_data"] == 1 and counts["train"] == TRAIN_JOBS - 2
    assert counts["collect_runs"] == 3 and counts["report"] == 1


def test_a_train_job_refuses_prepared_data_changed_after_preparation(smoke_clone):
    """Changed content, same size class and modification time: Snakemake sees no change."""
    import torch

    data = smoke_clone / "results" / "data" / "digits.pt"
    stat = data.stat()
    payload = torch.load(data, weights_only=True)
    payload["x_train"][:5] *= -1
    torch.save(payload, data)
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    target = next((smoke_clone / "results" / "studies" / "optimization").glob("*/*/seeds-*"))
    proc = snakemake(smoke_clone, "--forcerun", str(target.relative_to(smoke_clone)), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "results/data/digits.pt: its content differs" in out and "--forcerun prepare_data" in out
    assert not target.exists()


def test_every_snakemake_command_in_the_rerun_docs_dry_runs(root, tmp_path):
    """Each fenced bash block of docs/reruns.md, run as written from the repository root,
    with every `snakemake` call a dry run."""
    work = copy_project(root, tmp_path / "repo")
    text = (root / "docs" / "reruns.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    assert blocks and all("snakemake" in b for b in blocks)
    dry = f'snakemake() {{ "{sys.executable}" -m snakemake -n "$@"; }}\nset -e\n'
    for block in blocks:
        proc = subprocess.run(
            ["bash", "-c", dry + block], cwd=work, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, f"{block}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        calls = block.count("snakemake ")
        assert (proc.stdout + proc.stderr).count("This was a dry-run") == calls, block
