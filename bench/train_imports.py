"""A train job's imports: the wall time of a process that imports its code, and what it loads.

Usage: python bench/train_imports.py [--repeats 5]

The median wall time of `repeats` fresh Python processes that import
`optreg.training.job` (what scripts/train.py imports), and which of torchvision, pandas,
matplotlib, seaborn, scipy, sklearn and `torch._dynamo` such a process loaded
(`tests/unit/training/test_lean.py` fails if a real train job loads any). No target. A
benchmark, not a test.
"""

from __future__ import annotations

import argparse
import statistics

import common
from common import checkout_env, python_child, row

HEAVY = ("torchvision", "pandas", "matplotlib", "seaborn", "scipy", "sklearn", "torch._dynamo")


def train_imports(repeats: int) -> tuple[float, list[str]]:
    """Median wall of a process that imports the train job's code; heavy modules it loaded."""
    code = (
        "import sys, optreg.training.job; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    walls, heavy = [], ""
    for _ in range(repeats):
        child = python_child(code, what="importing optreg.training.job", env=checkout_env())
        walls.append(child.wall)
        heavy = child.stdout.strip()
    return statistics.median(walls), [m for m in heavy.split(",") if m]


def rows(repeats: int) -> None:
    seconds, heavy = train_imports(repeats)
    row(
        "import optreg.training.loop (process wall)",
        f"{seconds:.2f} s",
        f"heavy modules: {', '.join(heavy) or 'none'}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="processes timed")
    common.table(parser, lambda args: rows(args.repeats))


if __name__ == "__main__":
    main()
