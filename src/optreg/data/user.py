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
    """The loader's arrays, each pair checked: numeric, finite features and labels of the
    same length, labels the integers 0..classes-1 with every class present (a gap would
    make a model with outputs no label asks for) and at least two classes."""
    if not isinstance(loaded, tuple | list) or len(loaded) not in (2, 4):
        raise ExtensionError(
            f"dataset {name!r}: the loader must return (x, y) or (x_train, y_train, x_test, "
            f"y_test), got {type(loaded).__name__}"
        )
    try:
        arrays = [np.asarray(a) for a in loaded]
    except ValueError as exc:  # ragged rows
        raise ExtensionError(f"dataset {name!r}: the loader's arrays are ragged: {exc}") from None
    for x, y in zip(arrays[::2], arrays[1::2], strict=True):
        if len(x) != len(y) or len(y) == 0 or y.ndim != 1:
            raise ExtensionError(
                f"dataset {name!r}: features {x.shape} and labels {y.shape} must have the "
                "same, non-zero number of rows, labels one per row"
            )
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
            raise ExtensionError(
                f"dataset {name!r}: features must be numbers, got {x.dtype} (such as "
                f"{x.flat[0].item()!r}); encode text or categories as numbers in the loader"
            )
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise ExtensionError(
                f"dataset {name!r}: labels must be integers 0..classes-1, got {y.dtype} "
                f"from {y.min().item()!r} to {y.max().item()!r}"
            )
        if not np.isfinite(x.astype(np.float64)).all():
            raise ExtensionError(f"dataset {name!r}: features hold NaN or infinite values")
    labels = np.unique(np.concatenate(arrays[1::2]))
    if len(labels) < 2:
        raise ExtensionError(
            f"dataset {name!r}: every label is {labels[0]}: one class, whose accuracy is 1.0 "
            "whatever the model learns"
        )
    if labels[-1] + 1 != len(labels):
        missing = sorted(set(range(int(labels[-1]) + 1)) - set(labels.tolist()))
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        raise ExtensionError(
            f"dataset {name!r}: labels run to {labels[-1]} but only {len(labels)} classes "
            f"occur (never {shown}): the model would get {labels[-1] + 1} outputs; number "
            f"the classes 0..{len(labels) - 1}"
        )
    if len(arrays) == 4:
        absent = sorted(set(labels.tolist()) - set(np.unique(arrays[1]).tolist()))
        if absent:
            raise ExtensionError(
                f"dataset {name!r}: classes {absent} occur in the test part only; the "
                "training part must hold every class"
            )
    return tuple(arrays)


def trial(name: str, spec: dict, config: dict) -> tuple[list[str], tuple | None]:
    """Problems with a user data set, found before any job by calling its loader as its
    prepare job will and checking what it returns (`_as_arrays`) and that the config's
    stratified split fits it (`optreg.data.registry`); and, when there are none, one
    sample's shape and the number of classes (what a model must fit)."""
    import dataclasses

    entry = user_entry(name, spec)
    where = f"datasets.{name}.loader"
    try:
        loaded = load(entry.loader)(**entry.kwargs)
    except (Exception, SystemExit) as exc:  # the user's to see, verbatim
        return [f"{where}: {entry.loader} fails: {type(exc).__name__}: {exc}"], None
    try:
        arrays = _as_arrays(name, loaded)
    except ExtensionError as exc:
        return [f"{where}: {exc}"], None
    train = arrays[1]
    classes = int(max(y.max() for y in arrays[1::2])) + 1
    counts = np.bincount(train, minlength=classes)
    if counts.min() < 2:
        return [
            f"{where}: dataset {name!r}: class {int(counts.argmin())} has {counts.min()} "
            f"{'row' if counts.min() == 1 else 'rows'} in the "
            f"{'pool' if len(arrays) == 2 else 'training part'}; a stratified split needs "
            "at least two of each class"
        ], None
    rows = (len(train),) if len(arrays) == 2 else (len(train), len(arrays[3]))
    sized = dataclasses.replace(entry, classes=classes, rows=rows)
    problems = [f"{p} (the loader {entry.loader})" for p in sized.size_problems(config, 0)]
    return problems, (tuple(arrays[0].shape[1:]), classes)


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
