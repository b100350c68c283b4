"""Statistics over seeds: the Student-t interval of a mean, paired tests and multiple-comparison
control."""

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

    With n seeds the interval is mean ± t_{(1+c)/2, n-1} · s / sqrt(n). NaN and infinite
    values are ignored; with fewer than two values the std and interval are NaN, and with
    all values equal the interval collapses onto the mean. Applied to paired differences
    (a − b over the same seeds) it is the paired interval of the mean difference.

    This is the one interval the project reports. At the few seeds a study has, the
    percentile bootstrap it replaced is too narrow (about 0.82 times this width at ten seeds,
    since it uses the plug-in std and normal quantiles) and covers the mean less often than
    its nominal level; tests/unit/analysis/test_coverage.py simulates both.
    """
    from scipy import stats

    _check_confidence(confidence)
    x = _finite(values)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return {"n": n, "mean": mean, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    if np.all(x == x[0]):
        # State it exactly: summing would round the mean off the common value.
        mean = float(x[0])
        return {"n": n, "mean": mean, "std": 0.0, "ci_low": mean, "ci_high": mean}
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


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
