"""Accuracy gaps: performance profiles across problems, activation gaps paired over seeds."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import runs_at_two_depths

from optreg.analysis.gaps import activation_gaps, profile_curves
from optreg.analysis.stats import mean_ci


def test_performance_profile_counts_a_diverged_cell_as_never_within(study_frames):
    tuned = study_frames["problems"]["summary"]
    tuned = tuned[tuned["protocol"] == "tuned"].copy()
    lost = (tuned["problem"] == "cancer_mlp") & (tuned["optimizer"] == "adam")
    tuned.loc[lost, "test_accuracy_mean"] = math.nan
    taus, shares = profile_curves(tuned, ["sgd", "adam"])
    assert shares["adam"][-1] == 0.5 and shares["sgd"][-1] == 1.0


def test_activation_gap_is_the_paired_difference_of_the_tuned_runs(study_frames):
    # The optimization study's runs at two depths: depth 2 the same runs, sigmoid 0.2 lower.
    runs, _ = runs_at_two_depths(study_frames["optimization"]["runs"])
    evals = runs[(runs["phase"] == "eval") & (runs["protocol"] == "tuned")]
    factors = ["optimizer", "activation", "depth"]
    gaps = activation_gaps(runs, factors)
    assert len(gaps) == 2 * 2  # optimizers x depths, sigmoid against relu
    for row in gaps.to_dict("records"):
        cell = evals[(evals["optimizer"] == row["optimizer"]) & (evals["depth"] == row["depth"])]
        relu = cell[cell["activation"] == "relu"].set_index("seed")["test_accuracy"]
        other = cell[cell["activation"] == "sigmoid"].set_index("seed")["test_accuracy"]
        assert row["gap"] == pytest.approx((relu - other).mean())
        ci = mean_ci((relu - other).to_numpy())
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci["ci_low"], ci["ci_high"]))
        # The marker says what the bar shows: whether that same interval excludes zero.
        assert row["significant"] == (row["ci_low"] > 0 or row["ci_high"] < 0)
    shallow, deep = (gaps[gaps["depth"] == d].set_index("optimizer")["gap"] for d in (1, 2))
    assert (deep - shallow).to_numpy() == pytest.approx([0.2, 0.2])


def test_activation_gaps_name_a_missing_column(study_frames):
    runs = study_frames["optimization"]["runs"].drop(columns="seed")
    with pytest.raises(ValueError, match=r"the runs table has no column\(s\) \['seed'\]"):
        activation_gaps(runs, ["optimizer", "activation"])


def test_an_activation_gap_is_marked_by_its_own_unadjusted_interval():
    # Seven paired seeds, ReLU ahead on all: its t-interval excludes zero however many other
    # pairs a study has (a Holm correction over them could call it within noise).
    gaps = [0.010, 0.012, 0.008, 0.011, 0.009, 0.013, 0.007]
    rows = [
        {"phase": "eval", "protocol": "tuned", "seed": s, "optimizer": "adam", "depth": 1}
        | {"activation": a, "combination": a, "test_accuracy": 0.9 + (g if a == "relu" else 0)}
        for s, g in enumerate(gaps)
        for a in ("relu", "tanh")
    ]
    runs = pd.DataFrame(rows)
    (row,) = activation_gaps(runs, ["optimizer", "activation", "depth"]).to_dict("records")
    assert row["ci_low"] > 0 and row["significant"]
    # One seed where tanh wins by far: the interval now straddles zero, the point is open.
    runs.loc[(runs["seed"] == 0) & (runs["activation"] == "tanh"), "test_accuracy"] = 1.0
    (row,) = activation_gaps(runs, ["optimizer", "activation", "depth"]).to_dict("records")
    assert row["ci_low"] < 0 < row["ci_high"] and not row["significant"]
