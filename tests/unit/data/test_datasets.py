"""The fixed split, the scaling and the prepared tensor file."""

from __future__ import annotations

import numpy as np
import torch

from optreg.data.datasets import (
    DATASETS,
    load_digits,
    load_prepared,
    prepare,
    split_indices,
    standardize,
)


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


# ---------------------------------------------------------------- MNIST-1D
import random  # noqa: E402

import pytest  # noqa: E402

from optreg.data.datasets import (  # noqa: E402
    MNIST1D_ARGS,
    DataError,
    generate_mnist1d,
    global_rngs_preserved,
    sha256_array,
)
from optreg.study.schema import config_schema  # noqa: E402


@pytest.fixture(scope="module")
def mnist1d_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("mnist1d") / "mnist1d.pt"
    return path, prepare("mnist1d", path, split_seed=0, validation_fraction=0.2)


def test_mnist1d_arguments_are_the_packages_and_the_configs_defaults():
    from mnist1d.data import get_dataset_args

    package = get_dataset_args(as_dict=True)
    package.pop("url")  # the set is generated, never downloaded
    assert package == MNIST1D_ARGS
    schema = config_schema()["properties"]["data"]["properties"]["mnist1d"]["properties"]
    assert {k: v["default"] for k, v in schema.items()} == MNIST1D_ARGS


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


def test_mnist1d_generation_leaves_the_global_generators_alone():
    # The legacy global generators are the point here: the package reseeds them.
    random.seed(7)
    np.random.seed(7)  # noqa: NPY002
    expected = random.random(), np.random.rand()  # noqa: NPY002
    random.seed(7)
    np.random.seed(7)  # noqa: NPY002
    generate_mnist1d({"num_samples": 100})
    assert (random.random(), np.random.rand()) == expected  # noqa: NPY002


def test_mnist1d_arguments_change_the_data_and_unknown_ones_are_refused():
    a = generate_mnist1d({"num_samples": 100})
    b = generate_mnist1d({"num_samples": 100, "seed": 1})
    assert a.x_train.shape == (80, 1, 40) and b.generation_args["seed"] == 1
    assert not np.allclose(a.x_train, b.x_train)
    assert generate_mnist1d({"num_samples": 100}).raw_files == a.raw_files  # deterministic
    with pytest.raises(DataError, match="unknown generation arguments.*'sead'"):
        generate_mnist1d({"sead": 1})
