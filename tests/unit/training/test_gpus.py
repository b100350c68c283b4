"""GPU resources and slots, on the CPU: fake device counts, fake environments, real locks.

No GPU takes part: the CUDA path of a train job is not exercised here. What is checked is
what decides it: which GPUs a job may see, when train jobs ask Snakemake for a GPU, and
that concurrent jobs each hold a different GPU, and release it however they end.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest
import torch
from conftest import copy_project, snakemake

from optreg.training import gpus
from optreg.training.gpus import gpu_slot, hold_gpu, train_uses_gpu, visible_gpus
from optreg.training.job import provenance


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0,2", ["0", "2"]),
        ("", []),
        ("-1", []),
        ("1,-1,2", ["1"]),  # CUDA stops at the first invalid entry
        ("GPU-8f3c, MIG-1a2b", ["GPU-8f3c", "MIG-1a2b"]),
    ],
)
def test_cuda_visible_devices_decides_which_gpus_are_visible(value, expected):
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": value}) == expected


def test_without_cuda_visible_devices_the_driver_lists_the_gpus(tmp_path, monkeypatch):
    for bus in ("0000:01:00.0", "0000:41:00.0", "0000:81:00.0"):
        (tmp_path / bus).mkdir()
    assert visible_gpus({}, proc_dir=tmp_path) == ["0", "1", "2"]
    monkeypatch.setattr(gpus.shutil, "which", lambda name: None)
    assert visible_gpus({}, proc_dir=tmp_path / "missing") == []


@pytest.mark.parametrize(
    ("device", "environ", "expected"),
    [
        ("cpu", {"CUDA_VISIBLE_DEVICES": "0"}, False),
        ("cuda", {"CUDA_VISIBLE_DEVICES": ""}, True),  # asked for: the job fails if none
        ("auto", {"CUDA_VISIBLE_DEVICES": "0,1"}, True),
        ("auto", {"CUDA_VISIBLE_DEVICES": ""}, False),
        # Inside a SLURM job, `auto` follows what SLURM allocated, not what the node has.
        ("auto", {"SLURM_JOB_ID": "7", "CUDA_VISIBLE_DEVICES": "0"}, False),
        ("auto", {"SLURM_JOB_ID": "7", "SLURM_GPUS_ON_NODE": "1"}, True),
        ("auto", {"SLURM_JOB_ID": "7", "SLURM_GPUS_ON_NODE": "0"}, False),
    ],
)
def test_when_train_jobs_ask_for_a_gpu(device, environ, expected):
    assert train_uses_gpu(device, environ) is expected


def test_cpu_jobs_hold_no_gpu():
    with hold_gpu(0) as slot:
        assert slot is None


def test_jobs_in_one_process_get_different_gpus(tmp_path):
    with gpu_slot(2, tmp_path, environ={}) as a, gpu_slot(2, tmp_path, environ={}) as b:
        assert {a.index, b.index} == {0, 1}
        assert (a.gpu_id, b.gpu_id) == (str(a.index), str(b.index))
    with gpu_slot(2, tmp_path, environ={}) as c:
        assert c.index == 0  # released on leaving the block


def test_slots_are_named_after_the_visible_gpus(tmp_path):
    environ = {"CUDA_VISIBLE_DEVICES": "5,7"}
    with gpu_slot(2, tmp_path, environ=environ) as a, gpu_slot(2, tmp_path, environ=environ) as b:
        assert (a.index, a.gpu_id, b.index, b.gpu_id) == (0, "5", 1, "7")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu-5.lock", "gpu-7.lock"]


def test_a_slurm_job_shares_out_its_own_gpus(tmp_path, monkeypatch):
    """A group job's train jobs share its GPUs out; another SLURM job has its own GPUs."""
    monkeypatch.setattr(gpus.tempfile, "tempdir", str(tmp_path))
    job = {"SLURM_JOB_ID": "12", "CUDA_VISIBLE_DEVICES": "4,5"}
    other = {"SLURM_JOB_ID": "13", "CUDA_VISIBLE_DEVICES": "0"}
    with gpu_slot(2, environ=job) as a, gpu_slot(2, environ=job) as b:
        with gpu_slot(1, environ=other) as c:
            assert (a.gpu_id, b.gpu_id, c.gpu_id, c.index) == ("4", "5", "0", 0)
        assert a.lock_file.startswith(str(tmp_path / "optreg-gpu-slots-12"))
        assert c.lock_file.startswith(str(tmp_path / "optreg-gpu-slots-13"))


def _hold(slots_dir, count, hold_s, queue):
    with gpu_slot(count, slots_dir, environ={}, poll_s=0.05) as slot:
        queue.put((os.getpid(), slot.index, time.monotonic()))
        time.sleep(hold_s)
    queue.put((os.getpid(), "released", time.monotonic()))


def test_concurrent_jobs_never_share_a_gpu_and_a_surplus_job_waits(tmp_path):
    """Four jobs on three (fake) GPUs: three start at once on different GPUs, one waits."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_hold, args=(tmp_path, 3, 1.5, queue)) for _ in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=30)
    events = [queue.get(timeout=5) for _ in range(8)]
    starts = sorted((t, i) for _, i, t in events if i != "released")
    first_release = min(t for _, i, t in events if i == "released")
    assert sorted(i for _, i in starts[:3]) == [0, 1, 2]
    # The fourth got a GPU only after one was released, and it is one of the three.
    assert starts[3][0] >= first_release and starts[3][1] in (0, 1, 2)
    assert all(proc.exitcode == 0 for proc in procs)


def test_a_killed_job_releases_its_gpu(tmp_path):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    holder = ctx.Process(target=_hold, args=(tmp_path, 1, 600, queue))
    holder.start()
    _, index, _ = queue.get(timeout=30)
    assert index == 0
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(timeout=30)
    start = time.monotonic()
    with gpu_slot(1, tmp_path, environ={}, poll_s=0.05) as slot:
        assert slot.index == 0 and time.monotonic() - start < 1


def test_metrics_record_the_device_a_run_used():
    cpu = provenance(torch.device("cpu"), 2)
    assert (cpu["device"], cpu["torch_device"], cpu["gpu_id"]) == ("cpu", "cpu", None)
    assert cpu["host"] and cpu["torch_threads"] == torch.get_num_threads()
    assert provenance(torch.device("cpu"), 2, gpu_id="3")["gpu_id"] == "3"


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("config", "resources"),
    [
        (["device=cpu"], "gpu=0"),
        (["device=cuda"], "gpu=1"),
        (["device=cuda", "gpu_model=a100"], "gpu=1, gpu_model=a100"),
    ],
)
def test_train_jobs_declare_the_gpu_resource(root, tmp_path, config, resources):
    work = copy_project(root, tmp_path)
    proc = snakemake(
        work, "-n", "--configfile", "config/smoke.yaml", "--resources", "gpu=2",
        "--config", *config,
    )  # fmt: skip
    text = proc.stdout + proc.stderr
    blocks = [b for b in text.split("rule ")[1:] if b.startswith("train:")]
    assert blocks
    for block in blocks:
        line = next(ln for ln in block.splitlines() if "resources:" in ln)
        assert line.rstrip().endswith(resources), line


def test_cuda_without_a_gpu_is_named_and_cpu_or_auto_never_are(tmp_path):
    from optreg.training.gpus import missing_gpu

    none = {"CUDA_VISIBLE_DEVICES": "-1"}
    assert "device: 'cuda', but this machine shows no GPU" in missing_gpu("cuda", none)
    assert missing_gpu("cuda", {"CUDA_VISIBLE_DEVICES": "0"}) is None
    assert missing_gpu("cpu", none) is None
    assert missing_gpu("auto", none) is None
