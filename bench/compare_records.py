"""Compare two results folders: every metrics record and table, timing and machine aside.

Usage: python bench/compare_records.py A B [--show 10]

A and B are projects (folders holding `results/`) or their `results/` folders. Compared:

- every metrics JSON under `results/studies/`, without its timing and machine fields: the
  record's `wall_time_s`, each history epoch's `elapsed_s`, and its `provenance` but for
  `settings_hash`, `data_sha256` and `stacked_seeds` (what was trained, on what data, in
  stacks of what size);
- the tables `results/findings.csv` and each study's `summary.csv`, `pairs.csv`,
  `tuning.csv` and `runs.csv`, without their timing columns (`seconds_*`, `wall*`,
  `elapsed*`), cell by cell as text.

Prints the counts (files on each side, on one side only, differing) and the first `--show`
differences, field by field; exits with status 1 on any difference, 0 when all are equal.
Made to check that a change of code leaves a study's results as they were: run the study
before and after, and compare.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

# Provenance fields that say what was computed; the others say where, when and with what.
KEPT_PROVENANCE = ("settings_hash", "data_sha256", "stacked_seeds")
TABLES = ("summary.csv", "pairs.csv", "tuning.csv", "runs.csv")
TIMING_COLUMNS = ("seconds_", "wall", "elapsed")


def untimed(record: dict) -> dict:
    """A metrics record without its timings (`wall_time_s`, each epoch's `elapsed_s`)."""
    out = {k: v for k, v in record.items() if k != "wall_time_s"}
    if isinstance(out.get("history"), list):
        out["history"] = [
            {k: v for k, v in epoch.items() if k != "elapsed_s"}
            if isinstance(epoch, dict)
            else epoch
            for epoch in out["history"]
        ]
    return out


def comparable(record: dict) -> dict:
    """What two runs of the same study must share: the record untimed, its provenance
    reduced to `KEPT_PROVENANCE`."""
    out = untimed(record)
    if isinstance(out.get("provenance"), dict):
        out["provenance"] = {k: v for k, v in out["provenance"].items() if k in KEPT_PROVENANCE}
    return out


def differences(a, b, path: str = "") -> list[str]:
    """Where two JSON values differ: one line per differing leaf, named by its path."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in [*a, *(k for k in b if k not in a)]:
            where = f"{path}.{key}" if path else str(key)
            if key not in b:
                found.append(f"{where}: only in A")
            elif key not in a:
                found.append(f"{where}: only in B")
            else:
                found += differences(a[key], b[key], where)
        return found
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{path}[{i}]")
        ]
    if a == b and type(a) is type(b):
        return []
    return [f"{path or '(the value)'}: {json.dumps(a)} != {json.dumps(b)}"]


def results_folder(folder: Path) -> Path:
    """`folder`'s results: `folder/results` where there is one, else `folder` itself."""
    return folder / "results" if (folder / "results").is_dir() else folder


def table(path: Path) -> list[dict]:
    """A CSV table's rows without its timing columns."""
    with open(path, newline="") as fh:
        return [
            {k: v for k, v in row.items() if not k.startswith(TIMING_COLUMNS)}
            for row in csv.DictReader(fh)
        ]


def table_differences(a: Path, b: Path) -> list[str]:
    rows_a, rows_b = table(a), table(b)
    found = []
    if rows_a and rows_b and list(rows_a[0]) != list(rows_b[0]):
        found.append(f"columns: {list(rows_a[0])} != {list(rows_b[0])}")
    if len(rows_a) != len(rows_b):
        found.append(f"rows: {len(rows_a)} != {len(rows_b)}")
    for i, (x, y) in enumerate(zip(rows_a, rows_b, strict=False)):
        found += [f"row {i + 1} {d}" for d in differences(x, y)]
    return found


def compare(a: Path, b: Path, show: int = 10) -> int:
    """Print how the results in `a` and `b` differ; the number of differing files (those
    on one side only included)."""
    a, b = results_folder(a), results_folder(b)
    shown: list[str] = []

    def report(name: str, found: list[str]) -> None:
        for line in found:
            if len(shown) < show:
                shown.append(f"{name}: {line}")

    def side_by_side(kind: str, files_a: set, files_b: set, diff) -> int:
        only_a, only_b = sorted(files_a - files_b), sorted(files_b - files_a)
        differing = 0
        for name in sorted(files_a & files_b):
            found = diff(a / name, b / name)
            if found:
                differing += 1
                report(str(name), found)
        for name in only_a:
            report(str(name), ["only in A"])
        for name in only_b:
            report(str(name), ["only in B"])
        print(
            f"{kind}: {len(files_a)} in A, {len(files_b)} in B, {len(only_a)} only in A, "
            f"{len(only_b)} only in B, {differing} differing"
        )
        return differing + len(only_a) + len(only_b)

    def records(folder: Path) -> set:
        return {p.relative_to(folder) for p in folder.glob("studies/**/*.json")}

    def tables(folder: Path) -> set:
        found = {Path("findings.csv")} if (folder / "findings.csv").exists() else set()
        for name in TABLES:
            found |= {p.relative_to(folder) for p in folder.glob(f"studies/*/{name}")}
        return found

    def record_differences(x: Path, y: Path) -> list[str]:
        return differences(
            comparable(json.loads(x.read_text())), comparable(json.loads(y.read_text()))
        )

    differing = side_by_side("records", records(a), records(b), record_differences)
    differing += side_by_side("tables", tables(a), tables(b), table_differences)
    if shown:
        print(f"first differences ({len(shown)} shown):")
        for line in shown:
            print(f"  {line}")
    print("identical" if differing == 0 else f"DIFFERENT: {differing} file(s)")
    return differing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--show", type=int, default=10, help="differences printed at most")
    args = parser.parse_args(argv)
    for folder in (args.a, args.b):
        if not (results_folder(folder) / "studies").is_dir():
            parser.error(f"{folder}: no results/studies folder")
    return 1 if compare(args.a, args.b, args.show) else 0


if __name__ == "__main__":
    sys.exit(main())
