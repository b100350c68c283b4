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


# A train job's folder of run records, under the results folder; its parts are the rule's
# wildcards (workflow/rules/train.smk).
RUN_DIR = "studies/{study}/{phase}/{combination}/seeds-{block}"
# The protocols an evaluation run is recorded under (optreg.training.protocol): at the rate
# tuned on the grid, at the default rate, tuned on a small grid, tuned on other seeds.
PROTOCOLS = ("tuned", "oneshot", "small", "retuned")


def run_dir(study: str, phase: str, combination: str, block: str) -> str:
    """A train job's folder of run records, relative to the results folder."""
    return RUN_DIR.format(study=study, phase=phase, combination=combination, block=block)


def run_file(lr: float, seed: int, protocol: str | None = None) -> str:
    """The metrics file of one run: a tuning run by its rate, an evaluation run by protocol."""
    if protocol is None:
        return f"lr-{format_value(lr)}_seed-{seed}.json"
    return f"{protocol}_seed-{seed}.json"


def format_value(value: Any) -> str:
    """The label of a factor value in file names and tables (0.001 -> '0.001', 1e-05 -> '1e-05')."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "x".join(format_value(v) for v in value) or "none"
    return str(value)
