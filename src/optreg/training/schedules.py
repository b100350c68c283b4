"""Learning-rate schedules: the factor each training step's rate is multiplied by.

A schedule is a function of the step about to be taken (0-based) and the run's total steps
(epochs x batches per epoch); the loop scales every optimizer, stacked rules and
`torch.optim` ones alike, before each step (`Optimizer.scale`), so each run keeps its own
tuned rate and follows the same shape. The factor depends on nothing but the step count,
which a checkpoint holds: a resumed run follows its schedule exactly.

A new schedule is one function here and one entry in `SCHEDULES`.
"""

from __future__ import annotations

import math

# The share of a run's steps a warm-up lasts (linear from 1/W to 1 over W steps).
WARMUP_FRACTION = 0.05
# Step decay: the rate is multiplied by STEP_GAMMA at each of these fractions of training.
STEP_MILESTONES = (0.5, 0.75)
STEP_GAMMA = 0.1


def constant(step: int, total: int) -> float:
    """The configured rate throughout."""
    return 1.0


def cosine(step: int, total: int) -> float:
    """Cosine decay from the rate at the first step towards zero after the last
    (SGDR's annealing without restarts): (1 + cos(pi t / T)) / 2."""
    return 0.5 * (1.0 + math.cos(math.pi * step / total))


def warmup_cosine(step: int, total: int) -> float:
    """A linear warm-up over the first `WARMUP_FRACTION` of the steps (at least one), then
    cosine decay towards zero over the rest."""
    warmup = max(1, round(WARMUP_FRACTION * total))
    if step < warmup:
        return (step + 1) / warmup
    return cosine(step - warmup, max(1, total - warmup))


def step_decay(step: int, total: int) -> float:
    """The rate multiplied by `STEP_GAMMA` at each of `STEP_MILESTONES` (fractions of the
    steps): 1, then 0.1 from half-way, 0.01 from three quarters."""
    passed = sum(step >= math.ceil(m * total) for m in STEP_MILESTONES)
    return STEP_GAMMA**passed


SCHEDULES = {
    "constant": constant,
    "cosine": cosine,
    "warmup_cosine": warmup_cosine,
    "step": step_decay,
}


def schedule(name: str):
    """The schedule called `name`: a function (step, total steps) -> factor."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; known: {', '.join(SCHEDULES)}")
    return SCHEDULES[name]


def steps_per_epoch(samples: int, batch_size: int) -> int:
    """Batches in one epoch: the last one may be short."""
    return math.ceil(samples / batch_size)
