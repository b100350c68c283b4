"""The measuring steps of bench/gpu_check.sh (run that script; each step prints one JSON line).

python bench/gpu_check.py digits --device cuda     # a default-study train job, timed
python bench/gpu_check.py resume --device cuda     # SIGKILL a job after a checkpoint, resume
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def default_job(data_path: Path, device: str) -> dict:
    """The `tune-eval` job of the default study's adam/relu cell (8 rates x 3 seeds, then
    10 seeds x 2 protocols; 30 epochs on digits), as Snakemake would give it."""
    from optreg.study.matrix import jobs
    from optreg.study.validate import load_config

    config = load_config(str(ROOT / "config" / "config.yaml"))
    job = next(
        j
        for j in jobs(config)
        if j.cell.id == "optimizer-adam_activation-relu" and j.phase == "tune-eval"
    )
    return {
        "data_path": str(data_path),
        "study": job.study,
        "combination": job.cell.id,
        "factors": job.cell.factors,
        "settings": job.cell.settings,
        "phase": job.phase,
        "seeds": list(job.seeds),
        "tuning_seeds": list(job.tuning_seeds),
        "lr_grid": list(job.cell.lr_grid),
        "default_lr": job.cell.default_lr,
        "device": device,
        "threads": int(os.environ.get("GPU_CHECK_THREADS", "1")),
    }


def prepared_digits(tmp: Path) -> Path:
    from optreg.data.prepare import prepare

    path = tmp / "digits.pt"
    prepare("digits", path, split_seed=0)
    return path


def untimed(folder: Path) -> dict:
    """The job's records without timings: what a resumed job must reproduce exactly."""
    from optreg.records import read_run

    out = {}
    for path in sorted(folder.glob("*.json")):
        record = read_run(path)
        record["history"] = [
            {k: v for k, v in h.items() if k != "elapsed_s"} for h in record["history"]
        ]
        record["wall_time_s"] = None
        out[path.name] = record
    return out


def digits(device: str) -> dict:
    """Wall time of the job in this process (CUDA already initialized by a short warm-up)."""
    import torch

    from optreg.training.job import run_job

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        args = default_job(prepared_digits(tmp), device)
        warm = {**args, "settings": {**args["settings"], "epochs": 1}}
        run_job(out_dir=tmp / "warm", **warm)
        start = time.perf_counter()
        run_job(out_dir=tmp / "runs", **args)
        wall = time.perf_counter() - start
        runs = len(list((tmp / "runs").glob("*.json")))
    return {
        "step": "digits",
        "device": device,
        "runs": runs,
        "epochs": args["settings"]["epochs"],
        "wall_s": round(wall, 2),
        "torch_threads": torch.get_num_threads(),
    }


def job_process(args: dict, out: Path, checkpoint: Path, minutes: float) -> subprocess.Popen:
    """The job in a fresh Python process, as Snakemake runs it (its own process group)."""
    code = (
        "import json, sys; from optreg.training.job import run_job; "
        "a = json.loads(sys.argv[1]); run_job(**a)"
    )
    job = {**args, "out_dir": str(out), "checkpoint": str(checkpoint)}
    job["checkpoint_minutes"] = minutes
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(job)], env=env, start_new_session=True
    )


def resume(device: str) -> dict:
    """SIGKILL the job once its first checkpoint is written, rerun it, compare it with the
    same job run without interruption."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        args = default_job(prepared_digits(tmp), device)
        # Long enough on a GPU to be killed mid-way: 200 epochs, a checkpoint every 0.3 s.
        args["settings"] = {**args["settings"], "epochs": 200}
        checkpoint = tmp / "checkpoints" / "job.pt"
        first = job_process(args, tmp / "resumed", checkpoint, minutes=0.005)
        deadline = time.monotonic() + 300
        while not checkpoint.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        killed = first.poll() is None and checkpoint.exists()
        if killed:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        import torch

        saved = torch.load(checkpoint, weights_only=True) if killed else None
        assert job_process(args, tmp / "resumed", checkpoint, 0.005).wait() == 0
        assert job_process(args, tmp / "reference", tmp / "unused.pt", None).wait() == 0
        exact = killed and untimed(tmp / "resumed") == untimed(tmp / "reference")
    return {
        "step": "resume",
        "device": device,
        "killed": killed,
        "killed_at": (
            f"phase {saved['step']}, epoch {saved['stack']['epoch']}" if saved else "not killed"
        ),
        "exact": bool(exact),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("digits", "resume"))
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    result = digits(args.device) if args.step == "digits" else resume(args.device)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
