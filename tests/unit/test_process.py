"""A train job's process ends without Python's teardown (optreg.process), losing nothing.

scripts/train.py runs here as Snakemake runs a `script:` (its source after a preamble that
defines `snakemake`, in a Python process of its own), so that its exit status, log and files
are seen exactly as Snakemake sees them; the smoke study runs it under Snakemake itself.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import settings

# What Snakemake's preamble gives a script: the `snakemake` object, here only what
# scripts/train.py reads.
PREAMBLE = """\
import json, sys
from types import SimpleNamespace
_args = json.loads(sys.argv[1])
snakemake = SimpleNamespace(
    input=SimpleNamespace(data=_args["data"]),
    output=[_args["out"]],
    log=[_args["log"]],
    threads=1,
    params=SimpleNamespace(device="cpu", job=_args["job"]),
    config={"checkpoint": {"every_minutes": _args["every_minutes"]}},
)
"""


def train_script(root: Path, dest: Path) -> Path:
    script = dest / "train_job.py"
    script.write_text(PREAMBLE + (root / "scripts" / "train.py").read_text())
    return script


def start_job(root, tmp_path, data, *, epochs=2, every_minutes=None) -> tuple:
    job = {
        "study": "s",
        "combination": "c",
        "factors": {},
        "settings": {k: v for k, v in settings(epochs=epochs).items() if k != "lr"},
        "phase": "tune-eval",
        "seeds": [10, 11],
        "tuning_seeds": [0, 1],
        "lr_grid": [0.01, 0.1],
        "default_lr": 0.01,
        "lr_limits": [0.01, 0.1],  # no extension: a fixed number of runs
    }
    out, log = tmp_path / "results" / "runs", tmp_path / "train.log"
    args = {"data": str(data), "out": str(out), "log": str(log), "job": job}
    args["every_minutes"] = every_minutes
    proc = subprocess.Popen(
        [sys.executable, str(train_script(root, tmp_path)), json.dumps(args)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, out, log


def test_a_finished_job_exits_0_with_every_file_and_its_whole_log(root, tmp_path, digits_file):
    proc, out, log = start_job(root, tmp_path, digits_file)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr + (log.read_text() if log.exists() else "")
    names = sorted(p.name for p in out.iterdir())
    # 2 rates x 2 tuning seeds, 2 protocols x 2 evaluation seeds, the checksums and the
    # job's own CPU and memory (usage.tsv, getrusage)
    assert len(names) == 10 and "SHA256SUMS" in names and "usage.tsv" in names
    for name in names:
        if name.endswith(".json"):
            assert json.loads((out / name).read_text())["study"] == "s"
    # The last line the job logs, written just before the process ends, is in the file.
    assert "done: 8 runs trained (0 diverged)" in log.read_text().splitlines()[-1]
    assert not list(tmp_path.rglob(".runs.*"))  # no temporary folder left behind


def test_a_failing_job_exits_1_with_its_traceback_in_the_log(root, tmp_path):
    proc, out, log = start_job(root, tmp_path, tmp_path / "missing.pt")
    proc.communicate(timeout=300)
    assert proc.returncode == 1
    text = log.read_text()
    assert "Traceback" in text and "missing.pt" in text
    assert not out.exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signalled_job_checkpoints_and_exits_128_plus_the_signal(
    root, tmp_path, digits_file, signum
):
    proc, out, log = start_job(root, tmp_path, digits_file, epochs=100_000, every_minutes=60)
    deadline = time.monotonic() + 120
    # Its first epoch's line: training, with the job's signal handlers in place.
    while not (log.exists() and " epoch 1/" in log.read_text()):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the job did not start training"
        time.sleep(0.1)
    proc.send_signal(signum)
    proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum
    lines = log.read_text().splitlines()
    assert f"{signal.Signals(signum).name}: checkpoint" in lines[-1] and "stopping" in lines[-1]
    assert (tmp_path / "checkpoints").exists() and not out.exists()


def test_exit_now_flushes_logs_and_streams_and_keeps_the_status(tmp_path):
    code = textwrap.dedent(
        """
        import logging, sys
        from optreg.logs import log_to
        from optreg.process import exit_now
        log_to(sys.argv[1])
        sys.stdout.write("to stdout, unflushed")
        logging.getLogger("optreg").info("last line")
        exit_now(int(sys.argv[2]))
        print("never")
        """
    )
    for status in (0, 3, 143):
        log = tmp_path / f"{status}.log"
        proc = subprocess.run(
            [sys.executable, "-c", code, str(log), str(status)], capture_output=True, text=True
        )
        assert proc.returncode == status
        assert proc.stdout == "to stdout, unflushed"
        assert log.read_text().rstrip().endswith("last line")


def test_imports_uncollected_freezes_what_they_made_and_restores_the_collector():
    code = textwrap.dedent(
        """
        import gc, json
        from optreg.process import imports_uncollected
        before = gc.get_freeze_count()
        with imports_uncollected():
            during = gc.isenabled()
            import fractions, decimal
        frozen = gc.get_freeze_count() - before
        gc.disable()
        with imports_uncollected():
            import statistics
        print(json.dumps([during, frozen > 0, gc.isenabled()]))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    during, froze, enabled_after_disabled = json.loads(proc.stdout)
    assert not during and froze and not enabled_after_disabled
