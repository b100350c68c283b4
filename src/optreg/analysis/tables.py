"""Tidy tables built from metrics records: runs, history, per-cell summaries, selection."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pandas as pd

from optreg.analysis.stats import mean_ci, pairwise_comparisons
from optreg.io import atomic_path
from optreg.naming import PROTOCOLS
from optreg.records import read_run
from optreg.study.matrix import MODEL_FACTORS, SETTING_KEYS
from optreg.training.protocol import TUNING_PROTOCOLS

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
    "epochs_to_target",
    "seconds_to_target",
)


RUN_KEYS = ["study", "combination", "phase", "protocol", "seed", "lr"]

# What the summary table says of each cell's problem (`problem_targets`).
PROBLEM_COLUMNS = ["problem", "val_majority_rate", "test_majority_rate", "target_val_accuracy"]


def _setting_columns(record: dict) -> dict:
    settings = record["settings"]
    return {k: settings[k] for k in SETTING_KEYS} | mlp_shape(settings["model"])


def mlp_shape(model: dict) -> dict:
    """An MLP's `depth` (hidden layers) and `width` (units per hidden layer, when all are
    equal), the model factors of optreg.study.validate; empty (missing values) for other models."""
    hidden = model.get("hidden") if model["model"] == "mlp" else None
    if hidden is None:
        return {"depth": None, "width": None}
    return {"depth": len(hidden), "width": hidden[0] if len(set(hidden)) == 1 else None}


def runs_table(records: list[dict]) -> pd.DataFrame:
    """One row per run: phase, protocol, settings, seed, final metrics, weights and cost."""
    rows = []
    for r in records:
        selection = r["selection"] or {}
        rows.append(
            {
                "study": r["study"],
                "combination": r["combination"],
                "phase": r["phase"],
                "protocol": r["protocol"],
                "seed": r["seed"],
                "lr": r["settings"]["lr"],
                **_setting_columns(r),
                "lr_on_grid_edge": selection.get("on_grid_edge"),
                # Rates added past the grid's edge before choosing (optreg.training.protocol).
                "lr_extended": ";".join(f"{x:g}" for x in selection.get("extended", [])),
                "lr_stopped_at_limit": selection.get("stopped_at_limit"),
                # The seeds whose tuning runs chose the rate (optreg.training.protocol).
                "tuning_seeds": ";".join(str(s) for s in selection.get("tuning_seeds", [])),
                **r["final"],
                **{k: v for k, v in r["weights"].items() if k != "near_zero_threshold"},
                "diverged": r["diverged"],
                "diverged_epoch": r["diverged_epoch"],
                "epochs_run": len(r["history"]),
                "wall_time_s": r["wall_time_s"],
                "device": r["provenance"]["device"],
                "torch_threads": r["provenance"]["torch_threads"],
                "stacked_runs": r["provenance"]["stacked_seeds"],
                "settings_hash": r["provenance"]["settings_hash"],
                # The installed packages the cell's own code came from (name==version;...).
                "packages": ";".join(
                    f"{k}=={v}" for k, v in r["provenance"].get("packages", {}).items()
                ),
            }
        )
    table = pd.DataFrame(rows)
    order = ["phase", "combination", "protocol", "lr", "seed"]
    return table.sort_values(order, kind="stable", na_position="first").reset_index(drop=True)


def history_table(records: list[dict]) -> pd.DataFrame:
    """One row per run and epoch: the learning curves."""
    rows = []
    for r in records:
        base = {k: r[k] for k in ("study", "combination", "phase", "protocol", "seed")}
        base["lr"] = r["settings"]["lr"]
        base.update(_setting_columns(r))
        base["stacked_runs"] = r["provenance"]["stacked_seeds"]
        rows.extend({**base, **epoch} for epoch in r["history"])
    columns = [
        *RUN_KEYS[:5],
        "lr",
        *SETTING_KEYS,
        *MODEL_FACTORS,
        "stacked_runs",
        "epoch",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        # At the budget marks and the last epoch only (optreg.settings.Settings.marks).
        "test_loss",
        "test_accuracy",
        "elapsed_s",
    ]
    return pd.DataFrame(rows, columns=columns)


def time_to_target(history: pd.DataFrame, target: float | dict[str, float]) -> pd.DataFrame:
    """Per run: the first epoch whose validation accuracy reaches `target`, and the seconds to it.

    `target` is one accuracy, or one per problem (problem -> accuracy, `problem_targets`).
    Seconds are the job's wall time at that epoch divided by the runs it trained together
    (each run's share of the stacked model); NaN where the target is never reached.
    """
    keys = ["combination", "phase", "protocol", "seed", "lr"]
    if isinstance(target, dict):
        missing = sorted(set(history["problem"]) - set(target))
        if missing:
            raise ValueError(f"no target accuracy for problem(s) {missing}")
        hit = history[history["val_accuracy"] >= history["problem"].map(target)]
    else:
        hit = history[history["val_accuracy"] >= target]
    first = hit.sort_values("epoch").groupby(keys, dropna=False).head(1)
    out = first[keys].copy()
    out["epochs_to_target"] = first["epoch"].astype(float)
    out["seconds_to_target"] = first["elapsed_s"] / first["stacked_runs"]
    return out


def majority_rate(meta: dict, split: str) -> float:
    """The share of the most frequent class in a split of a prepared data set (its metadata,
    `optreg.data.split.describe`): what always predicting that class scores."""
    counts = meta["class_counts"][split]
    return max(counts) / sum(counts)


def target_accuracy(configured: float, majority: float, as_given: bool = False) -> float:
    """The validation accuracy a run of a problem must reach to count as reached: the
    configured target, raised where needed to halfway from the majority-class rate of the
    validation split to perfect accuracy, (1 + majority) / 2, so that always predicting the
    most frequent class never reaches it (breast cancer's validation split is 0.62 benign,
    above the default 0.5): the normalized score 0.5 of `optreg.analysis.aggregates`, with the
    validation split's rate for m. A study's own target (`as_given`) is kept where it lies
    above the majority-class rate, and raised the same way where it does not."""
    configured = float(configured)
    if as_given and configured > majority:
        return configured
    return max(configured, (1 + majority) / 2)


def problem_targets(
    configured: float, datasets: dict[str, str], metas, as_given: bool = False
) -> pd.DataFrame:
    """Per problem (`datasets`: problem -> its data set; `metas`: the data sets' metadata):
    the majority-class rates of its validation and test splits and its target accuracy
    (`target_accuracy`; `as_given`: `configured` is the study's own target)."""
    by_name = {meta["dataset"]: meta for meta in metas}
    rows = []
    for problem, dataset in datasets.items():
        if dataset not in by_name:
            raise ValueError(f"problem {problem!r}: no metadata of its data set {dataset!r}")
        val = majority_rate(by_name[dataset], "val")
        rows.append(
            {
                "problem": problem,
                "val_majority_rate": val,
                "test_majority_rate": majority_rate(by_name[dataset], "test"),
                "target_val_accuracy": target_accuracy(configured, val, as_given),
            }
        )
    return pd.DataFrame(rows, columns=PROBLEM_COLUMNS).set_index("problem")


def _stats(frame: pd.DataFrame, metrics) -> dict:
    out = {}
    for metric in metrics:
        stats = mean_ci(frame[metric].astype(float))
        out.update({f"{metric}_{k}": v for k, v in stats.items() if k != "n"})
    return out


def _seed_set(value) -> set[int]:
    return {int(float(x)) for x in str(value).split(";") if x and x != "nan"}


def tuning_runs(runs: pd.DataFrame, protocol: str = "tuned") -> pd.DataFrame:
    """The tuning runs `protocol` chose its rates from: in each cell, those of the seeds its
    evaluation records name (`tuning_seeds`: the tuning seeds for `tuned` and `small`, the
    retuning seeds for `retuned`). A cell without such records: for `tuned`, all its tuning
    runs; for another protocol, none."""
    tune = runs[runs["phase"] == "tune"]
    chosen = runs[(runs["phase"] == "eval") & (runs["protocol"] == protocol)]
    named = {}
    if "tuning_seeds" in chosen:
        named = {
            c: _seed_set(v)
            for c, v in chosen.groupby("combination")["tuning_seeds"].first().items()
        }
        named = {c: seeds for c, seeds in named.items() if seeds}
    keep = [
        seed in named[c] if c in named else protocol == "tuned"
        for c, seed in zip(tune["combination"], tune["seed"], strict=True)
    ]
    return tune[keep]


def tuning_table(runs: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    """Per tuning protocol (`tuned`; `retuned`, on the retuning seeds), cell and grid rate:
    validation accuracy over that protocol's tuning seeds; the rate it selected."""
    rows = []
    for protocol in TUNING_PROTOCOLS:
        tune = tuning_runs(runs, protocol)
        chosen = runs[(runs["phase"] == "eval") & (runs["protocol"] == protocol)]
        extended = (
            {
                c: {float(x) for x in str(v).split(";") if x and x != "nan"}
                for c, v in chosen.groupby("combination")["lr_extended"].first().items()
            }
            if "lr_extended" in chosen
            else {}
        )
        chosen = chosen.groupby("combination")["lr"].first()
        for (combination, lr), group in tune.groupby(["combination", "lr"], sort=False):
            rows.append(
                {
                    "protocol": protocol,
                    "combination": combination,
                    **{k: group[k].iloc[0] for k in factors},
                    "lr": lr,
                    "seeds": len(group),
                    "n_diverged": int(group["diverged"].sum()),
                    "selected": bool(chosen.get(combination) == lr),
                    # Added past the configured grid's edge, because the best rate lay on it.
                    "extension": any(
                        abs(lr - x) <= 1e-9 * x for x in extended.get(combination, ())
                    ),
                    **_stats(group, ["val_accuracy", "val_loss", "train_loss"]),
                }
            )
    return pd.DataFrame(rows)


def summary_table(
    runs: pd.DataFrame,
    factors: list[str],
    reached: pd.DataFrame,
    problems: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per cell and protocol: the evaluation seeds' metrics (mean, std, 95% t-interval).

    `problems` (`problem_targets`, indexed by problem), when given, adds each cell's
    problem's majority-class rates and target accuracy."""
    keys = ["combination", "protocol", "seed", "lr"]
    evals = runs[runs["phase"] == "eval"].merge(reached.drop(columns="phase"), on=keys, how="left")
    rows = []
    for (combination, protocol), group in evals.groupby(["combination", "protocol"], sort=False):
        edge = group["lr_on_grid_edge"].dropna()
        about = {}
        if problems is not None:
            problem = group["problem"].iloc[0]
            about = {"problem": problem, **problems.loc[problem].to_dict()}
        rows.append(
            {
                "combination": combination,
                **{k: group[k].iloc[0] for k in factors},
                "protocol": protocol,
                "lr": group["lr"].iloc[0],
                "lr_on_grid_edge": bool(edge.iloc[0]) if len(edge) else False,
                "lr_extended": _joined(group, "lr_extended"),
                "seeds": len(group),
                "n_diverged": int(group["diverged"].sum()),
                **about,
                "reached_target": int(group["epochs_to_target"].notna().sum()),
                **_stats(group, SUMMARY_METRICS),
            }
        )
    return pd.DataFrame(rows)


def _joined(group: pd.DataFrame, column: str) -> str:
    values = group[column].dropna() if column in group else []
    return str(values.iloc[0]) if len(values) else ""


def pairs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Paired comparisons of every two cells on the same evaluation seeds, per protocol."""
    frames = []
    for protocol in PROTOCOLS:
        evals = runs[(runs["phase"] == "eval") & (runs["protocol"] == protocol)]
        if evals.empty and frames:
            continue  # a protocol the study's cells do not have (protocol.protocols)
        table = pairwise_comparisons(evals, "combination", "seed", "test_accuracy")
        table.insert(0, "protocol", protocol)
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def write_csv(frame: pd.DataFrame, path) -> None:
    """Write a table atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def read_records(files, run_dirs=(), labels=None) -> list[dict]:
    """Read and validate every metrics file (a bad one fails by name), each run once.

    `files` are the files every study has; `run_dirs` may hold more: the tuning runs of
    rates a job added past the grid's edge (optreg.training.protocol.extend_grid), read too. A run
    found twice (the same extension trained by every evaluation job of a cell) counts once.
    `labels` maps a folder of runs another study trained (optreg.study.matrix.share_runs) to the
    `study`, `combination` and `factors` its records take in this study's tables.
    """
    files = [str(f) for f in files]
    listed = set(files)
    for folder in run_dirs:
        files += sorted(str(f) for f in Path(folder).glob("lr-*.json") if str(f) not in listed)
    relabel = {os.path.normpath(k): v for k, v in (labels or {}).items()}
    records, seen = [], set()
    for f in files:
        record = read_run(f)
        record.update(relabel.get(os.path.normpath(os.path.dirname(f)), {}))
        key = (record["combination"], record["phase"], record["protocol"], record["seed"])
        key += (record["settings"]["lr"],)
        if key not in seen:
            seen.add(key)
            records.append(record)
    return records


def collect_runs(files, runs_path, history_path, run_dirs=(), labels=None) -> pd.DataFrame:
    """Write a study's runs and history tables from its metrics files (`read_records`)."""
    records = read_records(files, run_dirs, labels)
    runs = runs_table(records)
    write_csv(runs, runs_path)
    write_csv(history_table(records), history_path)
    return runs


def as_written(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` as `read_table` reads it back once written: the types a later rule sees."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    buffer.seek(0)
    return read_table(buffer)


def read_table(path) -> pd.DataFrame:
    """Read a table written by this module (only empty cells are missing values)."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def summarize_study(
    *,
    runs_path,
    history_path,
    factors,
    target,
    datasets,
    data_meta,
    tuning_path,
    summary_path,
    pairs_path,
    study_target=None,
) -> None:
    """Tuning table, evaluation summary and paired comparisons of one study.

    `target` is the configured target accuracy (`protocol.target_val_accuracy`), and
    `study_target` the study's own, if it has one; `datasets` maps each problem of the study
    to its data set and `data_meta` are those data sets' metadata files: each problem's
    target is `target_accuracy` of its validation split's majority-class rate."""
    runs = read_table(runs_path)
    history = read_table(history_path)
    metas = [json.loads(Path(p).read_text()) for p in data_meta]
    if study_target is None:
        problems = problem_targets(target, datasets, metas)
    else:
        problems = problem_targets(study_target, datasets, metas, as_given=True)
    evals = history[history["phase"] == "eval"]
    reached = time_to_target(evals, problems["target_val_accuracy"].to_dict())
    write_csv(tuning_table(runs, factors), tuning_path)
    write_csv(summary_table(runs, factors, reached, problems), summary_path)
    write_csv(pairs_table(runs), pairs_path)
