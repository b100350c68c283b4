"""The smoke study on a real SLURM cluster, submitted through profiles/slurm.

Needs a running SLURM with accounting (slurmdbd), as `tests/slurm/setup.sh` starts one on
localhost (as root; `tests/slurm/teardown.sh` stops it); `.ci/run` does both around
`make test`. Without a cluster the test is skipped, except under CI (`CI` set), where a
missing cluster is a failure: CI is meant to run it.

The workflow runs under `timeout -k`: when `sacct` stops answering, the executor plugin
drops its jobs and Snakemake waits for ever, ignoring SIGTERM.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import copy_project

pytestmark = pytest.mark.workflow

LIMIT_S = 480  # a guard against hangs: the smoke study takes 2.5 to 5 min on 2 cores


def run(*cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def slurm_problem() -> str | None:
    """Why no usable SLURM cluster is reachable from here, or None when one is."""
    for tool in ("sbatch", "sinfo", "sacct", "timeout"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    try:
        nodes = run("sinfo", "-h", "-o", "%t")
        if nodes.returncode != 0:
            return f"sinfo failed: {nodes.stderr.strip()}"
        if not {"idle", "mix", "alloc"} & set(nodes.stdout.split()):
            return f"no node is up (sinfo: {nodes.stdout.split()})"
        accounting = run("sacct", "-n", "-X", "-S", "now")
        if accounting.returncode != 0:
            return f"sacct failed (is slurmdbd running?): {accounting.stderr.strip()}"
    except subprocess.TimeoutExpired as exc:
        return f"{exc.cmd[0]} did not answer within {exc.timeout} s"
    return None


@pytest.fixture(scope="module")
def slurm():
    problem = slurm_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI runs the SLURM test, but SLURM is not usable: {problem}")
        pytest.skip(f"no SLURM cluster ({problem}); start one with: sudo tests/slurm/setup.sh")


def test_smoke_study_runs_on_slurm_and_its_jobs_complete_in_sacct(slurm, root, tmp_path):
    work = copy_project(root, tmp_path)
    shutil.copy(work / "config" / "smoke.yaml", work / "config" / "config.yaml")
    # Group jobs ask for `--cores` CPUs; give them what one node of this cluster has.
    cpus = min(int(c) for c in run("sinfo", "-h", "-o", "%c").stdout.split())
    cmd = [
        "timeout", "-k", "10", str(LIMIT_S),
        sys.executable, "-m", "snakemake",
        "--profile", "profiles/slurm",
        "--profile", str(root / "tests" / "slurm" / "profile"),
        "--cores", str(cpus),
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=LIMIT_S + 30)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 124, f"timed out after {LIMIT_S} s:\n{out[-6000:]}"
    assert proc.returncode == 0, out[-6000:]
    assert (work / "results" / "report.pdf").stat().st_size > 0

    run_id = re.search(r"SLURM run ID: (\S+)", out)[1]
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", out)
    # Train jobs went in groups: fewer submissions than jobs, and at least one group job.
    assert any("group_train" in line for line in out.splitlines() if "submitted" in line), out
    jobs_done = int(re.search(r"(\d+) of \1 steps \(100%\) done", out)[1])
    assert len(submitted) < jobs_done

    # Every submission is in SLURM's accounting, under this run's job name, as COMPLETED.
    accounting = run("sacct", "-n", "-X", "-P", "--name", run_id, "-S", "now-1hour",
                     "-o", "JobID,State")  # fmt: skip
    assert accounting.returncode == 0, accounting.stderr
    states = dict(line.split("|") for line in accounting.stdout.split())
    assert set(states) == set(submitted), (states, submitted)
    assert set(states.values()) == {"COMPLETED"}, states
