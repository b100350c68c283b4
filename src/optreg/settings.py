"""A cell's settings: everything that decides its runs, as named fields, complete when made.

The study matrix (`optreg.study.matrix.cells`) makes one `Settings` per cell, user
extensions included, and nothing adds to it afterwards: the training code reads its fields
(`settings.epochs`, `settings.model.hidden`), and every run's record holds its record form
(`to_dict()`: the JSON a metrics file keeps under `settings`). It also reads as that record
(a read-only mapping: `settings["data"]["dataset"]`, `{**settings, "epochs": 3}`), which is
what tables, tests and old callers use, and `Settings.of` accepts either form.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any


def _plain(value: Any) -> Any:
    """The JSON form of a field: tuples as lists, mappings copied."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return copy.deepcopy(value)


def _sizes(value) -> tuple[int, ...] | None:
    return None if value is None else tuple(value)


@dataclass(frozen=True)
class ModelSpec:
    """A cell's model: a built-in one by name with its sizes (`hidden` for the MLP;
    `channels`, optional `dense` and `kernel` for the CNN), or the user's `factory` (an
    import path) with its `kwargs` and how its runs stack (`stack`). Unset sizes are None
    and left out of the record."""

    model: str
    hidden: tuple[int, ...] | None = None
    channels: tuple[int, ...] | None = None
    dense: tuple[int, ...] | None = None
    kernel: tuple[int, ...] | None = None
    factory: str | None = None
    kwargs: dict | None = None
    stack: str | None = None

    @classmethod
    def of(cls, spec: ModelSpec | Mapping) -> ModelSpec:
        if isinstance(spec, ModelSpec):
            return spec
        unknown = set(spec) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"model settings have unknown keys {sorted(unknown)}")
        return cls(
            model=spec["model"],
            hidden=_sizes(spec.get("hidden")),
            channels=_sizes(spec.get("channels")),
            dense=_sizes(spec.get("dense")),
            kernel=_sizes(spec.get("kernel")),
            factory=spec.get("factory"),
            kwargs=copy.deepcopy(spec.get("kwargs")),
            stack=spec.get("stack"),
        )

    def to_dict(self) -> dict:
        return {f.name: _plain(v) for f in fields(self) if (v := getattr(self, f.name)) is not None}


@dataclass(frozen=True)
class OptimizerSpec:
    """A user's optimizer (config: optimizers): its class by import path and arguments."""

    target: str
    kwargs: dict

    def to_dict(self) -> dict:
        return {"class": self.target, "kwargs": _plain(self.kwargs)}


@dataclass(frozen=True, eq=True)
class Settings(Mapping):
    """Everything that decides a cell's runs, but the learning rate and the seed.

    `data` is the data set and its split (`dataset`, `split_seed`, `validation_fraction`,
    `test_fraction`), plus a generated set's generation arguments or a user set's `loader`
    and `kwargs`: the keys the data stage defines (`optreg.data`). `optimizer_spec` is set
    for a user's optimizer only.
    """

    problem: str
    optimizer: str
    activation: str
    penalty: str
    strength: float
    momentum: float
    epochs: int
    batch_size: int
    model: ModelSpec
    data: dict
    optimizer_spec: OptimizerSpec | None = None
    # The learning-rate schedule (`optreg.training.schedules`); last, so that it can default.
    schedule: str = "constant"
    # Epochs before the last at which the test split is evaluated too (budget marks): the
    # runs read at a shorter budget.
    marks: tuple[int, ...] = ()

    @classmethod
    def of(cls, settings: Settings | Mapping) -> Settings:
        """`settings` as a Settings: itself, or made from its record form (a metrics file's
        `settings`, which also holds the run's `lr`: that is not a cell setting)."""
        if isinstance(settings, Settings):
            return settings
        spec = settings.get("optimizer_spec")
        return cls(
            problem=settings["problem"],
            optimizer=settings["optimizer"],
            activation=settings["activation"],
            penalty=settings["penalty"],
            strength=float(settings["strength"]),
            momentum=settings["momentum"],
            epochs=settings["epochs"],
            batch_size=settings["batch_size"],
            model=ModelSpec.of(settings["model"]),
            data=copy.deepcopy(dict(settings["data"])),
            optimizer_spec=None if spec is None else OptimizerSpec(spec["class"], spec["kwargs"]),
            schedule=settings.get("schedule", "constant"),
            marks=tuple(settings.get("marks", ())),
        )

    @property
    def dataset(self) -> str:
        return self.data["dataset"]

    def to_dict(self) -> dict:
        """The record form, key for key what a metrics file holds under `settings`."""
        record = {
            f.name: _plain(getattr(self, f.name))
            for f in fields(self)
            if f.name not in ("model", "optimizer_spec", "marks")
        }
        record["model"] = self.model.to_dict()
        # The record's key order: the cell's settings, its model and data, then a user
        # optimizer's spec.
        ordered = {k: record[k] for k in (*SETTING_FIELDS, "model", "data")}
        if self.marks:  # only where set: cells without marks keep their records
            ordered["marks"] = list(self.marks)
        if self.optimizer_spec is not None:
            ordered["optimizer_spec"] = self.optimizer_spec.to_dict()
        return ordered

    # The record form as a read-only mapping.
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    __hash__ = None  # `data` and the specs' arguments are dicts


# The scalar settings, in the order a record lists them (and tables their columns).
SETTING_FIELDS = (
    "problem",
    "optimizer",
    "activation",
    "penalty",
    "strength",
    "momentum",
    "epochs",
    "batch_size",
    "schedule",
)
