"""What a train job's process costs around its training, before and after optreg.process.

    python bench/process.py [--rounds 10] [--epochs 1] [--config config/smoke.yaml]

Runs the first train job of `--config` (its epochs set to `--epochs`, so that the process's
start and end weigh as they do in a study of small cells) as Snakemake runs the job's
`script:`: the script's source after a preamble that defines `snakemake`, in a Python
process of its own. Variants, interleaved round by round (their order rotated each round):

- `before`: scripts/train.py as it was (plain imports, the interpreter's own exit);
- `gc off during imports`: the same, its imports inside `optreg.process.imports_uncollected`;
- `os._exit at the end`: the same as `before`, ending with `optreg.process.exit_now(0)`;
- `scripts/train.py`: the script itself, which does both.

Each process's wall time and CPU time (user + system, from `wait4`) are medians over the
rounds; the savings are medians of the per-round differences against `before`. The job's
files are checked after every process. A benchmark, not a test: on a loaded machine the
wall times grow with the load; CPU times less so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from optreg.data.prepare import prepare  # noqa: E402
from optreg.study.matrix import jobs  # noqa: E402
from optreg.study.validate import load_config  # noqa: E402

# What Snakemake's preamble gives the script: the `snakemake` object, here only what
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
    config={"checkpoint": {"every_minutes": None}, "extensions_path": []},
)
"""

# scripts/train.py before optreg.process: the reference.
BEFORE = """\
import signal
import sys

from optreg.logs import log_to

log_to(snakemake.log[0])

IMPORTS
use_config_path(snakemake.config)

try:
    run_job(
        data_path=snakemake.input.data,
        out_dir=snakemake.output[0],
        device=snakemake.params.device,
        threads=snakemake.threads,
        checkpoint=checkpoint_path(snakemake.output[0]),
        checkpoint_minutes=snakemake.config["checkpoint"]["every_minutes"],
        **snakemake.params.job,
    )
except Interrupted as stop:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(128 + stop.signum)
END
"""
IMPORTS = """\
from optreg.training.checkpoint import Interrupted, checkpoint_path
from optreg.extensions import use_config_path
from optreg.training.job import run_job
"""
UNCOLLECTED = (
    "from optreg.process import imports_uncollected\nwith imports_uncollected():\n"
    + "".join(f"    {line}\n" for line in IMPORTS.splitlines())
)
EXIT = "from optreg.process import exit_now\nexit_now(0)\n"


def variants() -> dict[str, str]:
    def before(imports: str, end: str) -> str:
        return BEFORE.replace("IMPORTS\n", imports).replace("END\n", end)

    return {
        "before": before(IMPORTS, ""),
        "gc off during imports": before(UNCOLLECTED, ""),
        "os._exit at the end": before(IMPORTS, EXIT),
        "scripts/train.py": (ROOT / "scripts" / "train.py").read_text(),
    }


def job_args(config: dict, epochs: int, data: Path, tmp: Path) -> dict:
    job = next(j for j in jobs(config) if j.trains)
    return {
        "data": str(data),
        "out": str(tmp / "results" / "runs"),
        "log": str(tmp / "train.log"),
        "job": {
            "study": job.study,
            "combination": job.cell.id,
            "factors": job.cell.factors,
            "settings": {**job.cell.settings, "epochs": epochs},
            "phase": job.phase,
            "seeds": list(job.seeds),
            "tuning_seeds": list(job.tuning_seeds),
            "lr_grid": list(job.cell.lr_grid),
            "default_lr": job.cell.default_lr,
            "lr_limits": [min(job.cell.lr_grid), max(job.cell.lr_grid)],  # no extension
        },
    }


def run(script: Path, args: dict, cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one job process; its files must be there and complete."""
    shutil.rmtree(args["out"], ignore_errors=True)
    # As the workflow does once a job's files are there: a finished checkpoint left behind
    # would make the next process write the files from it instead of training.
    shutil.rmtree(cwd / "checkpoints", ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    errors = cwd / "stderr.txt"
    with open(errors, "w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, str(script), json.dumps(args)], cwd=cwd, env=env, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own CPU time
        wall = time.perf_counter() - start
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(
            f"{script.name} failed ({code}):\n{errors.read_text()}\n{Path(args['log']).read_text()}"
        )
    if " done: " not in Path(args["log"]).read_text().splitlines()[-1]:
        sys.exit(f"{script.name}: the log lacks its last line")
    if not (Path(args["out"]) / "SHA256SUMS").exists():
        sys.exit(f"{script.name}: no SHA256SUMS")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--config", default="config/smoke.yaml")
    args = parser.parse_args()
    config = load_config(str(ROOT / args.config))
    one, five, _ = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs; load average at start {one:.2f} {five:.2f}")
    with tempfile.TemporaryDirectory(prefix="optreg-process-") as tmp:
        tmp = Path(tmp)
        first = next(j for j in jobs(config) if j.trains)
        name = first.cell.settings["data"]["dataset"]
        data = tmp / f"{name}.pt"
        split = {
            k: config["data"][k] for k in ("split_seed", "validation_fraction", "test_fraction")
        }
        prepare(name, data, **split, generation=config["data"]["mnist1d"])
        job = job_args(config, args.epochs, data, tmp)
        scripts = {}
        for i, (label, source) in enumerate(variants().items()):
            scripts[label] = tmp / f"variant_{i}.py"
            scripts[label].write_text(PREAMBLE + source)
        labels = list(scripts)
        run(scripts[labels[0]], job, tmp)  # warm the file cache
        times = {label: [] for label in labels}
        for r in range(args.rounds):
            for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
                times[label].append(run(scripts[label], job, tmp))
    print(
        f"job: {first.study} {first.cell.id} ({first.phase}, {first.runs} runs, "
        f"{args.epochs} epoch(s)); {args.rounds} interleaved rounds; medians"
    )
    print("| process | wall s | CPU s | wall saved | CPU saved | CPU ratio to before |")
    print("| --- | --- | --- | --- | --- | --- |")
    base = times["before"]
    for label, values in times.items():
        wall = statistics.median(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        saved_wall = statistics.median(b[0] - v[0] for b, v in zip(base, values, strict=True))
        saved_cpu = statistics.median(b[1] - v[1] for b, v in zip(base, values, strict=True))
        ratio = statistics.median(v[1] / b[1] for b, v in zip(base, values, strict=True))
        print(
            f"| {label} | {wall:.2f} | {cpu:.2f} | {saved_wall:.2f} | {saved_cpu:.2f} | "
            f"{ratio:.2f} |"
        )
    one, five, _ = os.getloadavg()
    print(f"load average at end {one:.2f} {five:.2f}")


if __name__ == "__main__":
    main()
