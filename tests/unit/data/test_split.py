"""The fixed split and the scaling."""

from __future__ import annotations

import numpy as np

from optreg.data.sources import load_digits
from optreg.data.split import split_indices, standardize


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
