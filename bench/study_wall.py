"""Wall time of the default study through the PDF, and of a no-op rerun.

Usage: python bench/study_wall.py [--cores 8] [--config config/config.yaml]

Runs on a fresh copy of the project in a temporary folder (the checkout's
results/ is untouched) and prints a small table. A benchmark, not a test:
its numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from common import ROOT, copy_project, snakemake, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=8)
    parser.add_argument("--config", default="config/config.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="optreg-bench-") as tmp:
        work = copy_project(Path(tmp), ROOT / args.config)
        cmd = snakemake(args.cores)
        full = timed(cmd, work)
        runs = len(list((work / "results" / "studies").rglob("*seed-*.json")))
        noop = timed(cmd, work)
    print(f"machine: {os.cpu_count()} CPUs; snakemake --cores {args.cores}; config {args.config}")
    print(f"{'measurement':<40}{'wall s':>10}")
    print(f"{f'full study through the PDF ({runs} runs)':<40}{full:>10.1f}")
    print(f"{'no-op rerun':<40}{noop:>10.1f}")


if __name__ == "__main__":
    main()
