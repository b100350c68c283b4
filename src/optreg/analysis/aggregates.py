"""Aggregates across problems with their uncertainty: the interquartile mean of normalized
scores and the probability of improvement, with stratified-bootstrap intervals.

These are the definitions of Agarwal et al. (2021), "Deep reinforcement learning at the edge
of the statistical precipice" (NeurIPS), as google-research/rliable implements them, on
numpy and scipy alone:

- a run's *score* is its test accuracy normalized per problem, so that problems are
  comparable: (accuracy − m) / (1 − m), with m the majority-class rate of the problem's test
  split. 0 is what always predicting the most frequent class scores, 1 is perfect; a run
  worse than that baseline scores below 0. A run with no test accuracy (it diverged) scores 0.
- `iqm`: the interquartile mean (25% trimmed mean) of all runs of all problems pooled
  (rliable `metrics.aggregate_iqm`: `scipy.stats.trim_mean(scores, 0.25, axis=None)`).
- `probability_of_improvement`: P(X > Y), on each problem the Mann–Whitney U statistic of
  X's runs against Y's divided by the number of pairs (a tie counts 1/2), averaged over
  the problems (rliable `metrics.probability_of_improvement`).
- `stratified_interval`: the percentile interval of a statistic over stratified-bootstrap
  resamples, in which each problem's runs are resampled with replacement, independently per
  problem, so that a resample never mixes problems (rliable `library.StratifiedBootstrap`,
  and `StratifiedIndependentBootstrap` resampling X and Y independently for the
  probability of improvement; `library.get_interval_estimates` defaults to this percentile
  method). The resamples are drawn from a fixed seed: the numbers are reproducible.

Score matrices are (runs × problems), rliable's (`num_runs` × `num_tasks`) layout; every
function also takes a stack of them (leading axes), which is how the bootstrap evaluates
all its resamples at once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

RESAMPLES = 10_000
SEED = 0
AGGREGATE_COLUMNS = ["protocol", "optimizer", "iqm", "ci_low", "ci_high", "problems", "runs"]
IMPROVEMENT_COLUMNS = ["protocol", "x", "y", "probability", "ci_low", "ci_high"]


def normalized_score(accuracy, majority: float) -> np.ndarray:
    """Accuracy rescaled so that the majority-class rate `majority` is 0 and perfect is 1."""
    if not 0 <= majority < 1:
        raise ValueError(f"a majority-class rate lies in [0, 1), got {majority}")
    return (np.asarray(accuracy, dtype=float) - majority) / (1 - majority)


def iqm(scores) -> np.ndarray | float:
    """Interquartile mean of the runs × problems matrix `scores`, all entries pooled (over
    the last two axes of a stack of matrices)."""
    from scipy import stats

    x = np.asarray(scores, dtype=float)
    if x.ndim < 2:
        raise ValueError(f"scores are a runs × problems matrix, got shape {x.shape}")
    flat = x.reshape(*x.shape[:-2], -1)
    out = stats.trim_mean(flat, 0.25, axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def probability_of_improvement(x, y) -> np.ndarray | float:
    """P(X > Y): per problem (column), the share of (X run, Y run) pairs where X scores more,
    a tie counting 1/2 (the Mann–Whitney U of X over the number of pairs); averaged over the
    problems. `x` is runs_x × problems and `y` runs_y × problems (or stacks of them)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim < 2 or y.ndim < 2 or x.shape[-1] != y.shape[-1]:
        raise ValueError(f"X and Y need runs × problems matrices, got {x.shape} and {y.shape}")
    diff = x[..., :, None, :] - y[..., None, :, :]  # runs_x × runs_y × problems
    per_problem = ((diff > 0) + 0.5 * (diff == 0)).mean(axis=(-3, -2))
    out = per_problem.mean(axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def stratified_resample(scores: np.ndarray, resamples: int, rng: np.random.Generator):
    """`resamples` stratified-bootstrap resamples of a runs × problems matrix, stacked: each
    column's runs drawn with replacement from that column only."""
    n_runs, n_problems = scores.shape
    rows = rng.integers(0, n_runs, size=(resamples, n_runs, n_problems))
    return scores[rows, np.arange(n_problems)]


def stratified_interval(
    statistic: Callable[..., np.ndarray],
    *scores,
    confidence: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float]:
    """Percentile interval of `statistic(*scores)` over stratified-bootstrap resamples, each
    matrix of `scores` resampled independently (runs within each problem)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    matrices = [np.asarray(s, dtype=float) for s in scores]
    rng = np.random.default_rng(seed)
    # In chunks, so that many runs and problems never need every resample in memory at once.
    size = max(m.size for m in matrices)
    chunk = max(1, 2_000_000 // (size * max(m.shape[0] for m in matrices)))
    values = []
    for start in range(0, resamples, chunk):
        count = min(chunk, resamples - start)
        values.append(statistic(*(stratified_resample(m, count, rng) for m in matrices)))
    low, high = np.quantile(np.concatenate(values), [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def score_matrices(
    runs: pd.DataFrame, majority: dict[str, float], protocol: str
) -> dict[str, pd.DataFrame]:
    """Each optimizer's normalized test scores of one protocol's evaluation runs, as a
    seeds × problems frame (`majority`: problem -> majority-class rate of its test split).

    Every optimizer must have run every problem on the same seeds; a diverged run's missing
    accuracy scores 0, the majority-class baseline.
    """
    evals = runs[(runs["phase"] == "eval") & (runs["protocol"] == protocol)]
    problems = list(pd.unique(evals["problem"]))
    unknown = [p for p in problems if p not in majority]
    if unknown:
        raise ValueError(f"no majority-class rate for problem(s) {unknown}")
    out = {}
    for optimizer, group in evals.groupby("optimizer", sort=False):
        if group.duplicated(["problem", "seed"]).any():
            raise ValueError(f"{optimizer}: a problem has a seed more than once")
        wide = group.pivot(index="seed", columns="problem", values="test_accuracy")
        wide = wide.reindex(columns=problems)
        if wide.shape[1] != len(problems) or wide.index.size == 0:
            raise ValueError(f"{optimizer} has no runs on some of the problems {problems}")
        present = group.pivot(index="seed", columns="problem", values="combination")
        if present.reindex(columns=problems).isna().to_numpy().any():
            raise ValueError(f"{optimizer}: the problems {problems} do not share their seeds")
        scores = {p: normalized_score(wide[p].to_numpy(), majority[p]) for p in problems}
        out[optimizer] = pd.DataFrame(scores, index=wide.index).fillna(0.0)
    return out


def aggregate_table(
    runs: pd.DataFrame,
    majority: dict[str, float],
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    protocols=("tuned", "oneshot"),
) -> pd.DataFrame:
    """Per protocol and optimizer: the IQM of its normalized scores over every problem and
    evaluation seed, with its 95% stratified-bootstrap interval."""
    rows = []
    for protocol in protocols:
        for optimizer, scores in score_matrices(runs, majority, protocol).items():
            matrix = scores.to_numpy()
            low, high = stratified_interval(iqm, matrix, resamples=resamples, seed=seed)
            rows.append(
                {
                    "protocol": protocol,
                    "optimizer": optimizer,
                    "iqm": iqm(matrix),
                    "ci_low": low,
                    "ci_high": high,
                    "problems": matrix.shape[1],
                    "runs": matrix.size,
                }
            )
    return pd.DataFrame(rows, columns=AGGREGATE_COLUMNS)


def improvement_table(
    runs: pd.DataFrame,
    majority: dict[str, float],
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    protocols=("tuned", "oneshot"),
) -> pd.DataFrame:
    """Per protocol and ordered pair of optimizers (x, y): P(x > y) across the problems, with
    its 95% stratified-bootstrap interval (x's and y's runs resampled independently)."""
    rows = []
    for protocol in protocols:
        matrices = score_matrices(runs, majority, protocol)
        for x, sx in matrices.items():
            for y, sy in matrices.items():
                if x == y:
                    continue
                a, b = sx.to_numpy(), sy.to_numpy()
                low, high = stratified_interval(
                    probability_of_improvement, a, b, resamples=resamples, seed=seed
                )
                rows.append(
                    {
                        "protocol": protocol,
                        "x": x,
                        "y": y,
                        "probability": probability_of_improvement(a, b),
                        "ci_low": low,
                        "ci_high": high,
                    }
                )
    return pd.DataFrame(rows, columns=IMPROVEMENT_COLUMNS)


def majority_rates(summary: pd.DataFrame, split: str = "test") -> dict[str, float]:
    """Problem -> majority-class rate of its `split`, from a summary table's
    `<split>_majority_rate` column (`optreg.analysis.tables.summary_table`)."""
    column = f"{split}_majority_rate"
    if column not in summary or "problem" not in summary:
        raise ValueError(f"the summary table has no columns 'problem' and {column!r}")
    rates = summary.groupby("problem")[column].first()
    return {str(k): float(v) for k, v in rates.items()}
