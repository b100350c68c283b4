"""What the figures share: the canonical order of factor values, from where it is defined."""

from __future__ import annotations

import yaml

from optreg.report.figures.style import KNOWN_ORDER, levels, palette
from optreg.study.schema import config_schema
from optreg.training.registry import OPTIMIZERS


def test_known_order_is_that_of_the_registries_and_the_schema(root):
    enums = config_schema()["$defs"]
    assert KNOWN_ORDER["optimizer"] == tuple(OPTIMIZERS)
    assert KNOWN_ORDER["activation"] == tuple(enums["activation"]["enum"])
    assert KNOWN_ORDER["penalty"] == tuple(enums["penalty"]["enum"])
    default = yaml.safe_load((root / "config" / "config.yaml").read_text())
    assert KNOWN_ORDER["problem"] == tuple(default["problems"])


def test_known_values_come_first_in_their_order_then_the_others_sorted():
    assert levels(["adam", "lion", "sgd", "adabelief"], "optimizer") == [
        "sgd",
        "adam",
        "adabelief",
        "lion",
    ]
    assert levels(["adam", "sgd"], "optimizer", {"optimizer": ["adam", "sgd"]}) == ["adam", "sgd"]
    # A built-in keeps its colour whatever else a study compares.
    assert palette(["adam"], "optimizer")["adam"] == palette(["sgd", "adam"], "optimizer")["adam"]
