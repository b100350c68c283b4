"""The tests behind the verdicts: paired contrasts against a margin, their power, the chance of
being best, and the change of an effect across the levels of a factor.

Every function takes per-seed values (the evaluation seeds, paired across cells) and returns
plain numbers, so that each verdict of `optreg.analysis.claims` can be recomputed from the runs
table with nothing but a t distribution and the seeded bootstrap defined here:

- `contrast`: the mean paired difference, its Student-t interval, the two-sided t-test, and the
  two one-sided tests (TOST) of equivalence within ±margin;
- `detectable` and `seeds_to_decide`: the smallest difference the seeds detect at 80% power, and
  how many seeds would decide an undecided contrast if its mean and spread stayed as measured;
- `chance_of_best`: the joint bootstrap over seeds of every cell's rank;
- `interaction`: whether a paired difference changes across the levels of a factor.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

# The power at which the smallest detectable difference and the seeds needed are stated.
POWER = 0.8

# The joint bootstrap of `chance_of_best`: resamples and the generator's seed (fixed, so that
# a probability is the same number on every machine and every rerun).
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0

# `seeds_to_decide` looks this far and says "more" beyond it.
MAX_SEEDS = 1000


def _paired(a, b) -> np.ndarray:
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired samples need equal lengths, got {len(a)} and {len(b)}")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep] - b[keep]


def contrast(a, b, margin: float, confidence: float = 0.95) -> dict[str, float]:
    """Paired contrast of a against b over the seeds both have: mean of a − b, its Student-t
    interval at `confidence`, the two-sided t-test's p, and the TOST p of equivalence within
    ±`margin` (the larger of the two one-sided p-values: `p_lower` of H0 diff ≤ −margin and
    `p_upper` of H0 diff ≥ margin).

    With every difference equal the spread is zero: the test is decided by the sign of the
    difference (p 0 or 1), and equivalence by whether it lies inside the margin.
    """
    from scipy import stats

    if not margin > 0:
        raise ValueError(f"the margin must be positive, got {margin}")
    d = _paired(a, b)
    n = len(d)
    nan = math.nan
    out = {"n": n, "diff": nan, "sd": nan, "ci_low": nan, "ci_high": nan, "p": nan, "p_tost": nan}
    out.update(p_lower=nan, p_upper=nan)
    if n == 0:
        return out
    diff = float(d.mean())
    out["diff"] = diff
    if n < 2:
        return out
    sd = float(d.std(ddof=1))
    out["sd"] = sd
    if sd == 0:
        out.update(ci_low=diff, ci_high=diff, p=1.0 if diff == 0 else 0.0)
        out["p_lower"] = 0.0 if diff > -margin else 1.0
        out["p_upper"] = 0.0 if diff < margin else 1.0
        out["p_tost"] = max(out["p_lower"], out["p_upper"])
        return out
    df, se = n - 1, sd / math.sqrt(n)
    half = float(stats.t.ppf((1 + confidence) / 2, df)) * se
    t = diff / se
    p_lower = float(stats.t.sf((diff + margin) / se, df))  # H0: diff <= -margin
    p_upper = float(stats.t.cdf((diff - margin) / se, df))  # H0: diff >= +margin
    out.update(
        ci_low=diff - half,
        ci_high=diff + half,
        p=float(2 * stats.t.sf(abs(t), df)),
        p_tost=max(p_lower, p_upper),
        p_lower=p_lower,
        p_upper=p_upper,
    )
    return out


def _above(crit: float, df: int, ncp: float) -> float:
    """P(T > crit) for T noncentral t with `df` degrees of freedom and noncentrality `ncp`.
    scipy's series gives NaN far in the tails, where the answer is 0 or 1 to double precision."""
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.nct.sf(crit, df, ncp))
    if math.isfinite(p):
        return min(1.0, max(0.0, p))
    return 1.0 if ncp > crit else 0.0


def _power_two_sided(n: int, delta: float, sd: float, alpha: float) -> float:
    """Power of the two-sided paired t-test at level alpha with n seeds, true mean delta."""
    from scipy import stats

    if n < 2:
        return 0.0
    df = n - 1
    crit = float(stats.t.ppf(1 - alpha / 2, df))
    ncp = delta * math.sqrt(n) / sd
    return _above(crit, df, ncp) + _above(crit, df, -ncp)


def _power_tost(n: int, delta: float, sd: float, margin: float, alpha: float) -> float:
    """A lower bound (Bonferroni: P(A and B) >= P(A) + P(B) - 1) on the power of TOST at level
    alpha with n seeds when the true mean difference is delta."""
    from scipy import stats

    if n < 2 or abs(delta) >= margin:
        return 0.0
    df = n - 1
    crit = float(stats.t.ppf(1 - alpha, df))
    root = math.sqrt(n) / sd
    lower = _above(crit, df, (delta + margin) * root)
    upper = _above(crit, df, (margin - delta) * root)
    return max(0.0, lower + upper - 1)


def detectable(n: int, sd: float, alpha: float, power: float = POWER) -> float:
    """The smallest true mean difference a two-sided paired t-test at level `alpha` detects
    with probability `power` from n seeds whose differences spread by `sd`; NaN when
    undefined (fewer than two seeds, no spread)."""
    from scipy.optimize import brentq

    if n < 2 or not math.isfinite(sd) or sd <= 0:
        return math.nan
    high = sd
    while _power_two_sided(n, high, sd, alpha) < power:
        high *= 2
    return float(brentq(lambda x: _power_two_sided(n, x, sd, alpha) - power, 0.0, high))


def seeds_to_decide(
    diff: float, sd: float, margin: float, alpha: float, power: float = POWER
) -> int | None:
    """How many evaluation seeds would decide a contrast if its mean difference and spread
    stayed as measured: the fewest n at which the t-test (a difference beyond noise) or, for a
    difference inside the margin, TOST (no meaningful difference) reaches `power` at level
    `alpha`. None when more than MAX_SEEDS would be needed or the spread is unknown."""
    if not (math.isfinite(diff) and math.isfinite(sd)) or sd <= 0:
        return None

    def decides(n: int) -> bool:
        return (
            _power_two_sided(n, abs(diff), sd, alpha) >= power
            or _power_tost(n, diff, sd, margin, alpha) >= power
        )

    if not decides(MAX_SEEDS):
        return None
    low, high = 2, MAX_SEEDS  # both powers grow with n: bisect for the first n that decides
    while low < high:
        mid = (low + high) // 2
        if decides(mid):
            high = mid
        else:
            low = mid + 1
    return low


def chance_of_best(
    values: np.ndarray,
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, np.ndarray]:
    """Joint bootstrap over seeds of a seeds × cells matrix (the same seeds in every column):
    each resample draws n seeds with replacement, the same draw for every cell, so the
    pairing of cells on a seed is kept.

    Returns, per cell: `p_best`, the share of resamples in which its mean is the highest
    (a tie of k cells counts 1/k to each), and `rank_low`, `rank_high`, the equal-tailed
    `confidence` interval of its rank (1 = highest mean; ties take the lowest rank they share).
    Rows with a missing value are dropped first.
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"expected a seeds × cells matrix, got shape {x.shape}")
    x = x[np.isfinite(x).all(axis=1)]
    n, k = x.shape
    if n == 0:
        nan = np.full(k, np.nan)
        return {"p_best": nan, "rank_low": nan, "rank_high": nan.copy()}
    rng = np.random.default_rng(seed)
    p_best = np.zeros(k)
    ranks = np.empty((resamples, k))
    chunk = max(1, 200_000 // max(1, n * k))
    for start in range(0, resamples, chunk):
        stop = min(start + chunk, resamples)
        draw = rng.integers(0, n, size=(stop - start, n))
        means = x[draw].mean(axis=1)  # resamples × cells
        top = means.max(axis=1, keepdims=True)
        first = means == top
        p_best += (first / first.sum(axis=1, keepdims=True)).sum(axis=0)
        # Rank = 1 + the number of cells with a strictly higher mean.
        ranks[start:stop] = 1 + (means[:, None, :] > means[:, :, None]).sum(axis=2)
    tail = (1 - confidence) / 2
    low, high = np.quantile(ranks, [tail, 1 - tail], axis=0, method="inverted_cdf")
    return {"p_best": p_best / resamples, "rank_low": low, "rank_high": high}


def interaction(diffs: np.ndarray, confidence: float = 0.95) -> dict[str, float]:
    """Does a paired difference change across the levels of a factor? `diffs` is a seeds ×
    levels matrix of per-seed differences (the same seeds at every level).

    With two levels this is the paired t-test of (level 2 − level 1); with more, Hotelling's
    T² test that the k − 1 successive changes are all zero (no assumption on how the levels'
    differences covary). `change` is the mean of last − first level with its Student-t interval.
    """
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d).all(axis=1)]
    n, k = d.shape
    nan = math.nan
    out = {"n": n, "levels": k, "change": nan, "ci_low": nan, "ci_high": nan, "p": nan}
    if k < 2 or n < 2:
        return out
    last_first = contrast(d[:, -1], d[:, 0], margin=1.0, confidence=confidence)
    out.update(
        change=last_first["diff"], ci_low=last_first["ci_low"], ci_high=last_first["ci_high"]
    )
    steps = np.diff(d, axis=1)  # n × (k − 1)
    q = k - 1
    if q == 1:
        out["p"] = last_first["p"]
        return out
    if n <= q:
        return out  # too few seeds for the covariance of k − 1 changes
    mean = steps.mean(axis=0)
    cov = np.cov(steps, rowvar=False)
    try:
        t2 = float(n * mean @ np.linalg.solve(cov, mean))
    except np.linalg.LinAlgError:
        return out
    f = t2 * (n - q) / (q * (n - 1))
    out["p"] = float(stats.f.sf(f, q, n - q))
    return out
