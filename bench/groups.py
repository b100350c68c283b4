"""Effect of grouping train jobs on SLURM: submissions and wall time, with and without groups.

Usage: python bench/groups.py [--config config/smoke.yaml] [--until RULE] [--sizes 1,8]

Needs a SLURM cluster reachable from here, e.g. the single-node one of
`sudo tests/slurm/setup.sh`. For each group size N it runs the study on a fresh copy of the
project through profiles/slurm (plus tests/slurm/profile, which only shortens the executor's
first status check) with `--group-components train=N` (N=1: every train job is submitted
alone) and `--cores` = the CPUs of one node, and reports the Snakemake jobs, the SLURM jobs
submitted (counted again in `sacct`), the summed SLURM run time of those jobs and the wall
time of the whole call. Every call runs under `timeout -k`. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, copy_project, snakemake

LIMIT_S = 1800


def seconds(elapsed: str) -> int:
    """SLURM's [D-]HH:MM:SS as seconds."""
    days, _, clock = elapsed.rpartition("-")
    h, m, s = (int(x) for x in clock.split(":"))
    return int(days or 0) * 86400 + h * 3600 + m * 60 + s


def run_size(config: str, until: str | None, size: int, cores: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="optreg-groups-") as tmp:
        work = copy_project(Path(tmp))
        cmd = ["timeout", "-k", "10", str(LIMIT_S)] + snakemake(
            cores,
            "--profile", "profiles/slurm", "--profile", str(ROOT / "tests" / "slurm" / "profile"),
            "--group-components", f"train={size}", "--configfile", config,
        )  # fmt: skip
        if until:
            cmd += ["--until", until]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        wall = time.perf_counter() - start
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        sys.exit(f"group size {size}: snakemake failed ({proc.returncode}):\n{out[-4000:]}")
    run_id = re.search(r"SLURM run ID: (\S+)", out)[1]
    steps = int(re.findall(r"(\d+) of \d+ steps \(\d+%\) done", out)[-1])  # with --until: < 100%
    submitted = len(re.findall(r"submitted with SLURM jobid", out))
    acct = subprocess.run(
        ["sacct", "-n", "-X", "-P", "--name", run_id, "-S", "now-1day", "-o", "State,Elapsed"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return {
        "size": size,
        "steps": steps,
        "submitted": submitted,
        "in_sacct": len(acct),
        "completed": sum(line.startswith("COMPLETED|") for line in acct),
        "slurm_s": sum(seconds(line.split("|")[1]) for line in acct),
        "wall": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/smoke.yaml")
    parser.add_argument("--until", default=None, help="stop after this rule, e.g. train")
    parser.add_argument("--sizes", default="1,8", help="train jobs per group, comma-separated")
    args = parser.parse_args()
    if shutil.which("sinfo") is None:
        sys.exit("no SLURM cluster: no sinfo command (start one: tests/slurm/setup.sh)")
    sinfo = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True)
    if sinfo.returncode != 0:
        sys.exit(f"no SLURM cluster: {sinfo.stderr.strip()} (start one: tests/slurm/setup.sh)")
    cores = min(int(c) for c in sinfo.stdout.split())
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        rows.append(run_size(args.config, args.until, size, cores))
        print(f"done: group size {size}", file=sys.stderr)
    until = f" --until {args.until}" if args.until else ""
    print(f"SLURM nodes with {cores} CPUs; --cores {cores}; config {args.config}{until}")
    print(
        f"{'train per group':>16}{'snakemake jobs':>16}{'sbatch calls':>14}"
        f"{'in sacct':>10}{'COMPLETED':>11}{'SLURM job s':>13}{'wall s':>9}"
    )
    for r in rows:
        print(
            f"{r['size']:>16}{r['steps']:>16}{r['submitted']:>14}{r['in_sacct']:>10}"
            f"{r['completed']:>11}{r['slurm_s']:>13}{r['wall']:>9.1f}"
        )


if __name__ == "__main__":
    main()
