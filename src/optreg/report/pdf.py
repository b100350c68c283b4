"""The PDF report: gather tables and figures into one JSON document, typeset it with Typst.

The Typst template (workflow/report/report.typ) holds the layout and the prose;
this module computes every number the template shows, so the template never
does arithmetic on results.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
from pathlib import Path

import pandas as pd

from optreg.analysis.claims import conclusion, factor_effects
from optreg.analysis.tables import read_table
from optreg.extensions import describe_extensions
from optreg.io import atomic_path, write_json
from optreg.naming import format_value

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
                "diverged": int(t["n_diverged"] + (o["n_diverged"] if o is not None else 0)),
            }
        )
    return rows


def average_ranks(summary: pd.DataFrame, by: str, across: str) -> list[dict]:
    """Mean rank of each `by` value (1 = most accurate) across the values of `across`."""
    out = []
    for protocol in ("tuned", "oneshot"):
        table = summary[summary["protocol"] == protocol]
        ranks = table.groupby(across)["test_accuracy_mean"].rank(ascending=False, method="average")
        mean_rank = ranks.groupby(table[by]).mean().sort_values()
        out.append(
            {
                "protocol": protocol,
                "ranks": [{"name": str(k), "rank": f"{v:.2f}"} for k, v in mean_rank.items()],
            }
        )
    return out


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
    if {"problem", "optimizer"} <= set(factors):
        section["ranks"] = average_ranks(summary, "optimizer", "problem")
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


def _records(frame: pd.DataFrame) -> list[dict]:
    return [
        {k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def report_data(
    *, data_meta, findings: str, studies: dict, config: dict, cost: str | os.PathLike
) -> dict:
    """The JSON document the Typst template renders (`cost`: the cost table,
    `optreg.analysis.cost`)."""
    metas = [json.loads(Path(p).read_text()) for p in data_meta]
    runs = {name: read_table(spec["tables"]["runs"]) for name, spec in studies.items()}
    problems = config["problems"]
    sections = [
        study_section(name, {"problems": problems, **spec}, runs[name])
        for name, spec in studies.items()
    ]
    first_runs = next(iter(runs.values()))
    found = read_table(findings)
    # Claims about studies this config does not run (a preset's own studies) are left out.
    found = found[found["study"].isin(list(studies))].reset_index(drop=True)
    found["at"] = found["at"].fillna("").astype(str) if "at" in found else ""
    # Claim by claim in the claims file's order, each depth (`at`) in turn, the fair protocol
    # first.
    claim_order = {c: i for i, c in enumerate(dict.fromkeys(found["id"]))}
    at_order = {a: i for i, a in enumerate(dict.fromkeys(found["at"]))}
    orders = {"id": claim_order, "at": at_order}
    found = found.sort_values(
        ["id", "at", "protocol"],
        key=lambda col: (
            col.map(orders[col.name]) if col.name in orders else col.map({"tuned": 0}).fillna(1)
        ),
        kind="stable",
    )
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
            "evaluation_seeds": protocol["evaluation_seeds"],
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
        "findings": _records(found),
        "conclusion": conclusion(found),
        "depth": factor_effects(found),
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
    studies: dict,
    config: dict,
    cost: str,
    output: str,
    data_output: str,
) -> None:
    """Write the report's data as JSON (`data_output`), then compile the template into `output`."""
    import typst

    data = report_data(
        data_meta=data_meta, findings=findings, studies=studies, config=config, cost=cost
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
