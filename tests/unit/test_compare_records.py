"""bench/compare_records.py on two tiny synthetic results folders."""

from __future__ import annotations

import copy
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "compare_records.py"

RECORD = {
    "study": "s",
    "combination": "optimizer-adam",
    "seed": 0,
    "history": [
        {"epoch": 1, "train_loss": 0.5, "val_accuracy": 0.8, "elapsed_s": 0.1},
        {"epoch": 2, "train_loss": 0.4, "val_accuracy": 0.85, "elapsed_s": 0.2},
    ],
    "final": {"val_accuracy": 0.85, "test_accuracy": 0.84},
    "wall_time_s": 0.3,
    "provenance": {
        "host": "a",
        "torch_threads": 1,
        "settings_hash": "abc",
        "data_sha256": "def",
        "stacked_seeds": 2,
    },
}
SUMMARY = [
    {"combination": "optimizer-adam", "test_accuracy_mean": "0.84", "seconds_to_target_mean": "1"}
]
RUNS = [{"combination": "optimizer-adam", "test_accuracy": "0.84", "wall_time_s": "0.3"}]


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def results(folder: Path, record: dict, summary: list[dict], runs: list[dict]) -> Path:
    """A project folder whose results hold one record, a summary, a runs table, findings."""
    study = folder / "results" / "studies" / "s"
    seeds = study / "tune-eval" / "optimizer-adam" / "seeds-0"
    seeds.mkdir(parents=True)
    (seeds / "seed-0.json").write_text(json.dumps(record))
    write_csv(study / "summary.csv", summary)
    write_csv(study / "runs.csv", runs)
    write_csv(folder / "results" / "findings.csv", [{"id": "f1", "verdict": "supported"}])
    return folder


def compare(a: Path, b: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(a), str(b)], capture_output=True, text=True
    )


def test_folders_equal_but_for_timing_and_machine_are_identical(tmp_path):
    other = copy.deepcopy(RECORD)
    other["wall_time_s"] = 9.0
    for epoch in other["history"]:
        epoch["elapsed_s"] *= 7
    other["provenance"] |= {"host": "b", "torch_threads": 8}
    a = results(tmp_path / "a", RECORD, SUMMARY, RUNS)
    b = results(
        tmp_path / "b",
        other,
        [SUMMARY[0] | {"seconds_to_target_mean": "5"}],
        [RUNS[0] | {"wall_time_s": "2.5"}],
    )
    proc = compare(a, b)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "records: 1 in A, 1 in B, 0 only in A, 0 only in B, 0 differing" in proc.stdout
    assert "tables: 3 in A, 3 in B" in proc.stdout
    assert proc.stdout.rstrip().endswith("identical")
    # A results folder itself works as well as the project holding it.
    assert compare(a / "results", b).returncode == 0


def test_one_accuracy_apart_is_a_difference_named_by_file_and_field(tmp_path):
    other = copy.deepcopy(RECORD)
    other["final"]["val_accuracy"] = 0.86
    a = results(tmp_path / "a", RECORD, SUMMARY, RUNS)
    b = results(tmp_path / "b", other, SUMMARY, RUNS)
    proc = compare(a, b)
    assert proc.returncode == 1
    assert "records: 1 in A, 1 in B, 0 only in A, 0 only in B, 1 differing" in proc.stdout
    assert "seed-0.json: final.val_accuracy: 0.85 != 0.86" in proc.stdout
    assert "DIFFERENT: 1 file(s)" in proc.stdout


@pytest.mark.parametrize(
    "change",
    [
        lambda r, s, n: s[0].update(test_accuracy_mean="0.85"),  # a table
        lambda r, s, n: r["provenance"].update(settings_hash="xyz"),  # what was trained
        lambda r, s, n: r["history"][0].update(train_loss=0.51),  # an epoch
        lambda r, s, n: n.append(dict(n[0])),  # a row more
    ],
    ids=["summary", "settings_hash", "history", "runs-rows"],
)
def test_what_a_study_computed_is_compared(tmp_path, change):
    record, summary, runs = copy.deepcopy(RECORD), copy.deepcopy(SUMMARY), copy.deepcopy(RUNS)
    change(record, summary, runs)
    a = results(tmp_path / "a", RECORD, SUMMARY, RUNS)
    b = results(tmp_path / "b", record, summary, runs)
    assert compare(a, b).returncode == 1


def test_a_record_on_one_side_only_is_a_difference(tmp_path):
    a = results(tmp_path / "a", RECORD, SUMMARY, RUNS)
    b = results(tmp_path / "b", RECORD, SUMMARY, RUNS)
    extra = b / "results" / "studies" / "s" / "tune-eval" / "optimizer-adam" / "seeds-0"
    (extra / "seed-1.json").write_text(json.dumps(RECORD))
    proc = compare(a, b)
    assert proc.returncode == 1
    assert "0 only in A, 1 only in B" in proc.stdout
    assert "seed-1.json: only in B" in proc.stdout
