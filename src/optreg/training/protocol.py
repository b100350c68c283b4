"""The tuning protocol: which runs each job trains, and how a learning rate is chosen.

Tuning trains every rate of the grid on the tuning seeds. Evaluation chooses the
rate from the tuning runs' final validation accuracy (never from test data; ties on the
validation loss, `choose_value`), then
trains the evaluation seeds at that rate (protocol `tuned`) and at the optimizer's
customary default rate (protocol `oneshot`). A job does one of the two (`tune`,
`eval`) or both in turn (`tune-eval`, see `optreg.study.matrix.jobs`).

A best rate on an edge of the grid says only that the best lies at or beyond it, so
before choosing, evaluation extends the grid past that edge by the grid's own step
(`extend_grid`), one rate at a time on the tuning seeds, until the best rate is interior
or the next rate would pass the configured limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from optreg.naming import run_file


@dataclass(frozen=True)
class Run:
    """One training run of a job: its learning rate, seed, protocol and file name."""

    lr: float
    seed: int
    protocol: str | None

    @property
    def filename(self) -> str:
        return run_file(self.lr, self.seed, self.protocol)


def choose_value(accuracy: dict, loss: dict, grid=None):
    """The value (a learning rate, a penalty strength) to choose: the key of `accuracy`
    (mean validation accuracy per value, only the eligible values) highest there; ties
    (equal to 1e-12) go to the lowest mean validation `loss`, then to the value nearest the
    middle of `grid` (all values tried, sorted; by position, so a grid holding 0 works),
    then to the smaller value. A missing or non-finite loss ranks last.

    Accuracy saturates on easy data (every rate at validation accuracy 1.0): ties going to
    the smallest rate then chose the rate with the worst validation loss of the grid."""
    if not accuracy:
        raise ValueError("no value to choose from")
    grid = sorted(grid if grid is not None else accuracy)
    middle = (len(grid) - 1) / 2
    top = max(accuracy.values())
    tied = [v for v, a in accuracy.items() if math.isclose(a, top, rel_tol=1e-12, abs_tol=1e-12)]

    def rank(value):
        value_loss = loss.get(value)
        finite = value_loss is not None and math.isfinite(value_loss)
        return (value_loss if finite else math.inf, abs(grid.index(value) - middle), value)

    return min(tied, key=rank)


def select_lr(tuning: list[dict]) -> dict:
    """The grid rate with the best mean final validation accuracy over the tuning seeds.

    A rate at which any tuning seed diverged is never chosen; ties go to the lower mean
    validation loss, then to the rate nearest the grid's middle (`choose_value`). Returns
    the choice with its evidence (mean validation accuracy and loss and diverged seeds per
    rate) and whether it lies on the edge of the grid.
    """
    by_lr: dict[float, list[dict]] = {}
    for record in tuning:
        by_lr.setdefault(float(record["settings"]["lr"]), []).append(record)
    grid = sorted(by_lr)
    means, losses, diverged = {}, {}, {}
    for lr in grid:
        runs = [r for r in by_lr[lr] if not r["diverged"]]
        diverged[lr] = len(by_lr[lr]) - len(runs)
        values = [r["final"]["val_accuracy"] for r in runs]
        means[lr] = sum(values) / len(values) if values and not diverged[lr] else math.nan
        val_losses = [r["final"].get("val_loss") for r in runs]
        known = values and not diverged[lr] and all(v is not None for v in val_losses)
        losses[lr] = sum(val_losses) / len(val_losses) if known else math.nan
    eligible = [lr for lr in grid if not math.isnan(means[lr])]
    if not eligible:
        cell = tuning[0]["combination"] if tuning else "?"
        raise ValueError(f"{cell}: every learning rate of the grid diverged on some tuning seed")
    best = choose_value({lr: means[lr] for lr in eligible}, losses, grid)
    return {
        "lr": best,
        "on_grid_edge": len(grid) > 1 and best in (grid[0], grid[-1]),
        "grid": grid,
        "val_accuracy_mean": [None if math.isnan(means[lr]) else means[lr] for lr in grid],
        "val_loss_mean": [None if not math.isfinite(losses[lr]) else losses[lr] for lr in grid],
        "diverged": [diverged[lr] for lr in grid],
        "tuning_seeds": sorted({r["seed"] for r in tuning}),
    }


def next_rate(selection: dict, limits) -> float | None:
    """The rate one grid step beyond the edge the selected rate lies on; None when it is
    interior, the grid has one rate (no step), or the next rate would pass `limits`.

    The step is the ratio of the two outermost rates on that side (the grids are
    logarithmic); the new rate is rounded to 3 significant digits, as grids are written.
    """
    grid, best = selection["grid"], selection["lr"]
    low, high = limits
    if len(grid) < 2 or best not in (grid[0], grid[-1]):
        return None
    if best == grid[-1]:
        rate = float(f"{grid[-1] * grid[-1] / grid[-2]:.3g}")
        return rate if grid[-1] < rate <= high else None
    rate = float(f"{grid[0] * grid[0] / grid[1]:.3g}")
    return rate if low <= rate < grid[0] else None


def extend_grid(tuning: list[dict], limits, train) -> tuple[list[dict], list[float]]:
    """Extend the grid past the edge the best rate lies on until it is interior or the
    limits stop it: `train(lr)` trains one more rate on the tuning seeds and returns its
    records. Returns all tuning records and the rates added, in order."""
    added: list[float] = []
    while (rate := next_rate(select_lr(tuning), limits)) is not None:
        tuning = tuning + train(rate)
        added.append(rate)
    return tuning, added


def added_rates(tuning: list[dict], lr_grid) -> list[float]:
    """The rates of tuning runs beyond the configured grid (added by `extend_grid`), nearest
    the grid first."""
    grid = sorted(float(lr) for lr in lr_grid)
    extra = {float(r["settings"]["lr"]) for r in tuning} - set(grid)
    return sorted(extra, key=lambda lr: abs(math.log(lr / (grid[0] if lr < grid[0] else grid[-1]))))


def plan_runs(
    phase: str,
    seeds,
    lr_grid,
    default_lr: float,
    tuning: list[dict] | None = None,
    extension: dict | None = None,
) -> tuple[list[Run], dict | None]:
    """The runs a job trains, and (for `eval`) the learning-rate selection behind them.

    `extension`, for `eval`: the rates `extend_grid` added (`extended`) and the `lr_limits`
    it stopped at, recorded with the selection."""
    seeds = sorted(seeds)
    if phase == "tune":
        return [Run(float(lr), s, None) for s in seeds for lr in sorted(lr_grid)], None
    if phase == "eval":
        selection = select_lr(tuning or [])
        if extension is not None:
            # Still on an edge after extending: the limits stopped the search.
            selection = {**selection, **extension, "stopped_at_limit": selection["on_grid_edge"]}
        tuned = [Run(selection["lr"], s, "tuned") for s in seeds]
        oneshot = [Run(float(default_lr), s, "oneshot") for s in seeds]
        return tuned + oneshot, selection
    raise ValueError(f"unknown phase {phase!r}; known: tune, eval")
