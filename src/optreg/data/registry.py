"""What data sets exist: one table, built-ins and the config's own alike.

Each entry names its loader by import path, so this module imports neither torch nor numpy:
config validation and the workflow read it to know the names, which sets a CNN can take, each
set's input shape and its generation arguments, and only a prepare job imports what an entry
names (`optreg.data.prepare`; a config's own sets, `optreg.data.user`). A built-in data set is
one loader in `optreg.data.sources` and one line in `DATASETS`; a config's `datasets:` section
adds entries of the same kind (`dataset_entries`).

The kind of an entry says how its loader is called and how its samples are split:

- `POOLED`: `loader(**kwargs)` returns (features [n, ...], labels [n]), all samples in one
  pool, cut into stratified train/validation/test parts;
- `OFFICIAL`: `loader(root=, download=, **kwargs)` returns an `Official` (train and test
  images), the official test set kept, validation carved from the official training set;
- `GENERATED`: `loader(generation_args, **kwargs)` returns an `Official` generated from the
  arguments under `data.<generation>` of the config, its own train/test division kept;
- `USER`: a config's own, `loader(**kwargs)` returning pooled `(x, y)` or
  `(x_train, y_train, x_test, y_test)`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

POOLED = "pooled"
OFFICIAL = "official"
GENERATED = "generated"
USER = "user"
KINDS = (POOLED, OFFICIAL, GENERATED, USER)


@dataclass(frozen=True)
class DatasetEntry:
    """A data set: its loader, kind, input shape, generation arguments and whether a CNN can
    take it.

    `loader` is "module:function", called with `kwargs` as its kind says (module docstring).
    `input_shape` is one sample's shape ([features], [channels, length] or [channels, height,
    width]); a dimension given as text is the generation argument that sets it, and None is a
    shape known only once the set is loaded (a config's own). `generation` is the key under
    the config's `data:` that holds a generated set's arguments, `ranges` those of its
    arguments that are [low, high] pairs. `classes` and `rows` (the rows of the pool, or
    of the training and test parts) are known without loading a built-in set; `counts`
    gives a generated set's `rows` and the bytes generating it takes from its arguments.
    """

    name: str
    loader: str
    kind: str
    input_shape: tuple[int | str, ...] | None = None
    cnn: bool = False
    generation: str | None = None
    ranges: tuple[str, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    classes: int | None = None
    rows: tuple[int, ...] | None = None
    counts: Callable[[dict], tuple[tuple[int, ...], int]] | None = None

    def generation_args(self, config: dict) -> dict | None:
        """The config's generation arguments of this set (`data.<generation>`); None for a
        set that is not generated."""
        return None if self.generation is None else config["data"][self.generation]

    def shape(self, generation_args: dict | None = None) -> tuple[int, ...] | None:
        """One sample's shape, a generated set's from its generation arguments; None where
        the entry does not know it."""
        if self.input_shape is None:
            return None
        return tuple(int(generation_args[d]) if isinstance(d, str) else d for d in self.input_shape)

    def shape_setting(self, axis: int) -> str | None:
        """The config key that sets dimension `axis` of the input shape, or None when fixed."""
        dim = (self.input_shape or ())[axis]
        return f"data.{self.generation}.{dim}" if isinstance(dim, str) else None

    def generation_problems(self, config: dict) -> list[str]:
        """A line for each of the config's generation arguments of this set that cannot be
        generated (a [low, high] range given high first)."""
        args = self.generation_args(config)
        problems = []
        for key in self.ranges if args is not None else ():
            low, high = args[key]
            if low > high:
                problems.append(
                    f"data.{self.generation}.{key}: {args[key]} must be [low, high] with "
                    "low <= high"
                )
        return problems

    def size_problems(self, config: dict, max_bytes: int) -> list[str]:
        """A line for each part of this set's split that cannot hold one row of every class
        (a stratified split needs one), and for a generated set larger than `max_bytes`;
        from what the entry knows without loading the set."""
        data, problems = config["data"], []
        rows = self.rows
        if self.counts is not None:
            args = self.generation_args(config)
            rows, need = self.counts(args)
            if need > max_bytes:
                problems.append(
                    f"data.{self.generation}: generating '{self.name}' takes about "
                    f"{_bytes(need)} ({rows[0] + rows[1]:,} samples of "
                    f"{args['final_seq_length']:,} values as 8-byte floats, three copies), "
                    f"more than the limit of {_bytes(max_bytes)}"
                )
                return problems
        if rows is None or self.classes is None:
            return problems
        if len(rows) == 1:  # a pool: the test part, then validation out of the rest
            test_fraction = data["test_fraction"]
            problems += _stratified(self, "data.test_fraction", test_fraction, rows[0], "rows")
            if not problems:
                rest = rows[0] - math.ceil(test_fraction * rows[0])
                problems += _stratified(
                    self,
                    "data.validation_fraction",
                    data["validation_fraction"] / (1 - test_fraction),
                    rest,
                    "rows left after the test part",
                    scale=1 - test_fraction,
                )
            return problems
        if rows[1] < 1:
            problems.append(
                f"data.{self.generation}.train_split: leaves no test samples of the "
                f"{sum(rows):,} of '{self.name}'"
            )
        more = f" (raise data.{self.generation}.num_samples)" if self.generation else ""
        return problems + _stratified(
            self,
            "data.validation_fraction",
            data["validation_fraction"],
            rows[0],
            "training rows",
            more=more,
        )


def training_rows(entry, config: dict) -> int | None:
    """How many rows `entry`'s training split holds under `config`'s split fractions (as
    scikit-learn's stratified split counts them), or None where the entry does not know."""
    data, rows = config["data"], entry.rows
    if entry.counts is not None:
        rows, _ = entry.counts(entry.generation_args(config))
    if rows is None:
        return None
    if len(rows) == 1:  # a pool: the test part, then validation out of the rest
        rest = rows[0] - math.ceil(data["test_fraction"] * rows[0])
        fraction = data["validation_fraction"] / (1 - data["test_fraction"])
        return rest - math.ceil(fraction * rest)
    return rows[0] - math.ceil(data["validation_fraction"] * rows[0])


def _stratified(
    entry, key: str, fraction: float, rows: int, what: str, scale: float = 1.0, more: str = ""
) -> list[str]:
    """A line when `fraction` of `rows` (counted as scikit-learn's stratified split counts
    them) or the rest is fewer rows than `entry` has classes; `scale` converts a fraction
    of `rows` into the value of `key`, `more` is the key that makes more rows."""
    part = math.ceil(fraction * rows)
    if part >= entry.classes and rows - part >= entry.classes:
        return []
    cut = (
        f"{key}: a stratified split of the {rows:,} {what} of '{entry.name}' takes {part:,} of "
        f"them, leaving {rows - part:,}: each part needs a row of each of its "
        f"{entry.classes} classes"
    )
    if rows <= 2 * entry.classes:
        return [f"{cut}, and {rows:,} rows are too few for any fraction{more}"]
    low, high = entry.classes / rows * scale, (1 - entry.classes / rows) * scale
    return [f"{cut}; use {key} between {low:.3g} and {high:.3g}"]


def _bytes(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError  # unreachable


def _mnist1d_counts(args: dict) -> tuple[tuple[int, int], int]:
    """MNIST-1D's training and test samples (the `mnist1d` package's `make_dataset`: whole
    classes of `num_samples // 10`, the first `train_split` of them for training), and the
    bytes it holds while generating (a list of signals, their stack and the scaled copy)."""
    total = args["num_samples"] // 10 * 10
    train = int(total * args["train_split"])
    length = max(args["final_seq_length"], args["template_len"] + args["padding"][1])
    return (train, total - train), 3 * 8 * total * length


_SOURCES = "optreg.data.sources"
DATASETS: MappingProxyType[str, DatasetEntry] = MappingProxyType(
    {
        "digits": DatasetEntry(
            "digits",
            f"{_SOURCES}:load_digits",
            POOLED,
            (1, 8, 8),
            cnn=True,
            classes=10,
            rows=(1797,),
        ),
        "breast_cancer": DatasetEntry(
            "breast_cancer",
            f"{_SOURCES}:load_breast_cancer",
            POOLED,
            (30,),
            classes=2,
            rows=(569,),
        ),
        # Signals of the length its generation arguments ask for.
        "mnist1d": DatasetEntry(
            "mnist1d",
            f"{_SOURCES}:generate_mnist1d",
            GENERATED,
            (1, "final_seq_length"),
            cnn=True,
            generation="mnist1d",
            ranges=("padding",),
            classes=10,
            counts=_mnist1d_counts,
        ),
        "mnist": DatasetEntry(
            "mnist",
            f"{_SOURCES}:load_vision",
            OFFICIAL,
            (1, 28, 28),
            cnn=True,
            kwargs={"name": "mnist"},
            classes=10,
            rows=(60000, 10000),
        ),
        "fashion_mnist": DatasetEntry(
            "fashion_mnist",
            f"{_SOURCES}:load_vision",
            OFFICIAL,
            (1, 28, 28),
            cnn=True,
            kwargs={"name": "fashion_mnist"},
            classes=10,
            rows=(60000, 10000),
        ),
        "cifar10": DatasetEntry(
            "cifar10",
            f"{_SOURCES}:load_vision",
            OFFICIAL,
            (3, 32, 32),
            cnn=True,
            kwargs={"name": "cifar10"},
            classes=10,
            rows=(50000, 10000),
        ),
    }
)


def user_entry(name: str, spec: dict) -> DatasetEntry:
    """The entry of a config's own data set from its `datasets:` item (loader, kwargs).

    Its shape is known once it is loaded, and it may hold images: the model decides what it
    can take.
    """
    return DatasetEntry(name, spec["loader"], USER, cnn=True, kwargs=dict(spec.get("kwargs", {})))


def dataset_entries(config: dict | None = None) -> dict[str, DatasetEntry]:
    """Every data set a config can name: the built-ins, then the config's `datasets:`."""
    entries = dict(DATASETS)
    for name, spec in ((config or {}).get("datasets") or {}).items():
        entries.setdefault(name, user_entry(name, spec))
    return entries


def generation_keys() -> tuple[str, ...]:
    """The keys under the config's `data:` that hold a generated set's arguments."""
    return tuple(e.generation for e in DATASETS.values() if e.generation is not None)
