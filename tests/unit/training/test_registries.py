"""The optimizer and model registries: what the schema, the matrix and the builders know.

A built-in optimizer is one class and one entry in `OPTIMIZERS`: these tests add one the
way a newcomer would (docs/extending.md, "A built-in optimizer") and follow it from the
config to a trained run, with no other file touched.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import settings

from optreg.study.matrix import cells
from optreg.study.schema import config_schema
from optreg.study.validate import validate_config
from optreg.training import registry
from optreg.training.loop import train_runs
from optreg.training.models import StackedMLP, build_model
from optreg.training.optimizers import SGD, Optimizer, build_optimizer


class SignSGD(Optimizer):
    """p -= lr * sign(g): a rule of one line, the newcomer's built-in."""

    def update(self, params, grads, rates):
        torch._foreach_addcmul_(params, torch._foreach_sign(grads), rates, value=-1)


@pytest.fixture
def with_signsgd(monkeypatch):
    """SignSGD entered in the registry, as one line in registry.py would enter it."""
    entry = registry.OptimizerEntry("signsgd", f"{__name__}:SignSGD", 0.003)
    monkeypatch.setitem(registry.OPTIMIZERS, "signsgd", entry)
    config_schema.cache_clear()  # the schema's enums are read from the registry once
    yield entry
    monkeypatch.undo()
    config_schema.cache_clear()


def test_the_schema_names_exactly_the_registered_optimizers_and_models():
    schema = config_schema()
    assert schema["$defs"]["optimizer"]["enum"] == list(registry.OPTIMIZERS)
    problem = schema["properties"]["problems"]["additionalProperties"]["properties"]
    assert problem["model"]["enum"] == list(registry.MODELS)
    rates = schema["properties"]["protocol"]["properties"]["default_lr"]["properties"]
    assert {name: rate["default"] for name, rate in rates.items()} == {
        name: entry.default_lr for name, entry in registry.OPTIMIZERS.items()
    }


def test_a_config_without_default_rates_takes_the_registrys(smoke_config):
    smoke_config["protocol"].pop("default_lr")
    config = validate_config(smoke_config)
    assert config["protocol"]["default_lr"] == {
        name: entry.default_lr for name, entry in registry.OPTIMIZERS.items()
    }


def test_a_new_built_in_optimizer_is_one_class_and_one_registry_entry(
    smoke_config, digits, with_signsgd
):
    study = next(iter(smoke_config["studies"].values()))
    study["factors"]["optimizer"] = ["adam", "signsgd"]
    config = validate_config(smoke_config)  # the name is valid, its default rate filled in
    assert config["protocol"]["default_lr"]["signsgd"] == 0.003
    mine = [c for c in cells(config) if c.settings.optimizer == "signsgd"]
    assert mine and all(c.default_lr == 0.003 for c in mine)
    assert "optimizer_spec" not in mine[0].settings  # a built-in: nothing of the user's
    optimizer = build_optimizer(settings(optimizer="signsgd"), [torch.zeros(2, 3)], 0.1)
    assert isinstance(optimizer, SignSGD)
    (result,) = train_runs(digits, settings(optimizer="signsgd", epochs=2), [0.01], [0], "cpu")
    assert not result["diverged"] and math.isfinite(result["final"]["test_accuracy"])
    assert result["final"]["test_accuracy"] > 0.5  # it trains: chance is 0.1


def test_every_entry_names_a_class_or_builder_that_exists():
    for entry in registry.OPTIMIZERS.values():
        optimizer = build_optimizer(settings(optimizer=entry.name), [torch.zeros(2, 3)], 0.1)
        assert isinstance(optimizer, Optimizer)
    assert isinstance(build_optimizer(settings(optimizer="momentum"), [torch.zeros(1)], 1), SGD)
    meta = {"n_features": 64, "n_classes": 10, "input_shape": [1, 8, 8]}
    for name in registry.MODELS:
        spec = {"model": name, "hidden": [4], "channels": [2]}
        assert build_model(spec, meta, "relu", [0, 1]).stack == 2
    assert isinstance(build_model({"model": "mlp", "hidden": [4]}, meta, "relu", [0]), StackedMLP)


def test_an_unknown_model_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown model 'rnn'; known: mlp, cnn"):
        build_model({"model": "rnn"}, {}, "relu", [0])
