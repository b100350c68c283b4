"""Aggregates across problems (IQM, probability of improvement, stratified bootstrap), on
small cases worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optreg.analysis.aggregates import (
    aggregate_table,
    improvement_table,
    iqm,
    majority_rates,
    normalized_score,
    probability_of_improvement,
    score_matrices,
    stratified_interval,
    stratified_resample,
)


def test_iqm_is_the_mean_of_the_middle_half_of_all_runs_pooled():
    # Eight scores over two problems: the middle half of the sorted 0..7 is 2, 3, 4, 5.
    scores = np.array([[7.0, 0.0], [1.0, 6.0], [2.0, 5.0], [3.0, 4.0]])
    assert iqm(scores) == pytest.approx(3.5)
    # An outlier run moves the mean but not the IQM.
    scores[0, 0] = 1000.0
    assert iqm(scores) == pytest.approx(3.5) and scores.mean() > 100
    # A stack of matrices: one IQM each.
    assert iqm(np.stack([scores, scores + 1])) == pytest.approx([3.5, 4.5])


def test_iqm_wants_a_runs_by_problems_matrix():
    with pytest.raises(ValueError, match="runs × problems"):
        iqm([0.1, 0.2])


def test_probability_of_improvement_counts_ties_as_half():
    # Problem 1: x = [1, 2], y = [1, 0]: pairs (1>1 tie, 1>0, 2>1, 2>0) -> (0.5 + 3) / 4.
    # Problem 2: x = [0, 0], y = [1, 1]: never -> 0. Mean over problems: 0.4375.
    x = np.array([[1.0, 0.0], [2.0, 0.0]])
    y = np.array([[1.0, 1.0], [0.0, 1.0]])
    assert probability_of_improvement(x, y) == pytest.approx(0.4375)
    assert probability_of_improvement(y, x) == pytest.approx(1 - 0.4375)
    # Identical runs: as likely better as worse (rliable's special case comes out by itself).
    assert probability_of_improvement(x, x) == pytest.approx(0.5)


def test_probability_of_improvement_is_the_mann_whitney_u_over_the_pairs():
    from scipy import stats

    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 4, (7, 3)).astype(float), rng.integers(0, 4, (5, 3)).astype(float)
    u = [stats.mannwhitneyu(x[:, j], y[:, j], alternative="greater").statistic for j in range(3)]
    assert probability_of_improvement(x, y) == pytest.approx(np.mean(u) / (7 * 5))


def test_stratified_resamples_never_mix_problems():
    # Problem j's scores are j + 0.1 · run: a resampled value reveals its problem and run.
    scores = np.arange(3)[None, :] + 0.1 * np.arange(6)[:, None]
    out = stratified_resample(scores, 500, np.random.default_rng(0))
    assert out.shape == (500, 6, 3)
    assert np.array_equal(np.floor(out + 1e-9), np.broadcast_to(np.arange(3), out.shape))
    # Runs are drawn with replacement, each problem on its own: columns differ in their draws.
    runs = np.rint((out - np.arange(3)) * 10).astype(int)
    assert not np.array_equal(runs[..., 0], runs[..., 1])
    assert {len(np.unique(r)) for r in runs[:, :, 0]} != {6}


def test_stratified_interval_brackets_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(1)
    scores = rng.normal(0.8, 0.05, (10, 4))
    low, high = stratified_interval(iqm, scores, resamples=2000)
    assert low < iqm(scores) < high
    assert stratified_interval(iqm, scores, resamples=2000) == (low, high)
    assert stratified_interval(iqm, scores, resamples=2000, seed=1) != (low, high)
    # Scores that do not vary within a problem leave nothing to resample.
    flat = np.tile([0.2, 0.4, 0.6, 0.8], (10, 1))
    assert stratified_interval(iqm, flat, resamples=200) == pytest.approx((0.5, 0.5))


@pytest.mark.parametrize("kwargs", [{"confidence": 1.0}, {"resamples": 0}])
def test_stratified_interval_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        stratified_interval(iqm, np.ones((3, 2)), **kwargs)


def test_normalized_score_puts_the_majority_class_at_zero_and_perfect_at_one():
    assert normalized_score([0.63, 1.0, 0.815], 0.63) == pytest.approx([0.0, 1.0, 0.5])
    with pytest.raises(ValueError):
        normalized_score(0.5, 1.0)


def _runs(accuracy) -> pd.DataFrame:
    """Evaluation runs of two optimizers on two problems, three seeds, both protocols."""
    rows = []
    for protocol in ("tuned", "oneshot"):
        for (optimizer, problem), values in accuracy.items():
            for seed, acc in enumerate(values):
                rows.append(
                    {
                        "phase": "eval",
                        "protocol": protocol,
                        "combination": f"problem-{problem}_optimizer-{optimizer}",
                        "problem": problem,
                        "optimizer": optimizer,
                        "seed": seed,
                        "test_accuracy": acc,
                    }
                )
    return pd.DataFrame(rows)


ACCURACY = {
    ("adam", "digits"): [0.9, 0.91, 0.92],
    ("adam", "cancer"): [0.96, 0.97, np.nan],  # a diverged run
    ("sgd", "digits"): [0.5, 0.55, 0.6],
    ("sgd", "cancer"): [0.8, 0.815, 0.83],
}
MAJORITY = {"digits": 0.1, "cancer": 0.63}


def test_score_matrices_normalize_per_problem_and_score_a_diverged_run_zero():
    scores = score_matrices(_runs(ACCURACY), MAJORITY, "tuned")
    adam = scores["adam"]
    assert list(adam.columns) == ["digits", "cancer"]
    assert adam["digits"].to_numpy() == pytest.approx([0.8 / 0.9, 0.81 / 0.9, 0.82 / 0.9])
    assert adam["cancer"].to_numpy() == pytest.approx([0.33 / 0.37, 0.34 / 0.37, 0.0])


def test_score_matrices_need_every_problem_on_the_same_seeds():
    runs = _runs(ACCURACY)
    runs = runs[~((runs["optimizer"] == "sgd") & (runs["problem"] == "cancer"))]
    with pytest.raises(ValueError, match="sgd"):
        score_matrices(runs, MAJORITY, "tuned")
    with pytest.raises(ValueError, match="majority-class rate"):
        score_matrices(_runs(ACCURACY), {"digits": 0.1}, "tuned")


def test_aggregate_and_improvement_tables():
    runs = _runs(ACCURACY)
    table = aggregate_table(runs, MAJORITY, resamples=500)
    assert list(table["protocol"]) == ["tuned", "tuned", "oneshot", "oneshot"]
    adam = table[(table["protocol"] == "tuned") & (table["optimizer"] == "adam")].iloc[0]
    matrix = score_matrices(runs, MAJORITY, "tuned")["adam"].to_numpy()
    assert adam["iqm"] == pytest.approx(iqm(matrix))
    assert adam["ci_low"] <= adam["iqm"] <= adam["ci_high"]
    assert (adam["problems"], adam["runs"]) == (2, 6)
    better = improvement_table(runs, MAJORITY, resamples=500)
    assert len(better) == 2 * 2  # ordered pairs, per protocol
    row = better[(better["protocol"] == "tuned") & (better["x"] == "adam")].iloc[0]
    # digits: adam beats sgd on all 9 pairs; cancer: on 6 of 9 (the diverged run scores 0).
    assert row["probability"] == pytest.approx((1 + 6 / 9) / 2)
    assert row["ci_low"] <= row["probability"] <= row["ci_high"]


def test_majority_rates_come_from_the_summary():
    summary = pd.DataFrame({"problem": ["a", "a", "b"], "test_majority_rate": [0.6, 0.6, 0.1]})
    assert majority_rates(summary) == {"a": 0.6, "b": 0.1}
    with pytest.raises(ValueError, match="test_majority_rate"):
        majority_rates(summary.drop(columns="test_majority_rate"))
