"""Statistics, tables, learning-rate selection and the findings, on synthetic tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from optreg.findings import findings
from optreg.stats import mean_ci
from optreg.tables import select_learning_rates, summarize


def test_mean_ci_agrees_with_scipy():
    x = [0.91, 0.93, 0.95, 0.9, 0.94]
    out = mean_ci(x)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert out["mean"] == pytest.approx(np.mean(x))
    assert out["std"] == pytest.approx(np.std(x, ddof=1))
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((lo, hi))


def test_mean_ci_ignores_missing_and_is_undefined_for_one_value():
    assert mean_ci([0.5, np.nan, 0.7])["n"] == 2
    assert np.isnan(mean_ci([0.5])["ci_low"])


def _runs(rows):
    """A runs table from (optimizer, lr, seed, val, test, diverged) tuples."""
    records = []
    for opt, lr, seed, val, test, diverged in rows:
        records.append(
            {
                "combination": f"optimizer-{opt}_lr-{lr:g}",
                "optimizer": opt,
                "lr": lr,
                "seed": seed,
                "val_accuracy": val,
                "test_accuracy": test,
                "diverged": diverged,
                **{
                    m: 0.0
                    for m in (
                        "train_accuracy",
                        "test_loss",
                        "val_loss",
                        "train_loss",
                        "l1_norm",
                        "l2_norm",
                        "near_zero_fraction",
                        "zero_fraction",
                        "wall_time_s",
                    )
                },
            }
        )
    return pd.DataFrame(records)


def test_selection_uses_validation_never_test():
    runs = _runs(
        [
            # lr 0.1 is best on test but worse on validation: it must not be chosen.
            ("adam", 0.1, 0, 0.80, 0.99, False),
            ("adam", 0.1, 1, 0.81, 0.99, False),
            ("adam", 0.01, 0, 0.90, 0.85, False),
            ("adam", 0.01, 1, 0.91, 0.86, False),
            ("adam", 0.001, 0, 0.70, 0.70, False),
            ("adam", 0.001, 1, 0.71, 0.70, False),
        ]
    )
    selected = select_learning_rates(summarize(runs, ["optimizer", "lr"]), ["optimizer", "lr"])
    assert len(selected) == 1
    row = selected.iloc[0]
    assert row["lr"] == 0.01
    assert row["test_accuracy_mean"] == pytest.approx(0.855)
    assert not row["lr_on_grid_edge"]


def test_selection_skips_diverged_and_flags_grid_edge():
    runs = _runs(
        [
            ("sgd", 1.0, 0, 0.95, 0.95, False),
            ("sgd", 1.0, 1, np.nan, np.nan, True),
            ("sgd", 0.1, 0, 0.90, 0.90, False),
            ("sgd", 0.1, 1, 0.90, 0.90, False),
            ("sgd", 0.01, 0, 0.50, 0.50, False),
            ("sgd", 0.01, 1, 0.50, 0.50, False),
            ("adam", 1.0, 0, 0.5, 0.5, False),
            ("adam", 1.0, 1, 0.5, 0.5, False),
            ("adam", 0.1, 0, 0.6, 0.6, False),
            ("adam", 0.1, 1, 0.6, 0.6, False),
            ("adam", 0.01, 0, 0.9, 0.9, False),
            ("adam", 0.01, 1, 0.9, 0.9, False),
        ]
    )
    summary = summarize(runs, ["optimizer", "lr"])
    assert summary.loc[summary["combination"] == "optimizer-sgd_lr-1", "n_diverged"].iloc[0] == 1
    selected = select_learning_rates(summary, ["optimizer", "lr"]).set_index("optimizer")
    assert selected.loc["sgd", "lr"] == 0.1 and not selected.loc["sgd", "lr_on_grid_edge"]
    assert selected.loc["adam", "lr"] == 0.01 and selected.loc["adam", "lr_on_grid_edge"]


def _selected(cells):
    """A selected table from {(activation, optimizer): (mean, half_width)}."""
    rows = []
    for (act, opt), (mean, half) in cells.items():
        rows.append(
            {
                "activation": act,
                "optimizer": opt,
                "selectable": True,
                "test_accuracy_mean": mean,
                "test_accuracy_ci_low": mean - half,
                "test_accuracy_ci_high": mean + half,
                "val_accuracy_mean": mean,
            }
        )
    return pd.DataFrame(rows)


def test_optimizer_claims_verdicts():
    factors = {"opt": ["optimizer", "activation", "lr"]}
    supported = _selected(
        {
            ("relu", "adam"): (0.97, 0.005),
            ("relu", "rmsprop"): (0.965, 0.005),
            ("relu", "momentum"): (0.95, 0.005),
            ("sigmoid", "momentum"): (0.90, 0.005),
        }
    )
    out = findings({"opt": supported}, factors).set_index("claim")["verdict"]
    assert list(out) == ["supported", "supported"]

    flipped = _selected(
        {
            ("relu", "adam"): (0.90, 0.005),
            ("relu", "rmsprop"): (0.97, 0.005),
            ("tanh", "sgd"): (0.98, 0.005),
            ("relu", "momentum"): (0.90, 0.005),
            ("sigmoid", "momentum"): (0.96, 0.005),
        }
    )
    out = findings({"opt": flipped}, factors).set_index("claim")["verdict"]
    assert list(out) == ["not supported", "not supported"]

    noisy = _selected(
        {
            ("relu", "adam"): (0.95, 0.05),
            ("relu", "rmsprop"): (0.94, 0.05),
            ("tanh", "sgd"): (0.96, 0.05),
            ("relu", "momentum"): (0.95, 0.05),
            ("sigmoid", "momentum"): (0.93, 0.05),
        }
    )
    out = findings({"opt": noisy}, factors).set_index("claim")["verdict"]
    assert list(out) == ["within noise", "within noise"]


def test_penalty_claims_verdicts():
    def table(cells):
        rows = []
        for (pen, strength), (mean, half, val) in cells.items():
            rows.append(
                {
                    "penalty": pen,
                    "strength": strength,
                    "selectable": True,
                    "test_accuracy_mean": mean,
                    "test_accuracy_ci_low": mean - half,
                    "test_accuracy_ci_high": mean + half,
                    "val_accuracy_mean": val,
                }
            )
        return pd.DataFrame(rows)

    factors = {"reg": ["penalty", "strength"]}
    reg = table(
        {
            ("none", 0.0): (0.95, 0.005, 0.95),
            ("l1", 1e-4): (0.951, 0.005, 0.95),
            ("l1", 1e-2): (0.80, 0.005, 0.8),
            ("l2", 1e-4): (0.99, 0.005, 0.90),  # best on test, not on validation
            ("l2", 1e-3): (0.93, 0.005, 0.96),  # chosen on validation: lower on test
        }
    )
    out = findings({"reg": reg}, factors).set_index("claim")["verdict"]
    assert out.iloc[0] == "only at strength ≥ 0.01"
    assert out.iloc[1] == "not supported"
