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
    arguments that are [low, high] pairs.
    """

    name: str
    loader: str
    kind: str
    input_shape: tuple[int | str, ...] | None = None
    cnn: bool = False
    generation: str | None = None
    ranges: tuple[str, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

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


_SOURCES = "optreg.data.sources"
DATASETS: MappingProxyType[str, DatasetEntry] = MappingProxyType(
    {
        "digits": DatasetEntry("digits", f"{_SOURCES}:load_digits", POOLED, (1, 8, 8), cnn=True),
        "breast_cancer": DatasetEntry(
            "breast_cancer", f"{_SOURCES}:load_breast_cancer", POOLED, (30,)
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
        ),
        "mnist": DatasetEntry(
            "mnist",
            f"{_SOURCES}:load_vision",
            OFFICIAL,
            (1, 28, 28),
            cnn=True,
            kwargs={"name": "mnist"},
        ),
        "fashion_mnist": DatasetEntry(
            "fashion_mnist",
            f"{_SOURCES}:load_vision",
            OFFICIAL,
            (1, 28, 28),
            cnn=True,
            kwargs={"name": "fashion_mnist"},
        ),
        "cifar10": DatasetEntry(
            "cifar10",
            f"{_SOURCES}:load_vision",
            OFFICIAL,
            (3, 32, 32),
            cnn=True,
            kwargs={"name": "cifar10"},
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
