"""Student-t intervals, paired tests, Holm adjustment and pairwise comparisons, against scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from optreg.analysis.stats import (
    PAIR_COLUMNS,
    holm,
    mean_ci,
    paired_test,
    pairwise_comparisons,
)

X = [0.912, 0.934, 0.951, 0.905, 0.944, 0.927, 0.938, 0.919, 0.962, 0.931]


def test_mean_ci_is_scipys_t_interval_of_the_mean():
    out = mean_ci(X)
    low, high = stats.t.interval(0.95, len(X) - 1, loc=np.mean(X), scale=stats.sem(X))
    assert out["n"] == len(X)
    assert out["mean"] == pytest.approx(np.mean(X))
    assert out["std"] == pytest.approx(np.std(X, ddof=1))
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((low, high))
    # A wider confidence level gives a wider interval.
    wide = mean_ci(X, confidence=0.99)
    assert wide["ci_low"] < out["ci_low"] < out["mean"] < out["ci_high"] < wide["ci_high"]


def test_mean_ci_ignores_missing_values():
    assert mean_ci([*X, np.nan, np.inf]) == mean_ci(X)


@pytest.mark.parametrize(
    ("values", "n", "mean_defined"),
    [([], 0, False), ([np.nan, np.nan], 0, False), ([0.9], 1, True), ([np.nan, 0.9], 1, True)],
)
def test_mean_ci_degenerate_sizes(values, n, mean_defined):
    out = mean_ci(values)
    assert out["n"] == n
    assert np.isfinite(out["mean"]) == mean_defined
    assert all(np.isnan(out[k]) for k in ("std", "ci_low", "ci_high"))


def test_mean_ci_of_equal_values_collapses_to_the_mean():
    out = mean_ci([0.1] * 7)
    assert out["std"] == 0
    assert out["ci_low"] == out["ci_high"] == out["mean"] == 0.1


@pytest.mark.parametrize("confidence", [1.0, 0, -0.5])
def test_mean_ci_rejects_bad_confidence(confidence):
    with pytest.raises(ValueError):
        mean_ci(X, confidence=confidence)


A = [0.95, 0.96, 0.94, 0.97, 0.955, 0.945, 0.965, 0.96, 0.95, 0.958]
B = [0.94, 0.95, 0.945, 0.955, 0.95, 0.93, 0.96, 0.949, 0.941, 0.952]


def test_paired_test_agrees_with_scipy():
    out = paired_test(A, B)
    ref = stats.ttest_rel(A, B)
    d = np.subtract(A, B)
    assert out["n"] == 10
    assert out["mean_a"] == pytest.approx(np.mean(A))
    assert out["mean_b"] == pytest.approx(np.mean(B))
    assert out["diff"] == pytest.approx(d.mean())
    assert out["t"] == pytest.approx(ref.statistic)
    assert out["p"] == pytest.approx(ref.pvalue)
    assert out["effect_size"] == pytest.approx(d.mean() / d.std(ddof=1))
    # Swapping the samples flips the signs and keeps p.
    back = paired_test(B, A)
    assert (back["diff"], back["t"], back["effect_size"]) == pytest.approx(
        (-out["diff"], -out["t"], -out["effect_size"])
    )
    assert back["p"] == pytest.approx(out["p"])


def test_paired_test_drops_pairs_with_a_missing_value():
    a, b = [*A, np.nan, 0.9], [*B, 0.9, np.nan]
    out = paired_test(a, b)
    assert out["n"] == 10
    assert out["p"] == pytest.approx(paired_test(A, B)["p"])


def test_paired_test_of_identical_samples_finds_nothing():
    out = paired_test(A, A)
    assert (out["diff"], out["t"], out["p"], out["effect_size"]) == (0, 0, 1, 0)


def test_paired_test_of_a_constant_shift_is_certain():
    out = paired_test([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert out["diff"] == 1 and out["p"] == 0 and out["t"] == np.inf


def test_paired_test_small_and_unequal_inputs():
    one = paired_test([0.9], [0.8])
    assert one["n"] == 1 and one["diff"] == pytest.approx(0.1) and np.isnan(one["p"])
    assert paired_test([], [])["n"] == 0
    with pytest.raises(ValueError, match="equal lengths"):
        paired_test([1, 2, 3], [1, 2])


def _holm_reference(p):
    """Holm's procedure written out step by step, for comparison."""
    p = np.asarray(p, dtype=float)
    present = np.flatnonzero(~np.isnan(p))
    m = len(present)
    out = np.full(len(p), np.nan)
    running = 0.0
    for i, idx in enumerate(sorted(present, key=lambda j: p[j])):
        running = max(running, min(1.0, (m - i) * p[idx]))
        out[idx] = running
    return out


def test_holm_hand_worked_example():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_passes_nan_through_without_counting_it():
    out = holm([0.01, np.nan, 0.04])
    assert np.isnan(out[1])
    assert out[[0, 2]] == pytest.approx([0.02, 0.04])


def test_holm_agrees_with_a_reference_implementation():
    rng = np.random.default_rng(0)
    for size in (1, 2, 5, 20):
        p = rng.uniform(0, 0.2, size) ** 2
        p[rng.uniform(size=size) < 0.2] = np.nan
        p[0] = p[-1]  # a tie
        out = holm(p)
        np.testing.assert_allclose(out, _holm_reference(p))
        ok = ~np.isnan(p)
        assert np.all(out[ok] <= 1) and np.all(out[ok] >= p[ok])
        # Monotone: a smaller raw p never gets a larger adjusted p.
        order = np.argsort(p[ok], kind="stable")
        assert np.all(np.diff(out[ok][order]) >= 0)


def test_holm_edge_cases():
    assert holm([]).shape == (0,)
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError):
        holm([0.5, 1.5])


def _runs(values: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"combination": cell, "seed": seed, "test_accuracy": v}
            for cell, column in values.items()
            for seed, v in enumerate(column)
        ]
    )


def test_pairwise_comparisons_pairs_seeds_and_adjusts_over_all_pairs():
    c = [0.9 + 0.001 * (i % 3) for i in range(10)]
    runs = _runs({"b": B, "a": A, "c": c})
    runs = runs[~((runs["combination"] == "c") & (runs["seed"] == 9))]  # c lacks seed 9
    runs.loc[(runs["combination"] == "a") & (runs["seed"] == 0), "test_accuracy"] = np.nan
    out = pairwise_comparisons(runs)
    assert list(out.columns) == PAIR_COLUMNS
    assert list(zip(out["cell_a"], out["cell_b"], strict=True)) == [
        ("b", "a"),
        ("b", "c"),
        ("a", "c"),
    ]
    assert list(out["n"]) == [9, 9, 8]
    ref = paired_test(np.array(B)[1:], np.array(A)[1:])
    assert out.loc[0, "p"] == pytest.approx(ref["p"])
    assert out.loc[0, "diff"] == pytest.approx(ref["diff"])
    np.testing.assert_allclose(out["p_holm"], holm(out["p"]))
    assert list(out["significant"]) == list(out["p_holm"] < 0.05)
    assert out.loc[1, "significant"]  # b is well above c on every seed


def test_pairwise_comparisons_options_and_degenerate_inputs():
    runs = _runs({"x": A, "y": B}).rename(
        columns={"combination": "cell", "seed": "s", "test_accuracy": "v"}
    )
    out = pairwise_comparisons(runs, cell_col="cell", seed_col="s", value_col="v", alpha=1e-12)
    assert len(out) == 1 and not out.loc[0, "significant"]
    empty = pairwise_comparisons(pd.DataFrame(columns=["combination", "seed", "test_accuracy"]))
    assert empty.empty and list(empty.columns) == PAIR_COLUMNS
    assert pairwise_comparisons(_runs({"only": A})).empty
    with pytest.raises(ValueError, match="more than once"):
        pairwise_comparisons(pd.concat([_runs({"x": A}), _runs({"x": A})]))
