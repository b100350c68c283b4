"""The PDF report: gather tables and figures into one JSON document, typeset it with Typst.

The Typst template (workflow/report/report.typ) holds the layout and the prose;
this module computes every number the template shows, so the template never
does arithmetic on results.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
from pathlib import Path

import numpy as np
import pandas as pd

from optreg.analysis.claims import PROTOCOL_PHRASES, RULES, format_p
from optreg.analysis.inference import MAX_SEEDS
from optreg.analysis.stability import rate_changes, verdicts_by_protocol
from optreg.analysis.tables import read_table
from optreg.extensions import describe_extensions
from optreg.io import atomic_path, write_json
from optreg.naming import PROTOCOLS, format_value
from optreg.study.claims import load_claims
from optreg.study.matrix import plan_looks

VERSIONED = ("torch", "numpy", "pandas", "scipy", "matplotlib", "seaborn", "snakemake", "typst")


def _interval(row, metric: str = "test_accuracy", digits: int = 3) -> str:
    mean = row[f"{metric}_mean"]
    if pd.isna(mean):
        return "–"
    low, high = row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]
    if pd.isna(low):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _number(value, digits: int = 1) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.{digits}f}"


def cell_label(row, factors: list[str]) -> str:
    """A cell's name in tables: its factor values joined by '+' (strength as a number)."""
    return "+".join(format_value(row[k]) for k in factors)


def cell_rows(summary: pd.DataFrame, factors: list[str]) -> list[dict]:
    """One row per cell: tuned and one-shot rate and test accuracy, sparsity, time to target."""
    tuned = summary[summary["protocol"] == "tuned"].set_index("combination")
    oneshot = summary[summary["protocol"] == "oneshot"].set_index("combination")
    rows = []
    for combination, t in tuned.sort_values("test_accuracy_mean", ascending=False).iterrows():
        o = oneshot.loc[combination] if combination in oneshot.index else None
        rows.append(
            {
                "cell": cell_label(t, factors),
                "cells": {k: format_value(t[k]) for k in factors},
                "tuned_lr": format_value(float(t["lr"])),
                "edge": bool(t["lr_on_grid_edge"]),
                "tuned": _interval(t),
                "oneshot_lr": format_value(float(o["lr"])) if o is not None else "–",
                "oneshot": _interval(o) if o is not None else "–",
                "zeros": _number(t["zero_fraction_mean"], 3),
                "near_zero": _number(t["near_zero_fraction_mean"], 3),
                "epochs_to_target": _number(t["epochs_to_target_mean"], 1),
                "reached": f"{int(t['reached_target'])}/{int(t['seeds'])}",
                # At the same rate the default-rate runs are the tuned runs (trained once).
                "diverged": int(
                    t["n_diverged"]
                    + (o["n_diverged"] if o is not None and o["lr"] != t["lr"] else 0)
                ),
            }
        )
    return rows


def across_problems(runs: pd.DataFrame, summary: pd.DataFrame) -> list[dict]:
    """Per protocol, across the problems (`optreg.analysis.aggregates`): each optimizer's
    interquartile mean of normalized test scores with its 95% stratified-bootstrap interval,
    highest first, and the probability that the highest is more accurate than each other
    optimizer on a problem, with its interval."""
    from optreg.analysis.aggregates import aggregate_table, improvement_table, majority_rates

    majority = majority_rates(summary)
    iqms = aggregate_table(runs, majority)
    better = improvement_table(runs, majority)

    def interval(row, value: str, digits: int) -> str:
        return f"{row[value]:.{digits}f} [{row['ci_low']:.{digits}f}, {row['ci_high']:.{digits}f}]"

    out = []
    for protocol in ("tuned", "oneshot"):
        table = iqms[iqms["protocol"] == protocol].sort_values("iqm", ascending=False)
        if table.empty:
            continue
        best = str(table["optimizer"].iloc[0])
        against = better[(better["protocol"] == protocol) & (better["x"] == best)]
        out.append(
            {
                "protocol": protocol,
                "best": best,
                "iqm": [
                    {"name": str(r["optimizer"]), "value": interval(r, "iqm", 3)}
                    for _, r in table.iterrows()
                ],
                "improvement": [
                    {"name": str(r["y"]), "value": interval(r, "probability", 2)}
                    for _, r in against.iterrows()
                ],
            }
        )
    return out


def target_text(summary: pd.DataFrame) -> str:
    """The target validation accuracies of a study's problems (`target_val_accuracy`), one
    number when they share it, else each with its problems."""
    targets = summary.groupby("problem", sort=False)["target_val_accuracy"].first()
    shown = targets.map(lambda t: f"{t:.3g}")
    if shown.nunique() == 1:
        return str(shown.iloc[0])
    return "; ".join(f"{t} ({', '.join(g.index)})" for t, g in shown.groupby(shown, sort=True))


def cell_labels(runs: pd.DataFrame, factors: list[str]) -> dict[str, str]:
    """Each combination of a runs table -> its name in the report's tables."""
    first = runs.drop_duplicates("combination")
    return {row["combination"]: cell_label(row, factors) for _, row in first.iterrows()}


def study_section(name: str, spec: dict, runs: pd.DataFrame) -> dict:
    """Everything the report shows about one study (`spec["factors"]`: name -> config values;
    `spec["figures"]`: name -> its PNG's path, title and caption, as the workflow passes them
    from the figure registry; `runs`: its runs table)."""
    summary = read_table(spec["tables"]["summary"])
    pairs = read_table(spec["tables"]["pairs"])
    factors = list(spec["factors"])
    tune = runs[runs["phase"] == "tune"]
    section = {
        "name": name,
        "description": spec.get("description", ""),
        "factors": [
            {"name": k, "values": [format_value(v) for v in values]}
            for k, values in spec["factors"].items()
        ],
        "fixed": {k: format_value(v) for k, v in spec.get("fixed", {}).items()},
        "lr_grid": [format_value(float(v)) for v in spec["lr_grid"]],
        "cells": int(runs["combination"].nunique()),
        "runs": len(runs),
        "tuning_runs": len(tune),
        "diverged": int(runs["diverged"].sum()),
        "train_seconds": float(runs.drop_duplicates(["combination", "phase"])["wall_time_s"].sum()),
        "has_penalty": "penalty" in factors,
        "rows": cell_rows(summary, factors),
        "pairs": {
            protocol: {
                "total": int((pairs["protocol"] == protocol).sum()),
                "significant": int(
                    (pairs["significant"].astype(bool) & (pairs["protocol"] == protocol)).sum()
                ),
            }
            for protocol in ("tuned", "oneshot")
        },
        "figures": [
            {
                "path": str(Path(figure["path"])),  # relative to the working directory
                "title": figure["title"],
                "caption": figure["caption"],
            }
            for figure in spec["figures"].values()
        ],
    }
    # Every cell tuned to its default rate: the default columns would repeat the tuned ones.
    section["same_rates"] = name in default_rate_studies({name: runs})
    section["target"] = target_text(summary)
    # The study's own target (`studies.<name>.target_val_accuracy`), or the protocol's.
    section["own_target"] = bool(spec.get("own_target", False))
    if {"problem", "optimizer"} <= set(factors):
        section["across"] = across_problems(runs, summary)
    section["published"] = published_rows(summary, spec.get("problems", {}))
    # Cells whose best rate lay on the grid's edge, and how often extending it moved the choice.
    tuned = summary[summary["protocol"] == "tuned"]
    extended = tuned["lr_extended"].fillna("").astype(str) if "lr_extended" in tuned else []
    section["extended_cells"] = int(sum(bool(x) for x in extended))
    section["edge_cells"] = int(tuned["lr_on_grid_edge"].astype(bool).sum())
    return section


def published_rows(summary: pd.DataFrame, problems: dict) -> list[dict]:
    """Per problem with a published test accuracy: it beside the measured one (tuned rate)."""
    if "problem" not in summary.columns:
        return []
    tuned = summary[summary["protocol"] == "tuned"]
    rows = []
    for name, spec in problems.items():
        published = spec.get("published_test_accuracy")
        cells = tuned[tuned["problem"] == name]
        if published is None or cells.empty:
            continue
        for _, t in cells.iterrows():
            rows.append(
                {
                    "problem": name,
                    "published": f"{100 * published:.0f}%",
                    "ours": f"{100 * t['test_accuracy_mean']:.1f}% "
                    f"[{100 * t['test_accuracy_ci_low']:.1f}, "
                    f"{100 * t['test_accuracy_ci_high']:.1f}]",
                    "difference": f"{100 * (t['test_accuracy_mean'] - published):+.1f}",
                    "seeds": int(t["seeds"]),
                }
            )
    return rows


def cost_section(cost_csv: str | os.PathLike, labels: dict[str, dict[str, str]]) -> dict:
    """What training cost, from the train jobs' Snakemake benchmark files (`optreg.analysis.cost`).

    One row per cell, labelled like the study tables (`labels`: study -> `cell_labels`, in
    the report's order of studies), most CPU time first, and one total per study. CPU
    seconds are a lower bound and missing for jobs too short to sample.
    """
    cost = read_table(cost_csv)
    cost = cost.sort_values(["cpu_s", "wall_s"], ascending=False, na_position="last")
    rows = [
        {
            "study": str(r["study"]),
            "cell": labels.get(r["study"], {}).get(r["combination"], str(r["combination"])),
            "jobs": int(r["jobs"]),
            "wall_s": _number(r["wall_s"]),
            "cpu_s": _number(r["cpu_s"]),
            "max_rss_mib": _number(r["max_rss_mib"], 0),
        }
        for _, r in cost.iterrows()
    ]
    totals = []
    for study in labels:  # in the config's order
        group = cost[cost["study"] == study]
        if group.empty:
            continue
        totals.append(
            {
                "study": str(study),
                "jobs": int(group["jobs"].sum()),
                "wall_s": _number(group["wall_s"].sum()),
                "cpu_s": _number(group["cpu_s"].sum(min_count=1)),
                "max_rss_mib": _number(group["max_rss_mib"].max(), 0),
                "unsampled_cells": int(group["cpu_s"].isna().sum()),
            }
        )
    return {"rows": rows, "studies": totals}


def execution(runs: dict[str, pd.DataFrame]) -> dict:
    """How the cells actually trained, from their runs: how many trained their runs as one
    stacked model and how many one run at a time (each run's `stacked_runs`: a torch.optim
    optimizer, or a model torch.func cannot stack), with those cells' optimizers; and the
    mini-batch size and epochs, as one value or one per study where they differ."""
    stacked, single, single_optimizers = 0, 0, set()
    batches, epochs = {}, {}
    for name, table in runs.items():
        for _, cell in table.groupby("combination"):
            if len(cell) > 1 and int(cell["stacked_runs"].max()) == 1:
                single += 1
                single_optimizers.update(str(o) for o in cell["optimizer"].unique())
            else:
                stacked += 1
        batches[name] = sorted({int(v) for v in table["batch_size"]})
        epochs[name] = sorted({int(v) for v in table["epochs"]})

    def text(values: dict[str, list[int]]) -> str:
        distinct = {v for vs in values.values() for v in vs}
        if len(distinct) == 1:
            return str(distinct.pop())
        return "; ".join(f"{', '.join(map(str, vs))} in {name}" for name, vs in values.items())

    return {
        "cells": stacked + single,
        "stacked": stacked,
        "single": single,
        "single_optimizers": sorted(single_optimizers),
        "batch_size": text(batches),
        "epochs": text(epochs),
    }


def versions(runs: list[pd.DataFrame] = ()) -> dict[str, str]:
    """Versions of Python and the packages that produced the numbers and the report, then
    those the study's own optimizers, models and data sets came from, as the runs recorded
    them (`packages` of each run's provenance; two versions of one package both shown)."""
    out = {"python": platform.python_version()}
    for package in VERSIONED:
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "not installed"
    recorded: dict[str, set[str]] = {}
    for table in runs:
        column = table.get("packages", [])
        for cell in column:
            if not isinstance(cell, str):
                continue
            for pin in filter(None, cell.split(";")):
                name, _, version = pin.partition("==")
                recorded.setdefault(name, set()).add(version)
    for name in sorted(set(recorded) - set(out)):
        out[name] = " / ".join(sorted(recorded[name]))
    return out


def _order(frame: pd.DataFrame, studies: list[str]) -> pd.DataFrame:
    """Claims about studies this config runs, claim by claim in the claims file's order, each
    level (`at`) in turn, the fair protocol first."""
    frame = frame[frame["study"].isin(studies)].reset_index(drop=True)
    for column in ("at", "protocol"):
        if column in frame:
            frame[column] = frame[column].fillna("").astype(str)
    claim_order = {c: i for i, c in enumerate(dict.fromkeys(frame["id"]))}
    protocols = {p: i for i, p in enumerate(PROTOCOL_PHRASES)}
    keys = {"id": claim_order, "protocol": protocols}
    if "at" in frame:
        keys["at"] = {a: i for i, a in enumerate(dict.fromkeys(frame["at"]))}
    return frame.sort_values(
        [c for c in ("id", "at", "protocol") if c in frame],
        key=lambda col: col.map(keys[col.name]).fillna(len(keys[col.name])),
        kind="stable",
    )


# The protocols the summary's tables show: the fair one and the original's; the others
# (a small grid, a second tuning) are compared with these in `tuning_section`.
SHOWN = ("tuned", "oneshot")
# A study whose every cell was tuned to its default rate has the same runs under both: its
# rows are shown once, under this name.
SAME = "same"


def default_rate_studies(runs: dict[str, pd.DataFrame]) -> set[str]:
    """The studies in which every cell's tuned rate is its default rate (a one-rate grid
    holding the default): `tuned` and `oneshot` are one and the same set of runs there."""
    out = set()
    for study, frame in runs.items():
        evals = frame[frame["phase"] == "eval"]
        rates = evals.groupby(["combination", "protocol"])["lr"].first().unstack()
        if {"tuned", "oneshot"} <= set(rates.columns) and np.allclose(
            rates["tuned"].astype(float), rates["oneshot"].astype(float), rtol=1e-9, atol=0
        ):
            out.add(study)
    return out


def _shown(frame: pd.DataFrame, same: set[str]) -> pd.DataFrame:
    """The rows of the shown protocols; in a study of `same`, the tuned rows only, as SAME."""
    protocol = frame["protocol"].astype(object).fillna("").astype(str)
    twice = frame["study"].isin(same)
    keep = protocol.isin(("", *SHOWN)) & ~(twice & (protocol == "oneshot"))
    out = frame[keep].copy()
    # As text: a column read with no protocol in it (all missing) is numeric.
    out["protocol"] = protocol[keep].where(~(twice & (protocol == "tuned"))[keep], SAME)
    return out


def findings_rows(
    findings: pd.DataFrame, studies: list[str], alpha: float, same: set[str] = frozenset()
) -> list[dict]:
    """One row per claim, level and protocol: its verdict, once, and the evidence it rests on
    (effect in points, interval, Holm-adjusted p with the digits that place it against alpha).
    Only the protocols of SHOWN; those of a study in `same` once (`_shown`)."""
    rows = []
    for r in _order(_shown(findings, same), studies).to_dict("records"):
        effect = ""
        if pd.notna(r.get("diff")) and pd.notna(r.get("ci_low")):
            effect = f"{100 * r['diff']:+.2f} [{100 * r['ci_low']:+.2f}, {100 * r['ci_high']:+.2f}]"
        rows.append(
            {
                "text": str(r["text"]),
                "at": str(r["at"]),
                "protocol": str(r["protocol"]),
                "verdict": str(r["verdict"]),
                "note": "" if pd.isna(r["note"]) else str(r["note"]),
                "effect": effect,
                "p_holm": format_p(r["p_holm"], alpha) if pd.notna(r.get("p_holm")) else "",
                "p_best": f"{r['p_best']:.2f}" if pd.notna(r.get("p_best")) else "",
                "seeds_needed": (
                    str(int(r["seeds_needed"])) if pd.notna(r.get("seeds_needed")) else ""
                ),
                "evidence": str(r["evidence"]),
            }
        )
    return rows


def interaction_rows(
    interactions: pd.DataFrame, studies: list[str], same: set[str] = frozenset()
) -> list[dict]:
    """Per `by:` claim and protocol: what the factor does to its contrast, as tested."""
    return [
        {
            "text": str(r["text"]),
            "protocol": str(r["protocol"]),
            "changes": bool(r["changes"]),
            "evidence": str(r["evidence"]),
        }
        for r in _order(_shown(interactions, same), studies).to_dict("records")
    ]


def budget_section(
    convergence: pd.DataFrame,
    budgets: pd.DataFrame,
    studies: list[str],
    same: set[str] = frozenset(),
) -> dict:
    """Whether training had converged (per study, the tuned cells), and each claim's verdict
    at every budget the study was read at, with whether it holds across them."""
    converged = []
    for study in studies:
        cells = convergence[(convergence["study"] == study) & (convergence["protocol"] == "tuned")]
        if cells.empty:
            continue
        rising = cells[cells["converged"].astype(str) != "True"]
        converged.append(
            {
                "study": study,
                "epochs": ", ".join(str(int(e)) for e in sorted(cells["epochs"].unique())),
                "cells": len(cells),
                "converged": len(cells) - len(rising),
                "train_accuracy": f"{100 * cells['train_accuracy'].min():.0f}–"
                f"{100 * cells['train_accuracy'].max():.0f}",
                "rising": [
                    f"{r['combination']} ({100 * r['val_gain_last_fifth']:+.1f} points)"
                    for r in rising.sort_values("val_gain_last_fifth", ascending=False)
                    .head(6)
                    .to_dict("records")
                ],
            }
        )
    rows = []
    budgets = _shown(budgets, same)
    if not budgets.empty:
        frame = _order(budgets, studies)
        for (_, at, protocol), group in frame.groupby(["id", "at", "protocol"], sort=False):
            group = group.sort_values("budget")
            verdicts = [str(v) for v in group["verdict"]]
            rows.append(
                {
                    "text": str(group["text"].iloc[0]),
                    "at": str(at),
                    "protocol": str(protocol),
                    "by_budget": [
                        {
                            "budget": int(b),
                            "verdict": str(v),
                            "rate": f"{int(same)}/{int(cells)}",
                        }
                        for b, v, same, cells in zip(
                            group["budget"],
                            verdicts,
                            group["same_rate"],
                            group["cells"],
                            strict=True,
                        )
                    ],
                    "holds": len(set(verdicts)) == 1,
                }
            )
    budget_list = sorted({int(b) for b in budgets["budget"]}) if not budgets.empty else []
    return {"converged": converged, "claims": rows, "budgets": budget_list}


def _seeds_text(row: dict) -> str:
    """The seeds a tuned verdict took, and those that would decide it where it is open."""
    if pd.isna(row.get("seeds")):
        return ""
    text = str(int(row["seeds"]))
    if pd.notna(row.get("seeds_needed")):
        text += f" ({int(row['seeds_needed'])})"
    elif row.get("verdict_tuned") == "undecided":
        text += f" (> {MAX_SEEDS})"
    return text


def _converged_text(row: dict, convergence: pd.DataFrame | None) -> str:
    """Whether every cell the claim's contrasts compare had converged (tuned rate)."""
    named = [c for c in str(row.get("contrast_cells") or "").split(";") if c and c != "nan"]
    if convergence is None or convergence.empty or not named:
        return ""
    cells = convergence[
        (convergence["study"] == row["study"])
        & (convergence["protocol"] == "tuned")
        & convergence["combination"].isin(named)
    ]
    if len(cells) < len(named):
        return ""
    rising = int((cells["converged"].astype(str) != "True").sum())
    return "yes" if rising == 0 else f"{len(named) - rising} of {len(named)} cells"


def tuning_section(
    findings: pd.DataFrame,
    runs: dict[str, pd.DataFrame],
    convergence: pd.DataFrame | None = None,
) -> dict:
    """Each claim's verdict under every tuning budget and under the second tuning, whether
    it is fragile, whether its cells had converged and how many seeds it took; per study, in
    how many cells the second tuning chose the same rate."""
    studies = list(runs)
    claims = []
    table = verdicts_by_protocol(_order(findings, studies))
    for r in table.to_dict("records"):
        verdicts = {p: r[f"verdict_{p}"] for p in PROTOCOLS}
        if not (verdicts["small"] or verdicts["retuned"]):
            continue  # a one-rate grid: no tuning to compare (default_rate_studies)
        claims.append(
            {
                "text": str(r["text"]),
                "at": str(r["at"]),
                "verdicts": verdicts,
                "fragile": "" if r["fragile"] is None else ("yes" if r["fragile"] else "no"),
                "converged": _converged_text(r, convergence),
                "seeds": _seeds_text(r),
            }
        )
    rates = []
    for study, frame in runs.items():
        changes = rate_changes(frame)
        if changes.empty:
            continue
        moved = changes[~changes["same_rate"].astype(bool)]
        rates.append(
            {
                "study": study,
                "cells": len(changes),
                "same": int(changes["same_rate"].sum()),
                "changed": [
                    f"{r['combination']} ({format_value(r['lr_tuned'])} → "
                    f"{format_value(r['lr_retuned'])})"
                    for r in moved.to_dict("records")
                ],
            }
        )
    judged = [c for c in claims if c["fragile"]]
    return {
        "claims": claims,
        "rates": rates,
        "fragile": sum(c["fragile"] == "yes" for c in judged),
        "judged": len(judged),
    }


def families(
    findings: pd.DataFrame, studies: list[str], same: set[str] = frozenset()
) -> list[dict]:
    """The size of each study's confirmatory family under each protocol, and its seeds."""
    found = findings[findings["study"].isin(studies) & findings["family"].notna()]
    found = _shown(found, same)
    out = []
    for (study, protocol), group in found.groupby(["study", "protocol"], sort=False):
        seeds = group["seeds"].dropna()
        out.append(
            {
                "study": str(study),
                "protocol": str(protocol),
                "contrasts": int(group["family"].max()),
                "own": int(group["family_own"].max()) if "family_own" in group else 0,
                "seeds": int(seeds.max()) if len(seeds) else 0,
            }
        )
    return out


def report_data(
    *,
    data_meta,
    findings: str,
    interactions: str,
    alpha: float,
    studies: dict,
    config: dict,
    cost: str | os.PathLike,
    convergence: str | None = None,
    budgets: str | None = None,
) -> dict:
    """The JSON document the Typst template renders (`findings`, `interactions`: the tables of
    `optreg.analysis.findings`, judged at `alpha`; `cost`: the cost table,
    `optreg.analysis.cost`; `convergence`, `budgets`: those of `optreg.analysis.budgets`)."""
    metas = [json.loads(Path(p).read_text()) for p in data_meta]
    runs = {name: read_table(spec["tables"]["runs"]) for name, spec in studies.items()}
    problems = config["problems"]
    sections = [
        study_section(name, {"problems": problems, **spec}, runs[name])
        for name, spec in studies.items()
    ]
    first_runs = next(iter(runs.values()))
    same = default_rate_studies(runs)
    found = findings_rows(read_table(findings), list(studies), alpha, same)
    changes = interaction_rows(read_table(interactions), list(studies), same)
    protocol = config["protocol"]
    return {
        "datasets": metas,
        "problems": {
            name: {k: format_value(v) for k, v in spec.items() if k != "published_test_accuracy"}
            for name, spec in config["problems"].items()
        },
        "protocol": {
            "lr_grid": [format_value(float(v)) for v in protocol["lr_grid"]],
            "tuning_seeds": protocol["tuning_seeds"],
            "retuning_seeds": protocol.get("retuning_seeds", []),
            "evaluation_seeds": protocol["evaluation_seeds"],
            "looks": plan_looks(protocol),
            "default_lr": {k: format_value(float(v)) for k, v in protocol["default_lr"].items()},
            "target": format_value(float(protocol["target_val_accuracy"])),
            "lr_limits": [format_value(float(v)) for v in protocol["lr_limits"]],
        },
        "defaults": {k: format_value(v) for k, v in config["defaults"].items()},
        "extensions": describe_extensions(config),
        "device": str(first_runs["device"].iloc[0]),
        "torch_threads": int(first_runs["torch_threads"].iloc[0]),
        "versions": versions(list(runs.values())),
        "execution": execution(runs),
        "studies": sections,
        "total_runs": sum(s["runs"] for s in sections),
        "total_diverged": sum(s["diverged"] for s in sections),
        "total_train_seconds": sum(s["train_seconds"] for s in sections),
        "findings": found,
        "interactions": changes,
        "rules": RULES,
        "alpha": format_p(alpha, 1.0),
        "margins": sorted({f"{100 * float(m):g}" for m in read_table(findings)["margin"]}),
        "families": families(read_table(findings), list(studies), same),
        "tuning": tuning_section(
            read_table(findings), runs, read_table(convergence) if convergence else None
        ),
        "budgets": (
            budget_section(read_table(convergence), read_table(budgets), list(studies), same)
            if convergence and budgets
            else {"converged": [], "claims": [], "budgets": []}
        ),
        "cost": cost_section(
            cost,
            {
                name: cell_labels(runs[name], list(spec["factors"]))
                for name, spec in studies.items()
            },
        ),
    }


def build_report(
    *,
    template: str,
    data_meta,
    findings: str,
    interactions: str,
    claims: str,
    studies: dict,
    config: dict,
    cost: str,
    output: str,
    data_output: str,
    convergence: str | None = None,
    budgets: str | None = None,
) -> None:
    """Write the report's data as JSON (`data_output`), then compile the template into `output`."""
    import typst

    _, alpha = load_claims(claims)
    data = report_data(
        data_meta=data_meta,
        findings=findings,
        interactions=interactions,
        alpha=alpha,
        studies=studies,
        config=config,
        cost=cost,
        convergence=convergence,
        budgets=budgets,
    )
    data_path = Path(data_output)
    write_json(data_path, data)
    # Typst reads only files under its root: the folder holding both the template and the
    # working directory (where the data and figures are); paths below are relative to it.
    cwd = os.getcwd()
    root = os.path.commonpath([os.path.abspath(template), cwd])
    with atomic_path(output) as tmp:
        typst.compile(
            template,
            output=str(tmp),
            root=root,
            sys_inputs={
                "data": "/" + os.path.relpath(data_path.resolve(), root),
                "workdir": "/" + os.path.relpath(cwd, root),
            },
        )
