"""The built-in loaders: MNIST-1D generated offline from its arguments (the torchvision sets
are read from real-format files in test_vision.py)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from optreg.data.errors import DataError
from optreg.data.sources import MNIST1D_ARGS, generate_mnist1d
from optreg.study.schema import config_schema


def test_mnist1d_arguments_are_the_packages_and_the_configs_defaults():
    from mnist1d.data import get_dataset_args

    package = get_dataset_args(as_dict=True)
    package.pop("url")  # the set is generated, never downloaded
    assert package == MNIST1D_ARGS
    schema = config_schema()["properties"]["data"]["properties"]["mnist1d"]["properties"]
    assert {k: v["default"] for k, v in schema.items()} == MNIST1D_ARGS


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
