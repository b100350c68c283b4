"""The tests behind the verdicts: checked against textbook formulas, and by simulation against
the error rates the rule table promises (false supported and false "no meaningful difference"
at most alpha, at the null and at the margin)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from optreg.analysis.claims import NO_DIFFERENCE, SUPPORTED, evaluate_claims
from optreg.analysis.inference import (
    chance_of_best,
    contrast,
    detectable,
    interaction,
    seeds_to_decide,
)

ALPHA, MARGIN, N = 0.05, 0.01, 10
REPS = 4000
# A simulated rate may exceed its exact value by Monte Carlo error: three standard errors.
SLACK = 3 * math.sqrt(ALPHA * (1 - ALPHA) / REPS)


def test_contrast_is_the_paired_t_test_and_tost():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.6, 0.01, N), rng.normal(0.595, 0.01, N)
    c = contrast(a, b, MARGIN)
    d = a - b
    se = d.std(ddof=1) / math.sqrt(N)
    assert c["diff"] == pytest.approx(d.mean())
    assert c["p"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    half = stats.t.ppf(0.975, N - 1) * se
    assert (c["ci_low"], c["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    lower = stats.ttest_1samp(d, -MARGIN, alternative="greater").pvalue
    upper = stats.ttest_1samp(d, MARGIN, alternative="less").pvalue
    assert c["p_tost"] == pytest.approx(max(lower, upper))


def test_contrast_drops_unpaired_seeds_and_handles_zero_spread():
    c = contrast([0.5, 0.6, np.nan], [0.4, 0.5, 0.3], MARGIN)
    assert c["n"] == 2 and c["diff"] == pytest.approx(0.1)
    assert c["p"] == 0.0 and c["p_tost"] == 1.0  # a constant shift of 10 points
    same = contrast([0.5, 0.6], [0.5, 0.6], MARGIN)
    assert same["p"] == 1.0 and same["p_tost"] == 0.0
    with pytest.raises(ValueError, match="margin"):
        contrast([1, 2], [1, 2], 0)


def _simulate(delta: float, reps: int = REPS, sd: float = 0.01, skew: bool = False):
    """reps studies of N paired differences with true mean delta: each one's contrast."""
    rng = np.random.default_rng(7)
    # Skewed: a centred gamma of shape 16 (skewness 0.5), scaled to `sd`. The paired
    # differences of the default study show no more skew than normal samples of 10 do (median
    # |sample skewness| 0.42 over its 276 pairs, against 0.37 for normal data); at skewness 1
    # the t-interval still covers 93.7%, at 2 (exponential) 90%, and no 10-seed interval does
    # much better there.
    noise = (rng.gamma(16, 1, (reps, N)) - 16) / 4 * sd if skew else rng.normal(0, sd, (reps, N))
    d = delta + noise
    return [contrast(row, np.zeros(N), MARGIN) for row in d]


@pytest.mark.parametrize("skew", [False, True])
def test_false_supported_at_most_alpha_under_the_null(skew):
    """No true difference: 'supported' (significant in the claimed direction) at most alpha."""
    results = _simulate(0.0, skew=skew)
    supported = np.mean([c["p"] < ALPHA and c["diff"] < 0 for c in results])
    assert supported <= ALPHA
    # And both directions together hold the level (the test is two-sided).
    assert np.mean([c["p"] < ALPHA for c in results]) <= ALPHA + SLACK


@pytest.mark.parametrize("delta", [MARGIN, -MARGIN])
def test_false_no_meaningful_difference_at_most_alpha_at_the_margin(delta):
    """A true difference of exactly the margin is not 'no meaningful difference' more often
    than alpha (TOST's level; at the boundary its rate is alpha itself, up to Monte Carlo
    error), and less often further out."""
    assert np.mean([c["p_tost"] < ALPHA for c in _simulate(delta, sd=0.01)]) <= ALPHA + SLACK
    assert np.mean([c["p_tost"] < ALPHA for c in _simulate(1.5 * delta, sd=0.01)]) < ALPHA


@pytest.mark.parametrize("skew", [False, True])
def test_intervals_of_paired_differences_cover(skew):
    """The Student-t interval of a paired difference covers its true mean >= 94% of the time at
    nominal 95% with 10 seeds, normal or skewed."""
    results = _simulate(0.003, skew=skew)
    covered = np.mean([c["ci_low"] <= 0.003 <= c["ci_high"] for c in results])
    assert covered >= 0.94


def test_detectable_is_the_difference_with_80_percent_power():
    sd, alpha = 0.02, 0.05 / 48
    mde = detectable(N, sd, alpha)
    rng = np.random.default_rng(3)
    d = rng.normal(mde, sd, (4000, N))
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / math.sqrt(N))
    power = np.mean(np.abs(t) > stats.t.ppf(1 - alpha / 2, N - 1))
    assert power == pytest.approx(0.8, abs=0.03)
    assert detectable(2 * N, sd, alpha) < mde < detectable(N, 2 * sd, alpha)
    assert math.isnan(detectable(1, sd, alpha)) and math.isnan(detectable(N, 0.0, alpha))


def test_seeds_to_decide():
    # A 2-point difference with a 2-point spread: a handful of seeds; at 0.05 points with a
    # large spread the t-test needs many, but TOST decides "no meaningful difference" sooner.
    few = seeds_to_decide(0.02, 0.02, MARGIN, 0.05)
    assert 5 <= few <= 15
    tiny = seeds_to_decide(0.0005, 0.02, MARGIN, 0.05)
    assert few < tiny < 1000
    assert seeds_to_decide(0.0, 0.5, MARGIN, 0.05) is None  # beyond 1000 seeds
    assert seeds_to_decide(0.01, 0.0, MARGIN, 0.05) is None


def test_chance_of_best_is_a_joint_bootstrap():
    x = np.array([[0.9, 0.5, 0.1], [0.8, 0.6, 0.2], [0.85, 0.55, 0.15]])
    odds = chance_of_best(x, resamples=2000)
    assert list(odds["p_best"]) == [1.0, 0.0, 0.0]
    assert list(odds["rank_low"]) == [1, 2, 3] and list(odds["rank_high"]) == [1, 2, 3]
    # Two cells equal on every seed tie: each is first half the time.
    tied = chance_of_best(np.array([[0.5, 0.5], [0.6, 0.6]]), resamples=100)
    assert list(tied["p_best"]) == [0.5, 0.5]
    # Seeded: the same numbers every time.
    rng = np.random.default_rng(0)
    y = rng.normal(0, 1, (10, 5))
    assert np.array_equal(chance_of_best(y)["p_best"], chance_of_best(y)["p_best"])


def test_the_bootstrap_would_call_a_tied_cell_not_best_too_often():
    """Why the chance of being best is shown and never decides: with 6 truly equal cells and
    10 seeds, a cell's bootstrap rank interval excludes 1 far more often than alpha."""
    rng = np.random.default_rng(11)
    excluded = 0
    reps = 200
    for _ in range(reps):
        x = rng.normal(0, 0.01, (N, 6)) + rng.normal(0, 0.01, (N, 1))
        excluded += chance_of_best(x, resamples=1000)["rank_low"][0] > 1
    assert excluded / reps > 3 * ALPHA


def _best_study(means, sd, rng) -> pd.DataFrame:
    seed_effect = rng.normal(0, 0.01, N)
    rows = []
    for k, mean in enumerate(means):
        values = mean + seed_effect + rng.normal(0, sd, N)
        rows += [
            {
                "phase": "eval",
                "protocol": "tuned",
                "combination": f"optimizer-o{k}",
                "optimizer": f"o{k}",
                "seed": s,
                "lr": 0.01,
                "test_accuracy": v,
            }
            for s, v in enumerate(values)
        ]
    return pd.DataFrame(rows)


def test_best_is_seldom_said_of_a_cell_that_is_not_best():
    """The 'best' rule under the null (6 equal cells) and with the cell a margin behind."""
    rng = np.random.default_rng(5)
    claim = {
        "id": "b",
        "text": "o0 is best",
        "study": "s",
        "kind": "best",
        "cell": {"optimizer": "o0"},
        "margin": MARGIN,
    }
    verdicts = {"null": [], "behind": []}
    for _ in range(150):
        for case, means in [("null", [0.6] * 6), ("behind", [0.6 - MARGIN] + [0.6] * 5)]:
            findings, _ = evaluate_claims(
                [claim], ALPHA, {"s": _best_study(means, 0.01, rng)}, {"s": ["optimizer"]}
            )
            verdicts[case].append(findings.loc[0, "verdict"])
    assert np.mean([v == SUPPORTED for v in verdicts["null"]]) <= ALPHA
    assert np.mean([v == SUPPORTED for v in verdicts["behind"]]) <= ALPHA
    assert np.mean([v == NO_DIFFERENCE for v in verdicts["behind"]]) <= ALPHA


def test_interaction_with_two_levels_is_the_paired_t_test_of_the_change():
    rng = np.random.default_rng(2)
    d = rng.normal(0, 0.01, (N, 2)) + [0.0, 0.02]
    result = interaction(d)
    assert result["p"] == pytest.approx(stats.ttest_rel(d[:, 1], d[:, 0]).pvalue)
    assert result["change"] == pytest.approx((d[:, 1] - d[:, 0]).mean())


def test_interaction_with_three_levels_is_hotellings_t2():
    rng = np.random.default_rng(4)
    flat = interaction(rng.normal(0, 0.01, (20, 3)))
    steep = interaction(rng.normal(0, 0.01, (20, 3)) + [0.0, 0.02, 0.04])
    assert flat["p"] > 0.05 > steep["p"]
    assert steep["change"] == pytest.approx(0.04, abs=0.01)
    assert math.isnan(interaction(rng.normal(0, 1, (2, 3)))["p"])  # too few seeds
