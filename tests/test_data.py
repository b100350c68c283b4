"""The fixed split, the scaling and the prepared tensor file."""

from __future__ import annotations

import numpy as np
import torch

from optreg.data import DATASETS, load_digits, load_prepared, prepare, split_indices, standardize


def test_split_is_disjoint_complete_and_stratified():
    _, y = load_digits()
    idx = split_indices(y, split_seed=0, validation_fraction=0.2, test_fraction=0.2)
    joined = np.concatenate(list(idx.values()))
    assert len(joined) == len(y) == len(set(joined.tolist()))
    overall = np.bincount(y) / len(y)
    for part in idx.values():
        share = np.bincount(y[part], minlength=10) / len(part)
        assert np.abs(share - overall).max() < 0.01
    assert abs(len(idx["test"]) / len(y) - 0.2) < 0.01
    assert abs(len(idx["val"]) / len(y) - 0.2) < 0.01


def test_split_depends_on_seed_only():
    _, y = load_digits()
    a = split_indices(y, 0, 0.2, 0.2)
    b = split_indices(y, 0, 0.2, 0.2)
    c = split_indices(y, 1, 0.2, 0.2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])


def test_scaling_uses_train_statistics_only():
    rng = np.random.default_rng(0)
    x = {"train": rng.normal(3, 2, (50, 4)), "val": rng.normal(100, 1, (10, 4))}
    x["train"][:, 3] = 7.0  # constant feature
    out = standardize(x)
    assert np.allclose(out["train"][:, :3].mean(0), 0, atol=1e-12)
    assert np.allclose(out["train"][:, :3].std(0), 1)
    assert np.allclose(out["train"][:, 3], 0)
    # Validation data is shifted by the train mean, not centred on its own.
    assert out["val"][:, 0].mean() > 10


def test_prepared_file_round_trips(tmp_path):
    path = tmp_path / "d.pt"
    meta = prepare("digits", path, split_seed=3)
    data = load_prepared(path)
    assert data.meta["split_seed"] == 3
    assert data.sha256 == meta["sha256"]
    assert data.x["train"].dtype == torch.float32 and data.y["train"].dtype == torch.int64
    assert sum(meta["sizes"].values()) == 1797
    assert data.x["val"].shape == (meta["sizes"]["val"], 64)
    assert "digits" in DATASETS
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file left behind"


def test_fingerprint_is_stable_across_prepares(tmp_path):
    a = prepare("digits", tmp_path / "a.pt", split_seed=0)
    b = prepare("digits", tmp_path / "b.pt", split_seed=0)
    c = prepare("digits", tmp_path / "c.pt", split_seed=1)
    assert a["sha256"] == b["sha256"] == load_prepared(tmp_path / "b.pt").sha256
    assert a["sha256"] != c["sha256"]
