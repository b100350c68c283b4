"""The original study's findings, restated beside what this run measured.

A difference counts only when the 95% intervals over seeds do not overlap;
otherwise it is reported as within noise. Learning rates and penalty
strengths are chosen on validation accuracy, and the test accuracy at the
choice is what is compared.
"""

from __future__ import annotations

import pandas as pd

from .io import atomic_path
from .tables import read_table

SUPPORTED, NOT_SUPPORTED, WITHIN_NOISE, NOT_TESTED = (
    "supported",
    "not supported",
    "within noise",
    "not tested",
)


def _fmt(row) -> str:
    half = (row["test_accuracy_ci_high"] - row["test_accuracy_ci_low"]) / 2
    return f"{row['test_accuracy_mean']:.3f} ± {half:.3f}"


def _cell_name(row, keys) -> str:
    return "+".join(str(row[k]) for k in keys)


def _below(a, b) -> bool:
    """a is clearly below b: a's interval lies entirely under b's."""
    return a["test_accuracy_ci_high"] < b["test_accuracy_ci_low"]


def _find(selected: pd.DataFrame, **values):
    mask = pd.Series(True, index=selected.index)
    for key, value in values.items():
        mask &= selected[key] == value
    rows = selected[mask]
    return None if rows.empty else rows.iloc[0]


def optimizer_claims(selected: pd.DataFrame, study: str) -> list[dict]:
    """Claims 1 and 2 on a study with optimizer and activation factors."""
    ok = selected[selected["selectable"]].sort_values("test_accuracy_mean", ascending=False)
    ranks = {(r.activation, r.optimizer): i + 1 for i, r in enumerate(ok.itertuples())}
    best = ok.iloc[0]
    keys = ["activation", "optimizer"]
    rows = []

    claim = "ReLU+Adam and ReLU+RMSProp reach the highest accuracy"
    named = [_find(ok, activation="relu", optimizer=o) for o in ("adam", "rmsprop")]
    if any(c is None for c in named):
        rows.append({"claim": claim, "study": study, "measured": "", "verdict": NOT_TESTED})
    else:
        parts = [
            f"{_cell_name(c, keys)} {_fmt(c)} "
            f"(rank {ranks[(c.activation, c.optimizer)]} of {len(ok)})"
            for c in named
        ]
        parts.append(f"best: {_cell_name(best, keys)} {_fmt(best)}")
        top = {(r.activation, r.optimizer) for r in ok.head(len(named)).itertuples()}
        if all((c.activation, c.optimizer) in top for c in named):
            verdict = SUPPORTED
        elif any(_below(c, best) for c in named):
            verdict = NOT_SUPPORTED
        else:
            verdict = WITHIN_NOISE
        rows.append(
            {"claim": claim, "study": study, "measured": "; ".join(parts), "verdict": verdict}
        )

    claim = "Sigmoid+Momentum gives lower accuracy (than ReLU+Momentum)"
    sig, rel = (
        _find(ok, activation="sigmoid", optimizer="momentum"),
        _find(ok, activation="relu", optimizer="momentum"),
    )
    if sig is None or rel is None:
        rows.append({"claim": claim, "study": study, "measured": "", "verdict": NOT_TESTED})
    else:
        measured = (
            f"sigmoid+momentum {_fmt(sig)} (rank {ranks[('sigmoid', 'momentum')]} of {len(ok)}); "
            f"relu+momentum {_fmt(rel)}"
        )
        verdict = (
            SUPPORTED if _below(sig, rel) else (NOT_SUPPORTED if _below(rel, sig) else WITHIN_NOISE)
        )
        rows.append({"claim": claim, "study": study, "measured": measured, "verdict": verdict})
    return rows


def penalty_claims(selected: pd.DataFrame, study: str) -> list[dict]:
    """Claims 3 and 4 on a study with penalty and strength factors."""
    ok = selected[selected["selectable"]]
    none = _find(ok, penalty="none")
    rows = []
    l1 = ok[ok["penalty"] == "l1"].sort_values("strength")
    claim = "L1 regularization lowers accuracy"
    if none is None or l1.empty:
        rows.append({"claim": claim, "study": study, "measured": "", "verdict": NOT_TESTED})
    else:
        below = [r["strength"] for _, r in l1.iterrows() if _below(r, none)]
        parts = [f"none {_fmt(none)}"] + [
            f"l1 {r['strength']:g}: {_fmt(r)}" for _, r in l1.iterrows()
        ]
        if len(below) == len(l1):
            verdict = SUPPORTED
        elif below:
            verdict = f"only at strength ≥ {min(below):g}"
        elif any(_below(none, r) for _, r in l1.iterrows()):
            verdict = NOT_SUPPORTED
        else:
            verdict = WITHIN_NOISE
        rows.append(
            {"claim": claim, "study": study, "measured": "; ".join(parts), "verdict": verdict}
        )

    l2 = ok[ok["penalty"] == "l2"]
    claim = "L2 regularization improves accuracy (at the strength chosen on validation)"
    if none is None or l2.empty:
        rows.append({"claim": claim, "study": study, "measured": "", "verdict": NOT_TESTED})
    else:
        chosen = l2.loc[l2["val_accuracy_mean"].idxmax()]
        measured = f"none {_fmt(none)}; l2 at {chosen['strength']:g}: {_fmt(chosen)}"
        verdict = (
            SUPPORTED
            if _below(none, chosen)
            else (NOT_SUPPORTED if _below(chosen, none) else WITHIN_NOISE)
        )
        rows.append({"claim": claim, "study": study, "measured": measured, "verdict": verdict})
    return rows


def findings(selected: dict[str, pd.DataFrame], factors: dict[str, list[str]]) -> pd.DataFrame:
    """Every original claim, evaluated on each study whose factors can test it."""
    rows = []
    for study, table in selected.items():
        keys = set(factors[study])
        if {"optimizer", "activation"} <= keys:
            rows += optimizer_claims(table, study)
        if {"penalty", "strength"} <= keys:
            rows += penalty_claims(table, study)
    return pd.DataFrame(rows, columns=["claim", "study", "measured", "verdict"])


def findings_table(tables: dict[str, str], factors: dict[str, list[str]], out_path) -> None:
    """Workflow entry: read each study's selected table, write the findings CSV."""
    selected = {study: read_table(tables[f"{study}_selected"]) for study in factors}
    with atomic_path(out_path) as tmp:
        findings(selected, factors).to_csv(tmp, index=False)
