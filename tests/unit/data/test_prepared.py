"""The prepared file: what `prepare` writes, loaded back, and its fingerprint."""

from __future__ import annotations

import torch

from optreg.data.prepare import prepare
from optreg.data.prepared import fits_device, load_prepared
from optreg.data.registry import DATASETS

CPU = torch.device("cpu")


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


def test_fits_device_leaves_half_the_free_memory_to_the_models():
    gpu = torch.device("cuda", 0)
    assert fits_device(10**12, CPU)
    assert fits_device(4 * 2**30, gpu, free_bytes=8 * 2**30)
    assert not fits_device(4 * 2**30 + 1, gpu, free_bytes=8 * 2**30)
