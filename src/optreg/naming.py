"""Names of values, phases and run files: the one place that spells them.

A factor value's label in cell ids and file names (`format_value`), the phases of a train
job, and the file name of each run's metrics record. The workflow (`common.smk`) and the
train jobs both ask here, so the two cannot disagree.
"""

from __future__ import annotations

from typing import Any

PHASES = ("tune", "eval")


# A job that tunes a cell and then evaluates its first block of evaluation seeds, in one
# process: a train job's start (importing torch) costs more than a small cell's training.
FUSED = "tune-eval"


def format_value(value: Any) -> str:
    """The label of a factor value in file names and tables (0.001 -> '0.001', 1e-05 -> '1e-05')."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "x".join(format_value(v) for v in value) or "none"
    return str(value)
