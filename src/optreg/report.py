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

import pandas as pd

from .config import format_value
from .figures import FIGURES
from .io import atomic_path, write_json
from .tables import read_table

VERSIONED = ("torch", "numpy", "pandas", "scipy", "matplotlib", "seaborn", "snakemake", "typst")


def _half(row, metric="test_accuracy") -> float:
    return (row[f"{metric}_ci_high"] - row[f"{metric}_ci_low"]) / 2


def _selected_rows(selected: pd.DataFrame, factors: list[str]) -> list[dict]:
    rows = []
    order = selected.sort_values("test_accuracy_mean", ascending=False, na_position="last")
    for _, r in order.iterrows():
        cells = {k: format_value(r[k]) for k in factors}
        if r["selectable"]:
            test = f"{r['test_accuracy_mean']:.3f} ± {_half(r):.3f}"
            val = f"{r['val_accuracy_mean']:.3f}"
        else:
            test = val = "all diverged"
        rows.append(
            {
                "cells": cells,
                "val": val,
                "test": test,
                "seeds": int(r["seeds"]),
                "diverged": int(r["n_diverged"]),
                "edge": bool(r["lr_on_grid_edge"]),
            }
        )
    return rows


def study_section(name: str, spec: dict) -> dict:
    """Everything the report shows about one study (`spec["factors"]`: name -> config values)."""
    runs = read_table(spec["tables"]["runs"])
    selected = read_table(spec["tables"]["selected"])
    factors = spec["factors"]
    return {
        "name": name,
        "description": spec.get("description", ""),
        "factors": [
            {"name": k, "values": [format_value(v) for v in values]}
            for k, values in factors.items()
        ],
        "fixed": {k: format_value(v) for k, v in spec.get("fixed", {}).items()},
        "seeds": [int(s) for s in spec["seeds"]],
        "combinations": int(runs["combination"].nunique()),
        "runs": len(runs),
        "diverged": int(runs["diverged"].sum()),
        "diverged_by_combination": {
            c: int(n) for c, n in runs.groupby("combination")["diverged"].sum().items() if n
        },
        "train_seconds": float(runs.drop_duplicates("combination")["wall_time_s"].sum()),
        "cell_keys": [k for k in factors if k != "lr"],
        "has_lr": "lr" in factors,
        "selected": _selected_rows(selected, list(factors)),
        "figures": [
            {
                "path": str(Path(path)),  # relative to the working directory
                "title": FIGURES[fig].title,
                "caption": FIGURES[fig].caption,
            }
            for fig, path in spec["figures"].items()
        ],
    }


def versions() -> dict[str, str]:
    """Versions of Python and the packages that produced the numbers and the report."""
    out = {"python": platform.python_version()}
    for package in VERSIONED:
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def report_data(*, data_meta: str, findings: str, studies: dict, config: dict) -> dict:
    """The JSON document the Typst template renders."""
    meta = json.loads(Path(data_meta).read_text())
    sections = [study_section(name, spec) for name, spec in studies.items()]
    first_runs = read_table(next(iter(studies.values()))["tables"]["runs"])
    provenance = {
        "device": str(first_runs["device"].iloc[0]),
        "torch_threads": int(first_runs["torch_threads"].iloc[0]),
    }
    defaults = config["defaults"]
    return {
        "dataset": meta,
        "defaults": {k: format_value(v) for k, v in defaults.items()},
        "device": provenance["device"],
        "torch_threads": provenance["torch_threads"],
        "seeds_per_job": config["seeds_per_job"],
        "versions": versions(),
        "studies": sections,
        "total_runs": sum(s["runs"] for s in sections),
        "total_diverged": sum(s["diverged"] for s in sections),
        "total_train_seconds": sum(s["train_seconds"] for s in sections),
        "findings": read_table(findings).fillna("").to_dict(orient="records"),
    }


def build_report(
    *,
    template: str,
    data_meta: str,
    findings: str,
    studies: dict,
    config: dict,
    output: str,
    data_output: str,
) -> None:
    """Write the report's data as JSON (`data_output`), then compile the template into `output`."""
    import typst

    data = report_data(data_meta=data_meta, findings=findings, studies=studies, config=config)
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
