"""The tuning protocol: which runs each job trains, and how a learning rate is chosen.

Tuning trains every rate of the grid on the tuning seeds. Evaluation chooses the
rate from the tuning runs' final validation accuracy (never from test data; ties on the
validation loss, `choose_value`), then trains the evaluation seeds under each protocol
(`protocols`), three tuning budgets and a second tuning:

- `tuned`: the rate chosen on the whole grid (extended at its edges, below);
- `oneshot`: the optimizer's customary default rate, no tuning at all;
- `small`: the rate chosen on a small grid, the grid rate nearest the default and its
  two neighbours (`small_grid`), on the same tuning runs, never extended;
- `retuned`: the rate chosen as for `tuned`, on the disjoint retuning seeds: how far a
  verdict depends on which seeds tuned it.

A job does one of the two (`tune`, `eval`) or both in turn (`tune-eval`, see
`optreg.study.matrix.jobs`).

A best rate on an edge of the grid says only that the best lies at or beyond it, so
before choosing, evaluation extends the grid past that edge by the grid's own step
(`extend_grid`), one rate at a time on the tuning seeds, until the best rate is interior
or the next rate would pass the configured limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from optreg.naming import PROTOCOLS, run_file

# The protocols that choose on a whole grid of their own tuning seeds (and extend it).
TUNING_PROTOCOLS = ("tuned", "retuned")


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


def protocols(lr_grid, default_lr: float, retuning_seeds=()) -> tuple[str, ...]:
    """The protocols a cell's evaluation seeds are trained under, in `PROTOCOLS` order: with
    a one-rate grid there is nothing to choose, so only `tuned` (that rate) and `oneshot`;
    `small` only where its grid is smaller than the whole grid, `retuned` only with retuning
    seeds."""
    if len(lr_grid) < 2:
        return ("tuned", "oneshot")
    small = len(small_grid(lr_grid, default_lr)) < len(lr_grid)
    return tuple(
        p
        for p in PROTOCOLS
        if (p != "small" or small) and (p != "retuned" or len(retuning_seeds) > 0)
    )


def small_grid(lr_grid, default_lr: float) -> list[float]:
    """The small tuning budget's rates: the grid rate nearest `default_lr` (on a log scale;
    the lower of two equally near) and its neighbours on the grid, two or three rates."""
    grid = sorted(float(lr) for lr in lr_grid)
    near = min(range(len(grid)), key=lambda i: (abs(math.log(grid[i] / default_lr)), i))
    return grid[max(0, near - 1) : near + 2]


def tuning_sets(tuning: list[dict], retuning_seeds=()) -> dict[str, list[dict]]:
    """The tuning records each tuning protocol chooses from: `tuned` those of the tuning
    seeds, `retuned` (with retuning seeds) those of the retuning seeds."""
    again = set(retuning_seeds)
    sets = {"tuned": [r for r in tuning if r["seed"] not in again]}
    if again:
        sets["retuned"] = [r for r in tuning if r["seed"] in again]
    return sets


def selections(
    tuning: list[dict], lr_grid, default_lr: float, retuning_seeds=(), extensions=None
) -> dict[str, dict]:
    """The learning-rate selection of every protocol that chooses one (`tuned`, `small`,
    `retuned`; `oneshot` takes the default rate). `extensions` maps a tuning protocol to the
    rates `extend_grid` added for it (`extended`) and the `lr_limits` it stopped at."""
    sets = tuning_sets(tuning, retuning_seeds)
    out = {}
    for protocol, records in sets.items():
        selection = select_lr(records)
        extension = (extensions or {}).get(protocol)
        if extension is not None:
            # Still on an edge after extending: the limits stopped the search.
            selection = {**selection, **extension, "stopped_at_limit": selection["on_grid_edge"]}
        out[protocol] = selection
    if "small" in protocols(lr_grid, default_lr, retuning_seeds):
        small = small_grid(lr_grid, default_lr)
        chosen = [r for r in sets["tuned"] if float(r["settings"]["lr"]) in small]
        out["small"] = select_lr(chosen)
    return out


def plan_runs(
    phase: str,
    seeds,
    lr_grid,
    default_lr: float,
    chosen: dict[str, dict] | None = None,
    retuning_seeds=(),
) -> list[Run]:
    """The runs a job trains: for `tune`, every grid rate on `seeds`; for `eval`, `seeds`
    under every protocol of the cell (`protocols`), at the rates of `chosen` (`selections`)."""
    seeds = sorted(seeds)
    if phase == "tune":
        return [Run(float(lr), s, None) for s in seeds for lr in sorted(lr_grid)]
    if phase == "eval":
        rates = {p: selection["lr"] for p, selection in (chosen or {}).items()}
        rates["oneshot"] = float(default_lr)
        cell = protocols(lr_grid, default_lr, retuning_seeds)
        return [Run(rates[p], s, p) for p in cell for s in seeds]
    raise ValueError(f"unknown phase {phase!r}; known: tune, eval")
