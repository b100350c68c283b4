"""The original study's findings beside what this run measured: the workflow's entry point.

The claims themselves are data (config/claims.yaml); `optreg.analysis.claims` judges them on
each study's runs (the evaluation seeds) and tuning table (what a choice may look at).
"""

from __future__ import annotations

from optreg.analysis.claims import evaluate_claims, load_claims
from optreg.analysis.tables import read_table, write_csv


def findings_table(
    *,
    claims_path,
    tables: dict,
    factors: dict[str, list[str]],
    own: dict[str, list] | None = None,
    out_path,
    interactions_path,
) -> None:
    """Judge every claim under each protocol; write one row per claim, level and protocol, and
    one per `by:` claim and protocol for the change of its contrast across the levels.

    `tables` maps `<study>_runs` and `<study>_tuning` to their CSV files; `own` maps a factor
    to the values naming the config's own optimizers, models or data sets."""
    claims, alpha = load_claims(claims_path)
    runs = {study: read_table(tables[f"{study}_runs"]) for study in factors}
    tuning = {study: read_table(tables[f"{study}_tuning"]) for study in factors}
    findings, interactions = evaluate_claims(claims, alpha, runs, factors, tuning, own)
    write_csv(findings, out_path)
    write_csv(interactions, interactions_path)
