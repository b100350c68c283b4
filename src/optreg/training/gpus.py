"""GPUs for train jobs: how many this machine shows, and one device per concurrent job.

Snakemake counts GPUs (`--resources gpu=2` runs at most two jobs that declare `gpu=1`) but
assigns none in local runs (snakemake/snakemake#281): every job would see every GPU and
take `cuda:0`. A job therefore claims a slot, one lock file per visible GPU under
`.snakemake/gpu-slots/`, and trains on that slot's device. The lock is an `flock` held for
the job's lifetime; the kernel drops it when the process ends, however it ends, so a killed
job never leaves a GPU marked busy. Inside a SLURM job the slots are that job's own, in the
node's temporary folder: SLURM gave the job its GPUs, and the train jobs of one group job
share them out the same way.

Nothing here imports torch: the workflow counts GPUs while it plans, where importing torch
would cost every `snakemake` call about two seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


DEFAULT_SLOTS_DIR = Path(".snakemake") / "gpu-slots"


# Where the NVIDIA driver lists the GPUs of this machine, one folder per GPU.
NVIDIA_PROC = Path("/proc/driver/nvidia/gpus")


def visible_gpus(
    environ: Mapping[str, str] | None = None, proc_dir: str | os.PathLike = NVIDIA_PROC
) -> list[str]:
    """Identifiers of the GPUs a job on this machine may use, in CUDA's order.

    `CUDA_VISIBLE_DEVICES`, when set, decides (its entries, which may be indices or UUIDs;
    empty or `-1` means none); otherwise the NVIDIA driver's list of GPUs, or
    `nvidia-smi -L` where the driver's /proc folder is missing. A machine without NVIDIA
    GPUs gives an empty list.
    """
    environ = os.environ if environ is None else environ
    listed = _cuda_visible_devices(environ)
    if listed is not None:
        return listed
    proc_dir = Path(proc_dir)
    if proc_dir.is_dir():
        return [str(i) for i in range(len(list(proc_dir.iterdir())))]
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=True
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]
    return []


def _cuda_visible_devices(environ: Mapping[str, str]) -> list[str] | None:
    """The entries of CUDA_VISIBLE_DEVICES (None when unset), cut where CUDA stops reading."""
    if "CUDA_VISIBLE_DEVICES" not in environ:
        return None
    ids = []
    for entry in environ["CUDA_VISIBLE_DEVICES"].split(","):
        entry = entry.strip()
        if not entry or entry.startswith("-"):
            break  # CUDA ignores an invalid entry and everything after it
        ids.append(entry)
    return ids


def slurm_job_gpus(environ: Mapping[str, str]) -> bool:
    """Whether the SLURM job this process runs in was given GPUs."""
    for name in ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "SLURM_GPUS", "SLURM_GPUS_ON_NODE"):
        value = environ.get(name, "").strip()
        if value and value not in ("0", "none", "(null)"):
            return True
    return False


def train_uses_gpu(device: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether train jobs with config `device` run on a GPU (and so ask Snakemake for one).

    `auto` means: when this machine shows a GPU. Inside a SLURM job it means: when SLURM
    gave the job one, so that the Snakemake processes a cluster job starts (which plan
    again) agree with the one that submitted it.
    """
    if device != "auto":
        return device == "cuda"
    environ = os.environ if environ is None else environ
    if "SLURM_JOB_ID" in environ:
        return slurm_job_gpus(environ)
    return bool(visible_gpus(environ))


def missing_gpu(device: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Why train jobs run on this machine cannot use config `device` (`cuda` where this
    machine shows no GPU: every train job would fail), or None. Only for jobs that run
    where Snakemake runs: submitted to a cluster, they run on its GPU nodes."""
    environ = os.environ if environ is None else environ
    if device != "cuda" or visible_gpus(environ):
        return None
    hidden = (
        f" (CUDA_VISIBLE_DEVICES={environ['CUDA_VISIBLE_DEVICES']!r} hides them all)"
        if "CUDA_VISIBLE_DEVICES" in environ
        else ""
    )
    return (
        f"device: 'cuda', but this machine shows no GPU{hidden} and its train jobs run here: "
        "each would fail. Use device: cpu (or auto, which trains on a GPU where there is "
        "one), or submit the jobs to GPU nodes (--profile profiles/slurm)"
    )


@dataclass(frozen=True)
class Slot:
    """The GPU a job holds: its torch index and the machine's name for it."""

    index: int  # torch's cuda:<index> in this process
    gpu_id: str  # the entry of CUDA_VISIBLE_DEVICES, or the index when that is unset
    lock_file: str  # held while the job trains


def _lock_name(gpu_id: str) -> str:
    return "gpu-" + re.sub(r"[^A-Za-z0-9_.-]", "_", gpu_id) + ".lock"


@contextlib.contextmanager
def gpu_slot(
    count: int,
    slots_dir: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
    poll_s: float = 1.0,
) -> Iterator[Slot]:
    """Hold one of `count` GPUs for the duration of the block.

    Tries the GPUs in order and takes the first free one; when all are taken (more
    concurrent GPU jobs than GPUs, i.e. `--resources gpu=N` was not given or N is too
    large) it waits for one to be released rather than share it. Slots live in
    `slots_dir`, else $OPTREG_GPU_SLOTS_DIR, else `.snakemake/gpu-slots/`; inside a SLURM
    job, in a folder of that job's own under the node's temporary folder.
    """
    if count < 1:
        raise ValueError("gpu_slot needs at least one GPU")
    environ = os.environ if environ is None else environ
    # Lock files are named after the machine's GPU ids, so that two working folders sharing
    # OPTREG_GPU_SLOTS_DIR with different CUDA_VISIBLE_DEVICES still never share a GPU.
    listed = _cuda_visible_devices(environ) or []
    ids = listed[:count] if len(listed) >= count else [str(i) for i in range(count)]
    if slots_dir is None and "SLURM_JOB_ID" in environ:
        slots_dir = Path(tempfile.gettempdir()) / f"optreg-gpu-slots-{environ['SLURM_JOB_ID']}"
    slots_dir = Path(
        slots_dir or environ.get("OPTREG_GPU_SLOTS_DIR") or DEFAULT_SLOTS_DIR
    ).absolute()
    slots_dir.mkdir(parents=True, exist_ok=True)
    waited = False
    while True:
        for index, gpu_id in enumerate(ids):
            path = slots_dir / _lock_name(gpu_id)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                log.info("holding GPU %s (cuda:%d) through %s", gpu_id, index, path)
                yield Slot(index, gpu_id, str(path))
            finally:
                os.ftruncate(fd, 0)
                os.close(fd)  # closing releases the lock
            return
        if not waited:
            log.warning(
                "all %d GPU slots in %s are taken; waiting for one (run Snakemake with "
                "--resources gpu=%d so that it starts no more GPU jobs than GPUs)",
                count,
                slots_dir,
                count,
            )
            waited = True
        time.sleep(poll_s)


@contextlib.contextmanager
def hold_gpu(count: int, **kwargs) -> Iterator[Slot | None]:
    """`gpu_slot(count)` for a job on CUDA (`count` > 0); None, holding nothing, on the CPU."""
    if count <= 0:
        yield None
        return
    with gpu_slot(count, **kwargs) as slot:
        yield slot
