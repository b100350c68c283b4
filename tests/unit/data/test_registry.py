"""The data-set registry: one table, read by config validation, the matrix and `prepare`."""

from __future__ import annotations

import copy
import subprocess
import sys
from types import MappingProxyType

import pytest
import yaml

from optreg.data import registry
from optreg.data.prepare import prepare
from optreg.data.prepared import load_prepared
from optreg.data.registry import (
    DATASETS,
    GENERATED,
    KINDS,
    OFFICIAL,
    POOLED,
    USER,
    DatasetEntry,
    dataset_entries,
    generation_keys,
)
from optreg.extensions import load
from optreg.study.errors import ConfigError
from optreg.study.matrix import cells
from optreg.study.schema import config_schema
from optreg.study.validate import validate_config

BUILTINS = ["digits", "breast_cancer", "mnist1d", "mnist", "fashion_mnist", "cifar10"]


def test_the_registry_and_validation_import_neither_torch_nor_numpy():
    code = (
        "import sys\n"
        "import optreg.data.registry, optreg.data.shapes, optreg.study.validate\n"
        "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_every_builtin_entry_names_a_loader_and_its_kind():
    assert list(DATASETS) == BUILTINS
    kinds = {name: entry.kind for name, entry in DATASETS.items()}
    assert kinds == {
        "digits": POOLED,
        "breast_cancer": POOLED,
        "mnist1d": GENERATED,
        "mnist": OFFICIAL,
        "fashion_mnist": OFFICIAL,
        "cifar10": OFFICIAL,
    }
    data = config_schema()["properties"]["data"]["properties"]
    for name, entry in DATASETS.items():
        assert entry.name == name and entry.kind in KINDS
        assert callable(load(entry.loader)), entry.loader
        # A generated set's arguments are a section of the config's `data:`, its ranges in it.
        assert (entry.generation is not None) == (entry.kind == GENERATED)
        if entry.generation is not None:
            assert set(entry.ranges) <= set(data[entry.generation]["properties"])
    assert generation_keys() == ("mnist1d",)


def test_the_schemas_dataset_enums_come_from_the_registry(root):
    problem = config_schema()["properties"]["problems"]["additionalProperties"]
    assert problem["properties"]["dataset"]["enum"] == BUILTINS
    cnn = problem["then"]["properties"]["dataset"]["enum"]
    assert cnn == ["digits", "mnist1d", "mnist", "fashion_mnist", "cifar10"]
    assert cnn == [name for name, entry in DATASETS.items() if entry.cnn]
    # The schema file itself lists no data set: the registry is the one place.
    shipped = yaml.safe_load((root / "workflow" / "schemas" / "config.schema.yaml").read_text())
    problem = shipped["properties"]["problems"]["additionalProperties"]
    assert "enum" not in problem["properties"]["dataset"]
    assert "enum" not in problem["then"]["properties"]["dataset"]


def test_input_shapes_are_fixed_or_computed_from_the_generation_arguments(smoke_config):
    assert DATASETS["digits"].shape() == (1, 8, 8)
    assert DATASETS["breast_cancer"].shape() == (30,)
    assert DATASETS["cifar10"].shape() == (3, 32, 32)
    config = validate_config({**smoke_config, "data": {"mnist1d": {"final_seq_length": 30}}})
    mnist1d = DATASETS["mnist1d"]
    assert mnist1d.generation_args(config)["final_seq_length"] == 30
    assert mnist1d.shape(mnist1d.generation_args(config)) == (1, 30)
    assert mnist1d.shape_setting(1) == "data.mnist1d.final_seq_length"
    assert mnist1d.shape_setting(0) is None and DATASETS["digits"].shape_setting(1) is None
    assert DATASETS["digits"].generation_args(config) is None


def test_the_configs_own_data_sets_enter_the_same_registry():
    spec = {"loader": "csv_data:load_csv", "kwargs": {"path": "iris.csv"}}
    clash = {"loader": "csv_data:load_csv", "kwargs": {}}
    entries = dataset_entries({"datasets": {"iris": spec, "digits": clash}})
    assert list(entries) == [*BUILTINS, "iris"]
    iris = entries["iris"]
    assert (iris.kind, iris.loader, iris.kwargs) == (USER, "csv_data:load_csv", spec["kwargs"])
    assert iris.cnn and iris.shape() is None and iris.generation_args({}) is None
    # A built-in name stays the built-in (check_config reports the clash).
    assert entries["digits"] is DATASETS["digits"]
    assert dataset_entries() == dict(DATASETS) == dataset_entries({"datasets": {}})


def test_generation_arguments_are_checked_and_reach_only_the_generated_sets_cells(smoke_config):
    config = copy.deepcopy(smoke_config)
    config["problems"]["signal_mlp"] = {"dataset": "mnist1d", "model": "mlp", "hidden": [8]}
    config["studies"]["problems"]["factors"]["problem"].append("signal_mlp")
    config["data"] = {"mnist1d": {"num_samples": 300}}
    config = validate_config(config)
    for cell in cells(config):
        data = cell.settings["data"]
        if data["dataset"] == "mnist1d":
            assert data["mnist1d"] == config["data"]["mnist1d"]
            assert data["mnist1d"]["num_samples"] == 300
        else:
            assert "mnist1d" not in data
        assert "root" not in data and "download" not in data
    assert DATASETS["mnist1d"].generation_problems(config) == []
    config["data"]["mnist1d"]["padding"] = [60, 36]
    assert DATASETS["mnist1d"].generation_problems(config) == [
        "data.mnist1d.padding: [60, 36] must be [low, high] with low <= high"
    ]
    assert DATASETS["digits"].generation_problems(config) == []


@pytest.fixture
def blobs_registered(monkeypatch):
    """A built-in data set added the way docs/extending.md says: one loader (here
    scikit-learn's own, returning pooled features and labels) and one registry entry."""
    entry = DatasetEntry(
        "blobs",
        "sklearn.datasets:make_blobs",
        POOLED,
        (2,),
        kwargs={"n_samples": 150, "centers": 3, "random_state": 0},
    )
    monkeypatch.setattr(registry, "DATASETS", MappingProxyType({**DATASETS, "blobs": entry}))
    config_schema.cache_clear()  # the schema's enums are read from the registry once
    yield entry
    monkeypatch.undo()
    config_schema.cache_clear()


def test_a_new_registry_entry_is_valid_in_a_config_and_prepared(
    blobs_registered, smoke_config, tmp_path
):
    config = copy.deepcopy(smoke_config)
    config["problems"]["blobs_mlp"] = {"dataset": "blobs", "model": "mlp", "hidden": [8]}
    config["studies"]["problems"]["factors"]["problem"].append("blobs_mlp")
    config = validate_config(config)
    assert "blobs" in {c.settings["data"]["dataset"] for c in cells(config)}
    meta = prepare("blobs", tmp_path / "blobs.pt", split_seed=1)
    assert meta["input_shape"] == [2] and sum(meta["sizes"].values()) == 150
    assert meta["class_counts"]["test"] == [10, 10, 10]  # stratified like every pooled set
    assert load_prepared(tmp_path / "blobs.pt").sha256 == meta["sha256"]
    # Its entry says a CNN cannot take it, and validation follows the entry.
    config["problems"]["blobs_mlp"] = {"dataset": "blobs", "model": "cnn", "channels": [4]}
    with pytest.raises(ConfigError, match="problems.blobs_mlp.dataset: 'blobs' is not one of"):
        validate_config(config)


def test_without_the_entry_the_name_is_unknown(smoke_config):
    config = copy.deepcopy(smoke_config)
    config["problems"]["blobs_mlp"] = {"dataset": "blobs", "model": "mlp", "hidden": [8]}
    with pytest.raises(ConfigError, match="problems.blobs_mlp.dataset: 'blobs' is not one of"):
        validate_config(config)
