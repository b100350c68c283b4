"""Statistics over seeds: intervals of a mean, paired tests and multiple-comparison control."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


PAIR_COLUMNS = [
    "cell_a",
    "cell_b",
    "n",
    "mean_a",
    "mean_b",
    "diff",
    "t",
    "p",
    "p_holm",
    "effect_size",
    "significant",
]


def _finite(values) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    return x[np.isfinite(x)]


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")


def mean_ci(values, confidence: float = 0.95) -> dict[str, float]:
    """Mean, sample std and the Student-t confidence interval of the mean.

    With n seeds the interval is mean ± t_{(1+c)/2, n-1} · s / sqrt(n); it is
    undefined (NaN) for fewer than two values.
    """
    from scipy import stats

    x = _finite(values)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return {"n": n, "mean": mean, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


def bootstrap_ci(
    values, confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> dict[str, float]:
    """Mean, sample std and the percentile-bootstrap confidence interval of the mean.

    NaN and infinite values are ignored. The resampling is deterministic given
    `seed`. With one value the std and interval are NaN; with all values equal
    the interval collapses onto the mean.
    """
    _check_confidence(confidence)
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    x = _finite(values)
    n = len(x)
    if n == 0:
        return {"n": 0, "mean": math.nan, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    if np.all(x == x[0]):
        # Every resample has this mean; state it exactly, as summing would round it.
        mean, std = float(x[0]), (0.0 if n > 1 else math.nan)
        low = high = mean if n > 1 else math.nan
        return {"n": n, "mean": mean, "std": std, "ci_low": low, "ci_high": high}
    mean, std = float(x.mean()), float(x.std(ddof=1))
    rng = np.random.default_rng(seed)
    # Draw in chunks so that many seeds never need a resamples × n index matrix at once.
    chunk = max(1, 1_000_000 // n)
    means = np.empty(resamples)
    for start in range(0, resamples, chunk):
        stop = min(start + chunk, resamples)
        means[start:stop] = x[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return {"n": n, "mean": mean, "std": std, "ci_low": float(low), "ci_high": float(high)}


def paired_test(a, b) -> dict[str, float]:
    """Paired t-test of a against b (the same seeds, in the same order).

    Pairs where either value is missing are dropped. `diff` is the mean of
    a − b and `effect_size` Cohen's d_z, mean(a − b) / std(a − b). When every
    difference is zero there is nothing to detect: t = 0, p = 1, d_z = 0.
    """
    from scipy import stats

    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired samples need equal lengths, got {len(a)} and {len(b)}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = len(a)
    nan = math.nan
    out = {"n": n, "mean_a": nan, "mean_b": nan, "diff": nan, "t": nan, "p": nan}
    out["effect_size"] = nan
    if n == 0:
        return out
    d = a - b
    out.update(mean_a=float(a.mean()), mean_b=float(b.mean()), diff=float(d.mean()))
    if n < 2:
        return out
    sd = float(d.std(ddof=1))
    if sd == 0:
        # scipy returns NaN (all zero) or ±inf with a precision warning (constant shift).
        if out["diff"] == 0:
            out.update(t=0.0, p=1.0, effect_size=0.0)
        else:
            out.update(t=math.copysign(math.inf, out["diff"]), p=0.0)
            out["effect_size"] = out["t"]
        return out
    with warnings.catch_warnings():
        # Nearly constant differences trigger scipy's precision warning; the result stands.
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_rel(a, b)
    out.update(t=float(res.statistic), p=float(res.pvalue), effect_size=out["diff"] / sd)
    return out


def holm(pvalues) -> np.ndarray:
    """Holm–Bonferroni step-down adjusted p-values, in the input order.

    NaN stays NaN and does not count towards the number of tests.
    """
    p = np.asarray(pvalues, dtype=float).ravel()
    out = np.full(p.shape, np.nan)
    present = ~np.isnan(p)
    q = p[present]
    if np.any((q < 0) | (q > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {q[(q < 0) | (q > 1)].tolist()}")
    m = len(q)
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    # The i-th smallest (0-based) is multiplied by m − i; the running maximum keeps the
    # adjusted values monotone, as the step-down procedure stops at the first failure.
    scaled = np.minimum(1.0, np.maximum.accumulate(q[order] * (m - np.arange(m))))
    adjusted = np.empty(m)
    adjusted[order] = scaled
    out[present] = adjusted
    return out


def pairwise_comparisons(
    runs: pd.DataFrame,
    cell_col: str = "combination",
    seed_col: str = "seed",
    value_col: str = "test_accuracy",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Paired t-tests between every two cells, on the seeds both have, Holm-adjusted.

    Cells are taken in order of first appearance and each unordered pair once,
    earlier cell as `cell_a`. `mean_a` and `mean_b` are over the paired seeds
    only. `p_holm` adjusts over all pairs of this call; `significant` is
    p_holm < alpha.
    """
    import pandas as pd

    if runs.empty:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    dupes = runs[runs.duplicated([cell_col, seed_col], keep=False)]
    if not dupes.empty:
        first = dupes.iloc[0]
        raise ValueError(
            f"cell {first[cell_col]!r} has seed {first[seed_col]!r} more than once; "
            "paired comparisons need one value per cell and seed"
        )
    cells = list(pd.unique(runs[cell_col]))
    wide = runs.pivot(index=seed_col, columns=cell_col, values=value_col).astype(float)
    rows = []
    for i, cell_a in enumerate(cells):
        for cell_b in cells[i + 1 :]:
            test = paired_test(wide[cell_a].to_numpy(), wide[cell_b].to_numpy())
            rows.append({"cell_a": cell_a, "cell_b": cell_b, **test})
    if not rows:  # a single cell: nothing to compare
        return pd.DataFrame(columns=PAIR_COLUMNS)
    out = pd.DataFrame(rows)
    out["p_holm"] = holm(out["p"].to_numpy())
    out["significant"] = (out["p_holm"] < alpha).to_numpy(dtype=bool)
    return out[PAIR_COLUMNS]
