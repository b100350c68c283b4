"""Long train jobs: progress lines, checkpoints, exact resume after a kill or a signal."""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import copy_project, dry_run, settings, snakemake

import optreg.training.job as train_mod
from optreg.records import read_run
from optreg.training.checkpoint import Checkpoints, Interrupted, checkpoint_path, remove_finished
from optreg.training.job import run_job
from optreg.training.progress import Progress
from optreg.training.watch import Watch


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler sees it."""


def comparable(record: dict) -> dict:
    """A record without its timings: what must not change when a job is resumed."""
    history = [{k: v for k, v in h.items() if k != "elapsed_s"} for h in record["history"]]
    return {**record, "history": history, "wall_time_s": None}


def records(folder: Path) -> dict:
    return {p.name: comparable(read_run(p)) for p in sorted(folder.glob("*.json"))}


def fused_job(digits_file, tmp_path, **overrides) -> dict:
    """A small `tune-eval` job: 2 rates x 2 tuning seeds, then 2 evaluation seeds x 2."""
    job = dict(
        data_path=digits_file,
        study="s",
        combination="c",
        factors={},
        settings=settings(epochs=2),
        phase="tune-eval",
        tuning_seeds=[0, 1],
        seeds=[5, 6],
        lr_grid=[0.01, 0.1],
        default_lr=0.001,
        lr_limits=[0.01, 0.1],  # the grid's ends: no extension, 8 runs (the Snakemake test has one)
        checkpoint=tmp_path / "checkpoints" / "job.pt",
    )
    return {**job, **overrides}


# Saves counted from 1, one per batch (17 batches per epoch, 2 epochs per phase): 20 falls in
# the tuning phase's second epoch, 45 in the evaluation phase's first.
@pytest.mark.parametrize(
    ("optimizer", "penalty", "lr_grid", "kill_at", "stack", "phase"),
    [
        ("sgd", "none", [0.01, 1e6], 20, None, 0),  # 1e6 diverges: resumes a shrunken stack
        ("momentum", "none", [0.01, 0.1], 45, None, 1),
        ("rmsprop", "none", [0.01, 0.1], 20, None, 0),
        ("adam", "none", [0.01, 0.1], 45, None, 1),
        ("adam", "l1_prox", [0.01, 0.1], 40, 3, 0),  # second of two stacks
    ],
)
def test_a_job_killed_after_a_checkpoint_resumes_to_identical_records(
    digits_file, tmp_path, monkeypatch, optimizer, penalty, lr_grid, kill_at, stack, phase
):
    cell = settings(epochs=2, optimizer=optimizer, penalty=penalty, strength=0.001)
    job = fused_job(digits_file, tmp_path, settings=cell, lr_grid=lr_grid)
    if stack:
        monkeypatch.setattr(train_mod, "max_stack", lambda *args: stack)
    reference = records(Path(run_job(out_dir=tmp_path / "reference", **job)[0]).parent)
    job["checkpoint"].unlink()  # the reference's, marked finished

    real_save = Checkpoints.save

    def save_then_die(self, state):
        real_save(self, state)
        if self.saves == kill_at:
            raise Killed

    monkeypatch.setattr(Checkpoints, "save", save_then_die)
    out = tmp_path / "resumed"
    with pytest.raises(Killed):
        run_job(out_dir=out, checkpoint_minutes=1e-9, **job)  # a checkpoint after every batch
    monkeypatch.setattr(Checkpoints, "save", real_save)
    saved = torch.load(job["checkpoint"], weights_only=True)
    assert saved["step"] == phase and saved["stack"]["next_batch"] > 0
    assert not out.exists()

    run_job(out_dir=out, **job)
    assert records(out) == reference
    assert torch.load(job["checkpoint"], weights_only=True)["finished"]


def test_a_finished_job_whose_files_were_lost_writes_them_from_its_checkpoint(
    digits_file, tmp_path, caplog
):
    job = fused_job(digits_file, tmp_path)
    first = records(Path(run_job(out_dir=tmp_path / "out", **job)[0]).parent)
    shutil.rmtree(tmp_path / "out")  # as Snakemake does when SLURM stops it after the job
    with caplog.at_level(logging.INFO, logger="optreg"):
        run_job(out_dir=tmp_path / "out", **job)
    assert "finished before, but its files were lost" in caplog.text
    assert "epoch" not in caplog.text  # nothing trained again
    assert records(tmp_path / "out") == first


def test_checkpoints_of_jobs_with_results_are_removed(tmp_path):
    done = "studies/s/tune-eval/c/seeds-0-1_10-11"
    for name in (done, "studies/s/tune-eval/d/seeds-0-1_10-11"):
        (tmp_path / "checkpoints" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "checkpoints" / f"{name}.pt").write_bytes(b"")
    (tmp_path / "results" / done).mkdir(parents=True)
    removed = remove_finished(tmp_path / "checkpoints", tmp_path / "results")
    assert removed == [tmp_path / "checkpoints" / f"{done}.pt"]
    assert [p.name for p in (tmp_path / "checkpoints").rglob("*.pt")] == ["seeds-0-1_10-11.pt"]
    assert not (tmp_path / "checkpoints" / done).parent.exists()  # its empty folder too


def test_progress_lines_say_how_far_the_job_is(digits_file, tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(Progress.__init__, "__defaults__", (0.0,))  # lines mid-epoch
    with caplog.at_level(logging.INFO, logger="optreg"):
        run_job(out_dir=tmp_path / "out", **fused_job(digits_file, tmp_path))
    lines = [r.getMessage() for r in caplog.records if r.name == "optreg.training.progress"]
    assert lines[0].startswith("s c start: tune-eval 4 + 4 runs, stacks of up to 4, 2 epochs")
    assert "device cpu, 1 threads, data " in lines[0]
    epochs = [line for line in lines if "| runs " in line]
    assert [line.split(" |")[0] for line in epochs] == [
        "s c tune epoch 1/2",
        "s c tune epoch 2/2",
        "s c eval epoch 1/2",
        "s c eval epoch 2/2",
    ]
    assert "runs 4 training, 0 diverged | train loss median " in epochs[0]
    assert "| val acc best 0." in epochs[0] and " s/epoch | ETA " in epochs[0]
    assert epochs[-1].endswith("ETA 0s")
    assert any(", 64/1077 samples | about " in line for line in lines)  # a long epoch's line
    assert lines[-1].startswith("s c done: 8 runs trained (0 diverged) in ")


@pytest.mark.parametrize(
    "damage",
    ["truncate", "garbage", "other settings"],
)
def test_a_bad_or_foreign_checkpoint_is_ignored_with_a_reason(
    digits_file, tmp_path, caplog, damage
):
    job = fused_job(digits_file, tmp_path)
    path = job["checkpoint"]
    with pytest.raises(Interrupted), _signal_after_first_epoch(job):
        run_job(out_dir=tmp_path / "out", **job)
    assert path.exists()
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint")
    else:
        job["settings"] = settings(epochs=3)
    with caplog.at_level(logging.INFO, logger="optreg"):
        run_job(out_dir=tmp_path / "out", **job)
    messages = "\n".join(r.getMessage() for r in caplog.records)
    expected = "was saved for other settings" if damage == "other settings" else "cannot be read"
    assert f"ignoring checkpoint {path}: it {expected}" in messages, messages
    assert "starting from the beginning" in messages and "resuming" not in messages
    assert torch.load(path, weights_only=True)["finished"]


class _signal_after_first_epoch:
    """Send this process SIGTERM at the end of the job's first epoch, as SLURM would."""

    def __init__(self, job):
        self.job = job

    def __enter__(self):
        self.real = Watch.end_epoch

        def end_epoch(watch, epoch, epochs, **numbers):
            self.real(watch, epoch, epochs, **numbers)
            os.kill(os.getpid(), signal.SIGTERM)

        Watch.end_epoch = end_epoch

    def __exit__(self, *exc):
        Watch.end_epoch = self.real


def test_sigterm_writes_a_checkpoint_at_once_and_the_rerun_resumes_it(
    digits_file, tmp_path, caplog
):
    job = fused_job(digits_file, tmp_path, checkpoint_minutes=None)  # no timer: only the signal
    reference = records(Path(run_job(out_dir=tmp_path / "reference", **job)[0]).parent)
    job["checkpoint"].unlink()  # the reference's, marked finished
    with caplog.at_level(logging.INFO, logger="optreg"):
        with pytest.raises(Interrupted) as stop, _signal_after_first_epoch(job):
            run_job(out_dir=tmp_path / "out", **job)
        assert stop.value.signum == signal.SIGTERM
        # Saved at the first batch after the signal: the second epoch's first.
        assert torch.load(job["checkpoint"], weights_only=True)["stack"]["epoch"] == 2
        run_job(out_dir=tmp_path / "out", **job)
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "SIGTERM: checkpoint" in messages and "stopping" in messages
    assert f"resuming from checkpoint {job['checkpoint']}: tune, 0 runs done, epoch 2" in messages
    assert records(tmp_path / "out") == reference
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the job's handler is gone


def test_checkpoints_live_outside_the_results():
    out = "results/studies/optimization/tune-eval/optimizer-adam/seeds-0-2_100-109"
    assert checkpoint_path(out) == Path(
        "checkpoints/studies/optimization/tune-eval/optimizer-adam/seeds-0-2_100-109.pt"
    )


# ---------------------------------------------------------------- through Snakemake

TARGET = "results/studies/optimization/tune-eval/optimizer-adam_activation-relu/seeds-0-1_10-11"


def _wait_for(condition, what: str, proc, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"snakemake ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.1)


@pytest.mark.workflow
def test_a_killed_and_a_terminated_train_job_resume_under_snakemake(root, tmp_path):
    work = copy_project(root, tmp_path)
    config = yaml.safe_load((work / "config" / "smoke.yaml").read_text())
    config["defaults"]["epochs"] = 200  # seconds of training: time to be killed, twice
    config["problems"]["digits_mlp"]["hidden"] = [256]
    config["checkpoint"] = {"every_minutes": 0.01}  # every 0.6 s
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    ckpt = work / checkpoint_path(TARGET)
    log = work / "logs" / "train" / Path(TARGET).relative_to("results/studies")
    log = log.parent / (log.name + ".log")
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", TARGET]

    def start():
        return subprocess.Popen(
            cmd,
            cwd=work,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    # 1. SIGKILL to the whole process tree after the first checkpoint: a node lost.
    first = start()
    _wait_for(ckpt.exists, "checkpoint", first)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert not (work / TARGET).exists()
    snakemake(work, "--unlock")

    # 2. SIGTERM to the whole tree once the job has resumed: SLURM's time limit, or Ctrl-C.
    second = start()
    _wait_for(lambda: log.exists() and "resuming" in log.read_text(), "resume", second)
    saved = torch.load(ckpt, weights_only=True)["saved"]
    os.killpg(second.pid, signal.SIGTERM)
    assert second.wait(timeout=60) != 0
    assert not (work / TARGET).exists()
    assert torch.load(ckpt, weights_only=True)["saved"] > saved  # written on the signal

    # 3. The next run resumes and finishes; then the same job uninterrupted, for reference.
    proc = snakemake(work, TARGET)
    assert "resuming from checkpoint" in log.read_text()
    assert not ckpt.exists() and "train" in proc.stdout + proc.stderr
    resumed = records(work / TARGET)
    # 8 planned runs, and 2 tuning runs per rate the grid was extended by (its best rate lay on
    # an edge): those are trained before the evaluation step, and resumed past like the rest.
    extended = resumed["tuned_seed-10.json"]["selection"]["extended"]
    assert len(resumed) == 8 + 2 * len(extended)
    shutil.move(work / TARGET, tmp_path / "resumed")
    assert dry_run(work, TARGET) == {"train": 1}
    snakemake(work, TARGET)
    assert "resuming" not in log.read_text()
    assert records(work / TARGET) == resumed
    assert math.isfinite(resumed["tuned_seed-10.json"]["final"]["test_accuracy"])


@pytest.mark.workflow
def test_sigterm_to_snakemake_alone_mid_run_ends_with_the_uninterrupted_results(root, tmp_path):
    """Issue 24: SIGTERM to the `snakemake` process only (not its process group), as `kill
    <pid>` sends it: Snakemake starts no new job, lets the running one finish (its results
    kept and recorded) and exits non-zero; nothing is left to redo for that job, and its
    records are those of an uninterrupted run."""
    work = copy_project(root, tmp_path)
    config = yaml.safe_load((work / "config" / "smoke.yaml").read_text())
    config["defaults"]["epochs"] = 200
    config["problems"]["digits_mlp"]["hidden"] = [256]
    config["checkpoint"] = {"every_minutes": 0.01}
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    ckpt = work / checkpoint_path(TARGET)
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", TARGET]
    first = subprocess.Popen(
        cmd, cwd=work, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for(ckpt.exists, "checkpoint", first)  # well into training
        os.kill(first.pid, signal.SIGTERM)
        assert first.wait(timeout=300) != 0
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    with pytest.raises(ProcessLookupError):
        os.killpg(first.pid, 0)  # no process of that run is left behind
    assert dry_run(work, TARGET) == {}  # the job it let finish is recorded as done
    finished = records(work / TARGET)
    shutil.move(work / TARGET, tmp_path / "finished")
    shutil.rmtree(work / "checkpoints", ignore_errors=True)  # the reference trains from scratch
    snakemake(work, TARGET)
    assert records(work / TARGET) == finished


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c.update(checkpoint={"every_minutes": 0}),
            "checkpoint.every_minutes: 0 is less than or equal to the minimum of 0",
        ),
        (
            lambda c: c["problems"]["digits_mlp"].update(run_epoch_s=-1),
            "problems.digits_mlp.run_epoch_s: -1 is less than or equal to the minimum of 0",
        ),
    ],
)
def test_bad_checkpoint_and_runtime_settings_name_their_key(smoke_config, edit, message):
    from optreg.study.errors import ConfigError
    from optreg.study.validate import validate_config

    edit(smoke_config)
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(smoke_config)


def test_a_train_jobs_runtime_follows_its_size(smoke_config):
    from optreg.study.matrix import jobs, train_runtime
    from optreg.study.validate import validate_config

    config = validate_config(smoke_config)
    assert config["checkpoint"]["every_minutes"] == 10
    job = jobs(config)[0]
    assert job.runs == 8 and job.cell.settings["epochs"] == 3
    assert train_runtime(job, config["problems"]) == 1  # 8 x 3 x 1 s x 1.5: under a minute
    config["problems"]["digits_mlp"]["run_epoch_s"] = 60
    assert train_runtime(job, config["problems"]) == 36  # 8 x 3 run-epochs of a minute, x 1.5


def test_a_job_killed_while_writing_a_checkpoint_keeps_the_previous_one(root, tmp_path):
    """Issue 24: SIGKILL in the middle of `torch.save` (a checkpoint half written): the file
    a rerun loads is still the previous checkpoint, whole."""
    path = tmp_path / "job.pt"
    script = f"""
import sys, time, torch
from optreg.training.checkpoint import Checkpoints
ckpt = Checkpoints({str(path)!r}, "key", None)
ckpt.save({{"step": 1, "weights": torch.ones(1000)}})
def half_then_hang(obj, f):
    with open(f, "wb") as fh:
        fh.write(b"PK" + b"\\0" * 5000)
        fh.flush()
    print("writing", flush=True)
    time.sleep(60)
torch.save = half_then_hang
ckpt.save({{"step": 2, "weights": torch.zeros(1000)}})
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root / "src")},  # this checkout's package
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    state = Checkpoints(path, "key", None).load()
    assert state["step"] == 1 and torch.equal(state["weights"], torch.ones(1000))
