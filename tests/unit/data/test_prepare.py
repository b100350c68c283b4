"""Preparing a data set from its registry entry: each kind's split, and the shape check."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from optreg.data.errors import DataError
from optreg.data.prepare import prepare
from optreg.data.prepared import load_prepared
from optreg.data.registry import DATASETS, user_entry
from optreg.data.sources import MNIST1D_ARGS, global_rngs_preserved, sha256_array


@pytest.fixture(scope="module")
def mnist1d_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("mnist1d") / "mnist1d.pt"
    return path, prepare("mnist1d", path, split_seed=0, validation_fraction=0.2)


def test_mnist1d_keeps_the_official_division_and_carves_a_stratified_validation(mnist1d_file):
    from mnist1d.data import get_dataset_args, make_dataset

    path, meta = mnist1d_file
    data = load_prepared(path)
    with global_rngs_preserved():
        reference = make_dataset(get_dataset_args())  # the package's own call, its defaults
    assert meta["sizes"] == {"train": 3200, "val": 800, "test": 1000}
    assert meta["input_shape"] == [1, 40] and meta["n_classes"] == 10
    # Test is the generator's test part, row for row; train + val are its training part.
    assert np.allclose(data.x["test"].numpy(), reference["x_test"], atol=1e-6)
    assert np.array_equal(data.y["test"].numpy(), reference["y_test"])
    payload = torch.load(path, weights_only=True)
    rows = np.concatenate([payload["index_train"].numpy(), payload["index_val"].numpy()])
    assert sorted(rows.tolist()) == list(range(4000))
    assert np.allclose(data.x["val"].numpy(), reference["x"][payload["index_val"].numpy()], 1e-6)
    overall = np.bincount(reference["y"]) / 4000
    share = np.bincount(data.y["val"].numpy(), minlength=10) / 800
    assert np.abs(share - overall).max() < 0.01
    # The metadata records the arguments and the generated arrays' checksums.
    assert meta["generation_args"] == MNIST1D_ARGS
    assert meta["generated_sha256"]["x_test"] == sha256_array(reference["x_test"])
    assert meta["generated_sha256"]["y_train"] == sha256_array(reference["y"].astype(np.int64))


def test_the_shape_table_is_what_prepare_produces(digits, tmp_path):
    """prepare() refuses a registered data set whose samples disagree with its entry (the
    torchvision sets are prepared, and so checked, in tests/unit/data/test_vision.py)."""
    assert tuple(digits.meta["input_shape"]) == DATASETS["digits"].shape()
    meta = prepare("breast_cancer", tmp_path / "breast_cancer.pt")
    assert tuple(meta["input_shape"]) == DATASETS["breast_cancer"].shape()


def test_a_generated_sets_shape_follows_its_generation_arguments(tmp_path):
    meta = prepare(
        "mnist1d", tmp_path / "m.pt", generation={"num_samples": 200, "final_seq_length": 24}
    )
    assert (
        tuple(meta["input_shape"]) == DATASETS["mnist1d"].shape(meta["generation_args"]) == (1, 24)
    )


def test_a_set_that_disagrees_with_its_entry_is_refused_and_nothing_is_written(tmp_path):
    wrong = dataclasses.replace(DATASETS["breast_cancer"], input_shape=(31,))
    with pytest.raises(
        DataError, match=r"breast_cancer: samples have shape \(30,\), but its entry"
    ):
        prepare(wrong, tmp_path / "b.pt")
    assert not list(tmp_path.iterdir())


def test_an_unknown_name_is_refused_naming_the_known_ones(tmp_path):
    with pytest.raises(KeyError, match="unknown dataset 'imagenet'; known: breast_cancer, cifar10"):
        prepare("imagenet", tmp_path / "i.pt")


def test_a_configs_own_set_is_left_to_its_own_module(tmp_path):
    entry = user_entry("iris", {"loader": "csv_data:load_csv", "kwargs": {}})
    with pytest.raises(ValueError, match="not 'user' \\(a config's own: optreg.data.user\\)"):
        prepare(entry, tmp_path / "iris.pt")
    assert not list(tmp_path.iterdir())
