"""Training budgets: whether a cell's training had converged, and the claims read at the
budget marks.

A run records its validation accuracy every epoch and its test accuracy at the budget marks
(`Settings.marks`) and at its last epoch. `convergence_table` asks of each evaluated cell
whether more training would still have raised its validation accuracy: it compares the mean
over the last tenth of the epochs with the tenth that ended at four fifths of training, seed
by seed, and calls the cell converged when the one-sided upper 95% bound of that gain is
below the claims' margin (a rise smaller than the smallest difference that matters, or a
fall). It reads evaluation seeds, but it is a description of the runs, never a choice.

`runs_at` turns a study's runs table into the table those runs would have given had training
stopped at a mark, so that the claims can be judged again there (`claims_by_budget`). The
runs are those trained for the whole budget at the rate tuned for it: with a constant rate a
mark reads exactly the run a shorter budget trains, at a rate not tuned for that budget (the
table says at how many cells tuning at the mark would have chosen the same rate); under a
schedule it is an anytime reading of the longer schedule.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats as st

from optreg.analysis.claims import evaluate_claims, load_claims
from optreg.analysis.tables import read_table, tuning_runs, tuning_table, write_csv
from optreg.study.claims import DEFAULT_MARGIN
from optreg.training.protocol import choose_value

# Columns of a runs table a mark replaces with the run's values at that epoch.
METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
KEYS = ["combination", "phase", "protocol", "seed", "lr"]

BUDGET_COLUMNS = [
    "id",
    "text",
    "study",
    "at",
    "protocol",
    "budget",
    "verdict",
    "diff",
    "ci_low",
    "ci_high",
    "seeds",
    "same_rate",
    "cells",
]


def _window(epochs: int) -> int:
    return max(1, math.ceil(epochs / 10))


def convergence_table(
    history: pd.DataFrame, factors: list[str], margin: float, alpha: float = 0.05
) -> pd.DataFrame:
    """Per evaluated cell and protocol: the validation-accuracy gain over the last fifth of
    training (mean of the last tenth of epochs minus the mean of the tenth ending at 4/5),
    its one-sided upper bound, whether the cell `converged` (bound below `margin`; None with
    fewer than two seeds), and its final training and validation accuracy."""
    evals = history[history["phase"] == "eval"]
    rows = []
    for (combination, protocol), cell in evals.groupby(["combination", "protocol"], sort=False):
        epochs = int(cell["epochs"].iloc[0])
        width = _window(epochs)
        end_early = math.floor(0.8 * epochs)
        gains, train, val = [], [], []
        for _, run in cell.groupby("seed"):
            by_epoch = run.set_index("epoch")
            if by_epoch.index.max() < epochs:  # diverged before the end
                continue
            late = by_epoch.loc[epochs - width + 1 : epochs, "val_accuracy"].mean()
            early = by_epoch.loc[max(1, end_early - width + 1) : end_early, "val_accuracy"].mean()
            gains.append(late - early)
            train.append(by_epoch.loc[epochs, "train_accuracy"])
            val.append(by_epoch.loc[epochs, "val_accuracy"])
        n = len(gains)
        mean = float(np.mean(gains)) if n else math.nan
        if n >= 2:
            se = float(np.std(gains, ddof=1)) / math.sqrt(n)
            upper = mean + float(st.t.ppf(1 - alpha, n - 1)) * se
            converged = bool(upper < margin)
        else:
            upper, converged = math.nan, None
        rows.append(
            {
                "combination": combination,
                **{k: cell[k].iloc[0] for k in factors if k in cell},
                "protocol": protocol,
                "epochs": epochs,
                "seeds": n,
                "val_gain_last_fifth": mean,
                "val_gain_upper": upper,
                "margin": margin,
                "converged": converged,
                "train_accuracy": float(np.mean(train)) if n else math.nan,
                "val_accuracy": float(np.mean(val)) if n else math.nan,
                "train_val_gap": float(np.mean(train) - np.mean(val)) if n else math.nan,
            }
        )
    return pd.DataFrame(rows)


def marks(history: pd.DataFrame) -> list[int]:
    """The budget marks every evaluated cell of the study was tested at, before its last
    epoch: the budgets its claims can be read at besides the whole one."""
    evals = history[history["phase"] == "eval"]
    tested = evals[evals["test_accuracy"].notna() & (evals["epoch"] < evals["epochs"])]
    if evals.empty or tested.empty:
        return []
    per_cell = tested.groupby("combination")["epoch"].agg(lambda e: set(e.astype(int)))
    if len(per_cell) < evals["combination"].nunique():
        return []
    return sorted(set.intersection(*per_cell))


def runs_at(runs: pd.DataFrame, history: pd.DataFrame, mark: int) -> pd.DataFrame:
    """The runs table as training stopped at epoch `mark` would have left it: each run's
    metrics at that epoch (a run that diverged at or before it: diverged, no metrics)."""
    at = history[history["epoch"] == mark][[*KEYS, *METRICS]]
    out = runs.drop(columns=[c for c in METRICS if c in runs]).merge(at, on=KEYS, how="left")
    diverged_by = out["diverged_epoch"].notna() & (out["diverged_epoch"] <= mark)
    out["diverged"] = diverged_by
    out["diverged_epoch"] = out["diverged_epoch"].where(diverged_by)
    out["epochs_run"] = out["epochs_run"].clip(upper=mark)
    return out[runs.columns]


def rate_at(runs: pd.DataFrame, history: pd.DataFrame, mark: int) -> pd.DataFrame:
    """Per cell: the rate its tuning would choose at `mark` (the same rule as at the end,
    `optreg.training.protocol.choose_value`, on the tuning runs' validation there) beside the
    rate chosen for the whole budget (protocol `tuned`, on its tuning seeds)."""
    tuning = runs_at(tuning_runs(runs, "tuned"), history, mark)
    chosen = runs[(runs["phase"] == "eval") & (runs["protocol"] == "tuned")]
    chosen = chosen.groupby("combination")["lr"].first()
    rows = []
    for combination, cell in tuning.groupby("combination", sort=False):
        by_lr = cell.groupby("lr")
        ok = by_lr["diverged"].sum() == 0
        accuracy = by_lr["val_accuracy"].mean()[ok].to_dict()
        loss = by_lr["val_loss"].mean()[ok].to_dict()
        at_mark = choose_value(accuracy, loss, sorted(by_lr.groups)) if accuracy else math.nan
        rows.append(
            {
                "combination": combination,
                "budget": mark,
                "lr_at_budget": at_mark,
                "lr_tuned": chosen.get(combination, math.nan),
            }
        )
    frame = pd.DataFrame(rows, columns=["combination", "budget", "lr_at_budget", "lr_tuned"])
    frame["same_rate"] = np.isclose(frame["lr_at_budget"], frame["lr_tuned"], rtol=1e-9)
    return frame


def claims_by_budget(claims, alpha, runs, histories, factors, findings, own=None, looks=None):
    """`findings` (the claims judged at each study's whole budget) and the same claims judged
    on the runs as each budget mark left them: one row per claim, level, protocol and budget
    (the epoch; the whole budget: the cells' `epochs`). `same_rate`: at how many of the
    study's `cells` tuning at that budget chooses the rate tuned for the whole one."""
    frames = []
    for study in factors:
        mine = [c for c in claims if c["study"] == study]
        table, history = runs.get(study), histories.get(study)
        if not mine or table is None or table.empty:
            continue
        cells = table["combination"].nunique()
        whole = findings[findings["study"] == study]
        frames.append(whole.assign(budget=int(table["epochs"].max()), same_rate=cells, cells=cells))
        for mark in marks(history):
            at_mark = runs_at(table, history, mark)
            judged, _ = evaluate_claims(
                mine,
                alpha,
                {study: at_mark},
                {study: factors[study]},
                {study: tuning_table(at_mark, factors[study])},
                own,
                looks,
            )
            same = int(rate_at(table, history, mark)["same_rate"].sum())
            frames.append(judged.assign(budget=mark, same_rate=same, cells=cells))
    if not frames:
        return pd.DataFrame(columns=BUDGET_COLUMNS)
    # In the claims file's order (the findings'), each claim's budgets in turn.
    out = pd.concat(frames, ignore_index=True)[BUDGET_COLUMNS]
    first = {c: i for i, c in enumerate(dict.fromkeys(out["id"]))}
    out = out.assign(_claim=out["id"].map(first))
    out = out.sort_values(["_claim", "budget"], kind="stable").drop(columns="_claim")
    return out.reset_index(drop=True)


def budget_tables(
    *,
    claims_path,
    tables: dict,
    factors: dict,
    own,
    findings_path,
    budgets_path,
    convergence_path,
    looks=None,
) -> None:
    """The workflow's entry point: `convergence.csv` (every study's evaluated cells) and
    `budgets.csv` (the claims at every budget). `tables` maps `<study>_runs` and
    `<study>_history` to their CSV files."""
    claims, alpha = load_claims(claims_path)
    # The file's margin (a claim may set its own): the smallest difference that matters.
    margin = yaml.safe_load(Path(claims_path).read_text()).get("margin", DEFAULT_MARGIN)
    runs = {study: read_table(tables[f"{study}_runs"]) for study in factors}
    histories = {study: read_table(tables[f"{study}_history"]) for study in factors}
    convergence = [
        convergence_table(histories[study], factors[study], margin, alpha).assign(study=study)
        for study in factors
    ]
    frame = pd.concat(convergence, ignore_index=True) if convergence else pd.DataFrame()
    write_csv(frame[["study", *[c for c in frame.columns if c != "study"]]], convergence_path)
    findings = read_table(findings_path)
    write_csv(
        claims_by_budget(claims, alpha, runs, histories, factors, findings, own, looks),
        budgets_path,
    )
