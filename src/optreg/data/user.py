"""A config's own data sets: what their loader must return, and how its arrays are split,
scaled, fingerprinted and stored like the built-in sets (see `optreg.extensions`).

Each is loaded through its registry entry (`optreg.data.registry.user_entry`). Apart from
`optreg.data.prepare`, which the built-in sets' prepare jobs import: editing this module
reprepares only the config's own sets.
"""

from __future__ import annotations

import os

import numpy as np

from optreg.data.prepared import write_prepared
from optreg.data.registry import DatasetEntry, user_entry
from optreg.data.split import (
    describe,
    flat_float32,
    official_parts,
    pooled_payload,
    standardize,
    tensors,
)
from optreg.extensions import ExtensionError, load


def _as_arrays(name: str, loaded) -> tuple:
    if not isinstance(loaded, tuple | list) or len(loaded) not in (2, 4):
        raise ExtensionError(
            f"dataset {name!r}: the loader must return (x, y) or (x_train, y_train, x_test, "
            f"y_test), got {type(loaded).__name__}"
        )
    arrays = [np.asarray(a) for a in loaded]
    for x, y in zip(arrays[::2], arrays[1::2], strict=True):
        if len(x) != len(y) or len(y) == 0 or y.ndim != 1:
            raise ExtensionError(
                f"dataset {name!r}: features {x.shape} and labels {y.shape} must have the "
                "same, non-zero number of rows, labels one per row"
            )
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise ExtensionError(f"dataset {name!r}: labels must be integers 0..classes-1")
        if not np.isfinite(x.astype(np.float64)).all():
            raise ExtensionError(f"dataset {name!r}: features hold NaN or infinite values")
    return tuple(arrays)


def prepare_user_dataset(
    name: str,
    spec: dict,
    out_path: str | os.PathLike,
    split_seed: int = 0,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
) -> dict:
    """Load a user data set (`spec`: its config entry, loader and kwargs), split and scale it
    like the built-in ones, write its tensor file atomically and its metadata beside it,
    return the metadata (with `sha256`)."""
    entry = user_entry(name, spec)
    loaded = load(entry.loader)(**entry.kwargs)
    payload = user_payload(entry, loaded, split_seed, validation_fraction, test_fraction)
    return write_prepared(payload, out_path, entry.shape())


def user_payload(
    entry: DatasetEntry,
    loaded,
    split_seed: int,
    validation_fraction: float,
    test_fraction: float,
) -> dict:
    """The prepared content of what a user's loader returned (`loaded`), checked.

    Pooled `(x, y)`: stratified train/val/test parts; `(x_train, y_train, x_test, y_test)`:
    the test part kept, validation carved from the training part. Both standardized with
    the train split's per-feature statistics.
    """
    arrays = _as_arrays(entry.name, loaded)
    arrays = [
        a.astype(np.float64) if i % 2 == 0 else a.astype(np.int64) for i, a in enumerate(arrays)
    ]
    if len(arrays) == 2:
        payload = pooled_payload(
            entry.name, *arrays, split_seed, validation_fraction, test_fraction
        )
        payload["meta"]["index"] = "rows of the data set as its loader returns them"
    else:
        payload = _official_table_payload(entry.name, *arrays, split_seed, validation_fraction)
    payload["meta"]["source"] = f"loader {entry.loader} with {entry.kwargs}"
    return payload


def _official_table_payload(
    name, x_train, y_train, x_test, y_test, split_seed, validation_fraction
):
    idx, xs, ys = official_parts(x_train, y_train, x_test, y_test, split_seed, validation_fraction)
    xs = standardize(xs)
    meta = {
        **describe(name, ys, idx, x_train.shape[1:], split_seed, validation_fraction),
        "test_fraction": None,
        "split": (
            "official: test is the loader's test part; validation is a stratified "
            f"{validation_fraction:g} of its training part drawn with the split seed"
        ),
        "index": "train, val: rows of the loader's training part; test: of its test part",
        "scaling": "standardized with the train split's per-feature mean and standard deviation",
    }
    return tensors(meta, flat_float32(xs), ys, idx)
