"""Tidy tables built from metrics records: runs, history, per-cell summaries, selection."""

from __future__ import annotations

import pandas as pd

from .config import SETTING_KEYS, format_value
from .io import atomic_path
from .metrics import read_run
from .stats import mean_ci

SUMMARY_METRICS = (
    "test_accuracy",
    "val_accuracy",
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


def _setting_columns(record: dict) -> dict:
    settings = record["settings"]
    cols = {k: settings[k] for k in SETTING_KEYS}
    cols["hidden"] = format_value(settings["hidden"])
    return cols


def runs_table(records: list[dict]) -> pd.DataFrame:
    """One row per run: its settings, seed, final metrics, weight statistics and cost."""
    rows = []
    for r in records:
        rows.append(
            {
                "study": r["study"],
                "combination": r["combination"],
                "seed": r["seed"],
                **_setting_columns(r),
                **r["final"],
                **{k: v for k, v in r["weights"].items() if k != "near_zero_threshold"},
                "diverged": r["diverged"],
                "diverged_epoch": r["diverged_epoch"],
                "epochs_run": len(r["history"]),
                "wall_time_s": r["wall_time_s"],
                "device": r["provenance"]["device"],
                "torch_threads": r["provenance"]["torch_threads"],
                "stacked_seeds": r["provenance"]["stacked_seeds"],
                "settings_hash": r["provenance"]["settings_hash"],
            }
        )
    table = pd.DataFrame(rows)
    return table.sort_values(["combination", "seed"], kind="stable").reset_index(drop=True)


def history_table(records: list[dict]) -> pd.DataFrame:
    """One row per run and epoch: the learning curves."""
    rows = []
    for r in records:
        base = {"study": r["study"], "combination": r["combination"], "seed": r["seed"]}
        base.update(_setting_columns(r))
        rows.extend({**base, **epoch} for epoch in r["history"])
    columns = [
        "study",
        "combination",
        "seed",
        *SETTING_KEYS,
        "epoch",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "elapsed_s",
    ]
    return pd.DataFrame(rows, columns=columns)


def summarize(runs: pd.DataFrame, factors: list[str], confidence: float = 0.95) -> pd.DataFrame:
    """Per combination and metric: seeds, diverged seeds, mean, std and CI (long form)."""
    rows = []
    for combination, group in runs.groupby("combination", sort=False):
        cell = {k: group[k].iloc[0] for k in factors}
        n_diverged = int(group["diverged"].sum())
        for metric in SUMMARY_METRICS:
            stats = mean_ci(group[metric].astype(float), confidence)
            rows.append(
                {
                    "combination": combination,
                    **cell,
                    "metric": metric,
                    "seeds": len(group),
                    "n_diverged": n_diverged,
                    **stats,
                }
            )
    return pd.DataFrame(rows)


def select_learning_rates(
    summary: pd.DataFrame, factors: list[str], by: str = "val_accuracy"
) -> pd.DataFrame:
    """For each cell (factors other than `lr`), the learning rate with the best mean `by`.

    The choice uses validation metrics only; a learning rate where any seed
    diverged is never chosen. One row per cell with the chosen rate, whether
    it lies on the edge of the grid, and the test accuracy over seeds there.
    Without `lr` among the factors, every combination is its own cell.
    """
    cell_keys = [k for k in factors if k != "lr"]
    index = ["combination", *factors, "seeds", "n_diverged"]
    wide = summary.set_index([*index, "metric"])[["mean", "std", "ci_low", "ci_high", "n"]]
    wide = wide.unstack("metric")
    wide.columns = [f"{metric}_{stat}" for stat, metric in wide.columns]
    wide = wide.reset_index()
    groups = wide.groupby(cell_keys, sort=False) if cell_keys else [((), wide)]
    rows = []
    for _, group in groups:
        ok = group[(group["n_diverged"] == 0) & group[f"{by}_mean"].notna()]
        grid = sorted(group["lr"]) if "lr" in factors else []
        if ok.empty:
            best = group.iloc[[0]].copy()
            best["selectable"] = False
        else:
            best = ok.loc[[ok[f"{by}_mean"].idxmax()]].copy()
            best["selectable"] = True
        if grid:
            lr = best["lr"].iloc[0]
            best["lr_on_grid_edge"] = bool(len(grid) > 1 and lr in (grid[0], grid[-1]))
        else:
            best["lr_on_grid_edge"] = False
        rows.append(best)
    out = pd.concat(rows, ignore_index=True)
    order = ["combination", *factors, "seeds", "n_diverged", "selectable", "lr_on_grid_edge"]
    rest = sorted(c for c in out.columns if c not in order)
    return out[order + rest]


def write_csv(frame: pd.DataFrame, path) -> None:
    """Write a table atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def collect_runs(files, runs_path, history_path) -> pd.DataFrame:
    """Read and validate every metrics file (a bad one fails by name); write the tables."""
    records = [read_run(f) for f in files]
    runs = runs_table(records)
    write_csv(runs, runs_path)
    write_csv(history_table(records), history_path)
    return runs


def read_table(path) -> pd.DataFrame:
    """Read a table written by this module (only empty cells are missing values)."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def summarize_study(runs_path, factors: list[str], summary_path, selected_path) -> None:
    """Per-combination summary and learning-rate selection of one study's runs table."""
    runs = read_table(runs_path)
    summary = summarize(runs, factors)
    write_csv(summary, summary_path)
    write_csv(select_learning_rates(summary, factors), selected_path)
