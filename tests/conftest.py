"""Shared fixtures: the repository layout, the prepared digits file, a small config."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def digits_file(tmp_path_factory) -> Path:
    from optreg.data import prepare

    path = tmp_path_factory.mktemp("data") / "digits.pt"
    prepare("digits", path, split_seed=0)
    return path


@pytest.fixture(scope="session")
def digits(digits_file):
    from optreg.data import load_prepared

    return load_prepared(digits_file)


@pytest.fixture
def smoke_config() -> dict:
    with open(ROOT / "config" / "smoke.yaml") as fh:
        return copy.deepcopy(yaml.safe_load(fh))


def settings(**overrides) -> dict:
    """Full run settings for direct calls to the training code."""
    base = {
        "optimizer": "adam",
        "activation": "relu",
        "lr": 0.01,
        "penalty": "none",
        "strength": 0.0,
        "momentum": 0.9,
        "epochs": 3,
        "batch_size": 64,
        "hidden": [16],
        "dataset": {"name": "digits", "split_seed": 0},
    }
    base.update(overrides)
    return base
