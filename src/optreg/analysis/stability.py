"""How far a study's answers depend on how much, and on which seeds, its rates were tuned.

Every claim is judged under every protocol of `optreg.training.protocol` (the findings
table has a row per protocol). Two questions compare those rows:

- **Tuning budgets**: the verdict at the optimizers' default rates (`oneshot`), with rates
  tuned on a small grid around the default (`small`) and on the whole grid (`tuned`): does
  "try them at their defaults" answer as "tune each" does?
- **Stability**: the verdict with rates tuned on the tuning seeds (`tuned`) and on the
  disjoint retuning seeds (`retuned`). A verdict that changes with the seeds that tuned
  it is *fragile*. Per cell, whether the two tunings chose the same rate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optreg.naming import PROTOCOLS

VERDICT_COLUMNS = [
    "study",
    "id",
    "text",
    "at",
    *(f"verdict_{p}" for p in PROTOCOLS),
    "fragile",
    "seeds",
    "seeds_needed",
    "contrast_cells",
]
RATE_COLUMNS = ["combination", "lr_tuned", "lr_retuned", "same_rate"]


def verdicts_by_protocol(findings: pd.DataFrame) -> pd.DataFrame:
    """One row per claim and level (`at`): its verdict under each protocol (empty where the
    study has no such protocol), and `fragile`: whether the verdict with rates tuned on the
    retuning seeds differs from that on the tuning seeds (missing without a retuning); the
    tuned verdict's seeds, the seeds it would need where undecided, and the cells its
    contrasts compare."""
    rows = []
    frame = findings.assign(at=findings["at"].astype(object).fillna("").astype(str))
    for (study, claim, at), group in frame.groupby(["study", "id", "at"], sort=False):
        by = dict(zip(group["protocol"].astype(str), group["verdict"].astype(str), strict=True))
        tuned, retuned = by.get("tuned"), by.get("retuned")
        first = group[group["protocol"].astype(str) == "tuned"]
        first = first.iloc[0] if len(first) else group.iloc[0]
        rows.append(
            {
                "study": study,
                "id": claim,
                "text": group["text"].iloc[0],
                "at": at,
                **{f"verdict_{p}": by.get(p, "") for p in PROTOCOLS},
                "fragile": (tuned != retuned) if tuned and retuned else None,
                **{k: first.get(k) for k in ("seeds", "seeds_needed", "contrast_cells")},
            }
        )
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def rate_changes(runs: pd.DataFrame) -> pd.DataFrame:
    """Per cell with a retuning: the rate tuned on the tuning seeds, that tuned on the
    retuning seeds, and whether they are the same."""
    evals = runs[runs["phase"] == "eval"]
    rates = evals.groupby(["combination", "protocol"], sort=False)["lr"].first().unstack()
    if "retuned" not in rates or "tuned" not in rates:
        return pd.DataFrame(columns=RATE_COLUMNS)
    rates = rates[rates["retuned"].notna()]
    out = pd.DataFrame(
        {
            "combination": rates.index.astype(str),
            "lr_tuned": rates["tuned"].astype(float).to_numpy(),
            "lr_retuned": rates["retuned"].astype(float).to_numpy(),
        }
    )
    out["same_rate"] = np.isclose(out["lr_tuned"], out["lr_retuned"], rtol=1e-9, atol=0)
    return out[RATE_COLUMNS].reset_index(drop=True)
