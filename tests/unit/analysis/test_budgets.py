"""Training budgets: convergence of a cell, the runs as a budget mark left them, the claims
judged again there."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from optreg.analysis import budgets
from optreg.analysis.claims import evaluate_claims, load_claims
from optreg.analysis.tables import read_table, tuning_table


def curves(gain_per_epoch: float, seeds=range(10), epochs: int = 20, noise: float = 0.0):
    """An evaluated cell's history: validation accuracy rising by `gain_per_epoch`."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in seeds:
        for epoch in range(1, epochs + 1):
            rows.append(
                {
                    "combination": "c",
                    "phase": "eval",
                    "protocol": "tuned",
                    "seed": seed,
                    "lr": 0.01,
                    "epochs": epochs,
                    "optimizer": "adam",
                    "epoch": epoch,
                    "train_accuracy": 0.9,
                    "val_accuracy": 0.5 + gain_per_epoch * epoch + noise * rng.standard_normal(),
                }
            )
    return pd.DataFrame(rows)


def test_a_flat_curve_has_converged_and_a_rising_one_has_not():
    flat = budgets.convergence_table(curves(0.0, noise=0.005), ["optimizer"], margin=0.01)
    rising = budgets.convergence_table(curves(0.005), ["optimizer"], margin=0.01)
    assert bool(flat["converged"].iloc[0]) is True
    # 0.005 a epoch: the last tenth (epochs 19-20) is 0.08 above the tenth ending at 16
    assert rising["val_gain_last_fifth"].iloc[0] == pytest.approx(0.005 * 4)
    assert bool(rising["converged"].iloc[0]) is False
    assert flat["optimizer"].iloc[0] == "adam"


def test_a_falling_curve_has_converged_too():
    """More training would not raise it: overfitting is the end of training's use."""
    falling = budgets.convergence_table(curves(-0.004), ["optimizer"], margin=0.01)
    assert bool(falling["converged"].iloc[0]) is True


def test_too_few_seeds_to_tell_is_not_called_converged():
    one = budgets.convergence_table(curves(0.0, seeds=[0]), ["optimizer"], margin=0.01)
    assert one["converged"].iloc[0] is None
    assert math.isnan(one["val_gain_upper"].iloc[0])


def test_a_run_that_diverged_before_the_end_is_left_out():
    history = curves(0.0)
    history = history[~((history["seed"] == 3) & (history["epoch"] > 10))]
    table = budgets.convergence_table(history, ["optimizer"], margin=0.01)
    assert table["seeds"].iloc[0] == 9


def test_the_runs_at_a_mark_are_the_histories_there(study_tables):
    runs = read_table(study_tables["optimization"]["runs"])
    history = read_table(study_tables["optimization"]["history"])
    assert budgets.marks(history) == [2]  # config/smoke.yaml: 3 epochs, marks [2]
    at = budgets.runs_at(runs, history, 2)
    assert list(at.columns) == list(runs.columns)
    one = at[(at["phase"] == "eval") & (at["protocol"] == "tuned")].iloc[0]
    row = history[
        (history["combination"] == one["combination"])
        & (history["phase"] == "eval")
        & (history["protocol"] == "tuned")
        & (history["seed"] == one["seed"])
        & (history["epoch"] == 2)
    ].iloc[0]
    assert one["test_accuracy"] == row["test_accuracy"]
    assert one["val_accuracy"] == row["val_accuracy"]
    # the last epoch's history has the final test accuracy
    last = history[(history["epoch"] == 3) & (history["phase"] == "eval")]
    merged = last.merge(runs, on=budgets.KEYS, suffixes=("", "_final"))
    assert (merged["test_accuracy"] == merged["test_accuracy_final"]).all()


def test_a_run_diverged_before_a_mark_counts_as_diverged_there():
    runs = pd.DataFrame(
        {
            "combination": ["c", "c"],
            "phase": ["eval", "eval"],
            "protocol": ["tuned", "tuned"],
            "seed": [0, 1],
            "lr": [0.1, 0.1],
            "diverged": [True, True],
            "diverged_epoch": [2.0, 5.0],
            "epochs_run": [1, 4],
            **{m: [None, None] for m in budgets.METRICS},
        }
    )
    history = pd.DataFrame(
        [
            {"combination": "c", "phase": "eval", "protocol": "tuned", "seed": s, "lr": 0.1}
            | {"epoch": e, **dict.fromkeys(budgets.METRICS, 0.5)}
            for s, last in ((0, 1), (1, 4))
            for e in range(1, last + 1)
        ]
    )
    at = budgets.runs_at(runs, history, 3)
    assert at["diverged"].tolist() == [True, False]
    assert at["test_accuracy"].isna().tolist() == [True, False]
    assert at["epochs_run"].tolist() == [1, 3]


def test_claims_by_budget_judge_the_runs_at_each_mark(root, study_tables):
    claims, alpha = load_claims(root / "config" / "claims.yaml")
    factors = {"optimization": ["optimizer", "activation"]}
    runs = {"optimization": read_table(study_tables["optimization"]["runs"])}
    history = {"optimization": read_table(study_tables["optimization"]["history"])}
    tuning = {"optimization": read_table(study_tables["optimization"]["tuning"])}
    findings, _ = evaluate_claims(claims, alpha, runs, factors, tuning)
    table = budgets.claims_by_budget(claims, alpha, runs, history, factors, findings)
    assert sorted(table["budget"].unique()) == [2, 3]
    key = ["id", "at", "protocol", "verdict"]
    whole = table[table["budget"] == 3][key].fillna("")
    mine = findings[findings["study"] == "optimization"][key].fillna("")
    assert sorted(map(tuple, whole.values)) == sorted(map(tuple, mine.values))
    # at the mark: the same as judging the runs table read there
    at = budgets.runs_at(runs["optimization"], history["optimization"], 2)
    again, _ = evaluate_claims(
        claims,
        alpha,
        {"optimization": at},
        factors,
        {"optimization": tuning_table(at, factors["optimization"])},
    )
    key = ["id", "at", "protocol"]
    mark = table[table["budget"] == 2].sort_values(key)
    again = again[again["study"] == "optimization"].sort_values(key)
    assert mark["diff"].tolist() == pytest.approx(again["diff"].tolist(), nan_ok=True)
    assert (table["cells"] == runs["optimization"]["combination"].nunique()).all()
    assert (table["same_rate"] <= table["cells"]).all()


def test_the_rate_tuning_would_choose_at_a_mark(study_tables):
    runs = read_table(study_tables["optimization"]["runs"])
    history = read_table(study_tables["optimization"]["history"])
    whole = budgets.rate_at(runs, history, 3)
    assert whole["same_rate"].all()  # at the last epoch: the rate tuned, by construction
    at = budgets.rate_at(runs, history, 2)
    assert set(at["lr_at_budget"]) <= set(runs["lr"])
