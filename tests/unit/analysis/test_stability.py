"""Tuning budgets and stability: per-protocol tuning tables, rates and fragile verdicts."""

from __future__ import annotations

import pandas as pd

from optreg.analysis.stability import rate_changes, verdicts_by_protocol
from optreg.analysis.tables import tuning_runs, tuning_table


def runs_frame() -> pd.DataFrame:
    """One cell tuned at two rates on seeds 0, 1 (which prefer 0.1) and retuned on 3, 4
    (which prefer 0.01); evaluated on seed 9 under both."""
    rows = []
    for seed, best in ((0, 0.1), (1, 0.1), (3, 0.01), (4, 0.01)):
        for lr in (0.01, 0.1):
            rows.append(
                {
                    "combination": "c",
                    "optimizer": "adam",
                    "phase": "tune",
                    "protocol": None,
                    "seed": seed,
                    "lr": lr,
                    "val_accuracy": 0.9 if lr == best else 0.5,
                    "val_loss": 0.5,
                    "train_loss": 0.4,
                    "diverged": False,
                    "tuning_seeds": "",
                    "lr_extended": "",
                }
            )
    for protocol, lr, seeds in (("tuned", 0.1, "0;1"), ("retuned", 0.01, "3;4")):
        rows.append(
            {
                "combination": "c",
                "optimizer": "adam",
                "phase": "eval",
                "protocol": protocol,
                "seed": 9,
                "lr": lr,
                "diverged": False,
                "tuning_seeds": seeds,
                "lr_extended": "",
            }
        )
    return pd.DataFrame(rows)


def test_each_tuning_protocol_reads_only_its_own_seeds():
    runs = runs_frame()
    assert sorted(tuning_runs(runs, "tuned")["seed"].unique()) == [0, 1]
    assert sorted(tuning_runs(runs, "retuned")["seed"].unique()) == [3, 4]
    table = tuning_table(runs, ["optimizer"]).set_index(["protocol", "lr"])
    assert table.loc[("tuned", 0.1), "selected"] and not table.loc[("tuned", 0.01), "selected"]
    assert table.loc[("retuned", 0.01), "selected"]
    assert table.loc[("tuned", 0.1), "val_accuracy_mean"] == 0.9
    assert (table["seeds"] == 2).all()
    # Without evaluation records (nothing chose yet), `tuned` reads every tuning run.
    tune_only = runs[runs["phase"] == "tune"]
    assert len(tuning_runs(tune_only, "tuned")) == 8 and tuning_runs(tune_only, "retuned").empty


def test_rate_changes_compare_the_two_tunings():
    changes = rate_changes(runs_frame())
    assert changes.to_dict("records") == [
        {"combination": "c", "lr_tuned": 0.1, "lr_retuned": 0.01, "same_rate": False}
    ]
    no_retuning = runs_frame()
    no_retuning = no_retuning[no_retuning["protocol"] != "retuned"]
    assert rate_changes(no_retuning).empty


def test_a_verdict_that_changes_with_the_tuning_seeds_is_fragile():
    findings = pd.DataFrame(
        {
            "study": ["s"] * 6,
            "id": ["a", "a", "a", "b", "b", "c"],
            "text": ["A"] * 3 + ["B"] * 2 + ["C"],
            "at": [None] * 6,
            "protocol": ["tuned", "oneshot", "retuned", "tuned", "retuned", "tuned"],
            "verdict": [
                "supported",
                "contradicted",
                "undecided",
                "supported",
                "supported",
                "supported",
            ],
        }
    )
    table = verdicts_by_protocol(findings).set_index("id")
    assert table.loc["a", "fragile"] and not table.loc["b", "fragile"]
    assert table.loc["c", "fragile"] is None  # no retuning: nothing to say
    assert table.loc["a", "verdict_oneshot"] == "contradicted"
    assert table.loc["b", "verdict_small"] == ""
