"""The original study's findings beside what this run measured: the workflow's entry point.

The claims themselves are data (config/claims.yaml); `optreg.analysis.claims` evaluates
them on each study's evaluation summary and paired comparisons.
"""

from __future__ import annotations

from optreg.analysis.claims import evaluate_claims, load_claims
from optreg.analysis.tables import read_table, write_csv

# What a claim may look at in a summary besides the study's factors.
SUMMARY_COLUMNS = [
    "combination",
    "protocol",
    "seeds",
    "n_diverged",
    "test_accuracy_mean",
    "test_accuracy_ci_low",
    "test_accuracy_ci_high",
    "val_accuracy_mean",
]


def findings_table(*, claims_path, tables: dict, factors: dict[str, list[str]], out_path) -> None:
    """Evaluate every claim under both protocols; write one row per claim and protocol."""
    claims, alpha = load_claims(claims_path)
    summaries = {
        study: read_table(tables[f"{study}_summary"])[
            [*SUMMARY_COLUMNS[:1], *keys, *SUMMARY_COLUMNS[1:]]
        ]
        for study, keys in factors.items()
    }
    pairs = {study: read_table(tables[f"{study}_pairs"]) for study in factors}
    write_csv(evaluate_claims(claims, alpha, summaries, pairs), out_path)
