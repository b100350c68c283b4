"""Results checked against what wrote them: the prepared data against the fingerprint
prepare_data recorded, each metrics file against the SHA-256 its train job recorded."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest import settings

from optreg.analysis.tables import collect_runs
from optreg.data.errors import DataError
from optreg.data.prepare import prepare
from optreg.data.prepared import load_verified, meta_path
from optreg.records import MANIFEST, MetricsError, read_run
from optreg.training.job import run_job


@pytest.fixture
def prepared(digits_file, tmp_path):
    """A private copy of the prepared digits file and its metadata."""
    path = tmp_path / "data" / "digits.pt"
    path.parent.mkdir()
    shutil.copy(digits_file, path)
    shutil.copy(meta_path(digits_file), meta_path(path))
    return path


def job(data_path, out_dir) -> dict:
    cfg = {k: v for k, v in settings(epochs=1).items() if k != "lr"}
    return dict(
        data_path=data_path, out_dir=out_dir, study="s", combination="c", factors={},
        settings=cfg, phase="tune", seeds=[0], lr_grid=[0.01, 0.1], default_lr=0.01,
    )  # fmt: skip


def test_prepare_records_the_fingerprint_beside_the_file(tmp_path):
    meta = prepare("digits", tmp_path / "d.pt")
    assert json.loads(meta_path(tmp_path / "d.pt").read_text()) == meta
    assert load_verified(tmp_path / "d.pt").sha256 == meta["sha256"]


def test_a_changed_prepared_file_stops_the_train_job_naming_file_and_fix(prepared, tmp_path):
    payload = torch.load(prepared, weights_only=True)
    payload["x_train"][0, :10] += 1.0  # changed content, same size and format
    torch.save(payload, prepared)
    with pytest.raises(DataError) as err:
        run_job(**job(prepared, tmp_path / "runs"))
    assert str(prepared) in str(err.value) and "--forcerun prepare_data" in str(err.value)
    assert not (tmp_path / "runs").exists()


def test_a_truncated_prepared_file_is_named(prepared):
    data = prepared.read_bytes()
    prepared.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as err:
        load_verified(prepared)
    assert str(prepared) in str(err.value) and "--forcerun prepare_data" in str(err.value)


def test_a_missing_fingerprint_is_named(prepared):
    meta_path(prepared).unlink()
    with pytest.raises(DataError, match="digits.json"):
        load_verified(prepared)


def test_aggregation_names_a_metrics_file_edited_after_training(prepared, tmp_path):
    files = run_job(**job(prepared, tmp_path / "runs"))
    assert (tmp_path / "runs" / MANIFEST).exists()
    collect_runs(files, tmp_path / "runs.csv", tmp_path / "history.csv")  # intact: reads
    record = json.loads(files[1].read_text())
    record["final"]["test_accuracy"] = 0.99  # still a valid record: only the checksum tells
    files[1].write_text(json.dumps(record))
    with pytest.raises(MetricsError) as err:
        collect_runs(files, tmp_path / "runs2.csv", tmp_path / "history2.csv")
    assert str(files[1]) in str(err.value) and "changed after its train job" in str(err.value)
    assert not (tmp_path / "runs2.csv").exists()
    (tmp_path / "runs" / MANIFEST).unlink()
    with pytest.raises(MetricsError, match=f"no {MANIFEST}"):
        read_run(files[0])


def test_runs_read_from_another_studys_folder_take_the_reading_studys_labels(prepared, tmp_path):
    """A cell equal to another study's reads its folder (optreg.study.matrix.share_runs); its rows
    carry the reading study's study and cell id, the rest of each row unchanged."""
    files = run_job(**job(prepared, tmp_path / "runs"))
    own = collect_runs(files, tmp_path / "own.csv", tmp_path / "own_history.csv")
    label = {"study": "other", "combination": "penalty-none", "factors": {"penalty": "none"}}
    shared = collect_runs(
        files,
        tmp_path / "shared.csv",
        tmp_path / "shared_history.csv",
        run_dirs=[tmp_path / "runs"],
        labels={f"{tmp_path}/runs/": label},  # a folder as the workflow may spell it
    )
    assert set(shared["study"]) == {"other"} and set(shared["combination"]) == {"penalty-none"}
    rest = [c for c in own.columns if c not in ("study", "combination")]
    assert shared[rest].equals(own[rest])
    history = (tmp_path / "shared_history.csv").read_text().splitlines()
    assert all(",other,penalty-none," in f",{line}," for line in history[1:])
