"""The original study's findings beside what this run measured: the workflow's entry point.

The claims themselves are data (config/claims.yaml); `optreg.analysis.claims` judges them on
each study's runs (the evaluation seeds) and tuning table (what a choice may look at).
"""

from __future__ import annotations

import json

from optreg.analysis.claims import UNDECIDED, evaluate_claims, load_claims, open_cells
from optreg.analysis.tables import (
    as_written,
    read_records,
    read_table,
    runs_table,
    tuning_table,
    write_csv,
)
from optreg.io import atomic_path


def findings_table(
    *,
    claims_path,
    tables: dict,
    factors: dict[str, list[str]],
    own: dict[str, list] | None = None,
    looks: list[list[int]] | None = None,
    out_path,
    interactions_path,
) -> None:
    """Judge every claim under each protocol; write one row per claim, level and protocol, and
    one per `by:` claim and protocol for the change of its contrast across the levels.

    `tables` maps `<study>_runs` and `<study>_tuning` to their CSV files; `own` maps a factor
    to the values naming the config's own optimizers, models or data sets; `looks` are the
    seeds of each look of the sequential design (`optreg.study.matrix.plan_looks`)."""
    claims, alpha = load_claims(claims_path)
    runs = {study: read_table(tables[f"{study}_runs"]) for study in factors}
    tuning = {study: read_table(tables[f"{study}_tuning"]) for study in factors}
    findings, interactions = evaluate_claims(claims, alpha, runs, factors, tuning, own, looks)
    write_csv(findings, out_path)
    write_csv(interactions, interactions_path)


def look_table(*, claims_path, studies: dict, looks: list[list[int]], look: int, own, out_path):
    """Look `look` of the sequential design: the claims judged on every study's runs so far
    (their tuning runs and the evaluation seeds of the looks up to this one); writes, as JSON,
    each study's cells that a claim still undecided compares (those the next look trains).

    `studies[study]` has the `files`, `run_dirs` and `labels` of `tables.read_records` and the
    study's `factors`."""
    claims, alpha = load_claims(claims_path)
    runs, tuning, factors = {}, {}, {}
    for study, spec in studies.items():
        records = read_records(spec["files"], spec["run_dirs"], spec["labels"])
        runs[study] = as_written(runs_table(records))
        factors[study] = spec["factors"]
        tuning[study] = as_written(tuning_table(runs[study], factors[study]))
    findings, _ = evaluate_claims(claims, alpha, runs, factors, tuning, own, looks)
    undecided = findings[findings["verdict"] == UNDECIDED]
    out = {
        "look": look,
        "seeds": sorted(set().union(*map(set, looks[:look]))),
        "open": open_cells(findings),
        "undecided": [
            {k: row[k] for k in ("id", "study", "at", "protocol")}
            for row in undecided.to_dict("records")
        ],
    }
    with atomic_path(out_path) as tmp:
        tmp.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
