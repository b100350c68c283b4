"""Accuracy gaps: performance profiles across problems, activation gaps paired over seeds."""

from __future__ import annotations

import math

import pytest
from conftest import runs_at_two_depths

from optreg.analysis.gaps import activation_gaps, profile_curves


def test_performance_profile_counts_a_diverged_cell_as_never_within(study_frames):
    tuned = study_frames["problems"]["summary"]
    tuned = tuned[tuned["protocol"] == "tuned"].copy()
    lost = (tuned["problem"] == "cancer_mlp") & (tuned["optimizer"] == "adam")
    tuned.loc[lost, "test_accuracy_mean"] = math.nan
    taus, shares, ranks = profile_curves(tuned, ["sgd", "adam"])
    assert shares["adam"][-1] == 0.5 and shares["sgd"][-1] == 1.0
    assert ranks["adam"] >= 1.5


def test_activation_gap_is_the_paired_difference_of_the_tuned_runs(study_frames):
    # The optimization study's runs at two depths: depth 2 the same runs, sigmoid 0.2 lower.
    runs, pairs = runs_at_two_depths(study_frames["optimization"]["runs"])
    evals = runs[(runs["phase"] == "eval") & (runs["protocol"] == "tuned")]
    factors = ["optimizer", "activation", "depth"]
    gaps = activation_gaps(runs, pairs, factors)
    assert len(gaps) == 2 * 2  # optimizers x depths, sigmoid against relu
    for row in gaps.to_dict("records"):
        cell = evals[(evals["optimizer"] == row["optimizer"]) & (evals["depth"] == row["depth"])]
        relu = cell[cell["activation"] == "relu"].set_index("seed")["test_accuracy"]
        other = cell[cell["activation"] == "sigmoid"].set_index("seed")["test_accuracy"]
        assert row["gap"] == pytest.approx((relu - other).mean())
        assert row["ci_low"] <= row["gap"] <= row["ci_high"]
        assert row["significant"] == (row["p_holm"] < 0.05)
    shallow, deep = (gaps[gaps["depth"] == d].set_index("optimizer")["gap"] for d in (1, 2))
    assert (deep - shallow).to_numpy() == pytest.approx([0.2, 0.2])


def test_activation_gaps_name_a_missing_column(study_frames):
    runs = study_frames["optimization"]["runs"].drop(columns="seed")
    with pytest.raises(ValueError, match=r"the runs table has no column\(s\) \['seed'\]"):
        activation_gaps(runs, study_frames["optimization"]["pairs"], ["optimizer", "activation"])
