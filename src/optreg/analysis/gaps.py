"""Accuracy gaps between cells: to the best optimizer of each problem (performance profiles),
and from ReLU to each other activation, paired over the evaluation seeds.

The figures `performance_profile` and `activation_gap_vs_depth` draw what these compute.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optreg.analysis.stats import mean_ci


def profile_curves(frame: pd.DataFrame, optimizers: list) -> tuple[np.ndarray, dict]:
    """Performance profile of `optimizers` over the problems in `frame` (tuned rows).

    Returns the τ grid and each optimizer's share of problems within τ of the best one on
    that problem (a step function of τ; a missing or undefined accuracy is never within).
    A profile of means says nothing of their uncertainty: `optreg.analysis.aggregates` does.
    """
    acc = frame.pivot_table(
        index="problem",
        columns="optimizer",
        values="test_accuracy_mean",
        aggfunc="first",
        dropna=False,
    ).reindex(columns=optimizers)
    best = acc.max(axis=1)
    gaps = (best.to_numpy()[:, None] - acc.to_numpy()).clip(min=0)
    gaps = np.where(np.isnan(gaps), np.inf, gaps)
    finite = gaps[np.isfinite(gaps)]
    largest = float(finite.max()) if finite.size else 0.0
    end = largest * 1.08 if largest > 0 else 0.01
    taus = np.unique(np.concatenate([[0.0], finite, [end]]))
    shares = {
        o: (gaps[:, j][None, :] <= taus[:, None]).mean(axis=1) for j, o in enumerate(optimizers)
    }
    return taus, shares


def activation_gaps(runs: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    """Per optimizer, depth, other activation (and any further factor): ReLU's test accuracy
    minus that activation's, paired over the evaluation seeds at the tuned rates, with its
    95% t-interval (`optreg.analysis.stats.mean_ci` of the differences).

    `significant` says whether that same unadjusted interval excludes zero: one convention for
    the bar and the marker. It is exploratory, one interval per gap with no correction for the
    many gaps; the claims' confirmatory tests are `optreg.analysis.claims`'.
    """
    columns = ["phase", "protocol", "combination", "seed", "test_accuracy", *factors]
    missing = [c for c in columns if c not in runs.columns]
    if missing:
        raise ValueError(f"the runs table has no column(s) {missing}")
    tuned = runs[(runs["phase"] == "eval") & (runs["protocol"] == "tuned")]
    keys = [k for k in factors if k != "activation"]
    rows = []
    for values, group in tuned.groupby(keys, sort=False):
        wide = group.pivot(index="seed", columns="activation", values="test_accuracy")
        if "relu" not in wide:
            continue
        for other in [a for a in wide.columns if a != "relu"]:
            gap = mean_ci((wide["relu"] - wide[other]).to_numpy())
            rows.append(
                {
                    **dict(zip(keys, values if isinstance(values, tuple) else (values,), strict=1)),
                    "activation": other,
                    "gap": gap["mean"],
                    "ci_low": gap["ci_low"],
                    "ci_high": gap["ci_high"],
                    "seeds": gap["n"],
                    # NaN bounds (fewer than two paired seeds) exclude nothing.
                    "significant": bool(gap["ci_low"] > 0 or gap["ci_high"] < 0),
                }
            )
    return pd.DataFrame(rows)
