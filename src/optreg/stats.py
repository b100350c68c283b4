"""Statistics over seeds."""

from __future__ import annotations

import math

import numpy as np


def mean_ci(values, confidence: float = 0.95) -> dict[str, float]:
    """Mean, sample std and the Student-t confidence interval of the mean.

    With n seeds the interval is mean ± t_{(1+c)/2, n-1} · s / sqrt(n); it is
    undefined (NaN) for fewer than two values.
    """
    from scipy import stats

    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return {"n": n, "mean": mean, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}
