"""User data sets: a loader's arrays split, scaled, fingerprinted and stored like the
built-in sets (see `optreg.extensions`)."""

from __future__ import annotations

import os

import numpy as np
import torch

from optreg.data import datasets as data
from optreg.extensions import ExtensionError, load
from optreg.io import atomic_path, write_json


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
    """Load a user data set (`spec`: loader, kwargs), split and scale it like the built-in
    ones, write its tensor file atomically, return its metadata (with `sha256`).

    Pooled `(x, y)`: stratified train/val/test parts; `(x_train, y_train, x_test, y_test)`:
    the test part kept, validation carved from the training part. Both standardized with
    the train split's per-feature statistics. The metadata is also written beside the file.
    """

    arrays = _as_arrays(name, load(spec["loader"])(**spec["kwargs"]))
    arrays = [
        a.astype(np.float64) if i % 2 == 0 else a.astype(np.int64) for i, a in enumerate(arrays)
    ]
    if len(arrays) == 2:
        payload = data._pooled_payload(
            name, *arrays, split_seed, validation_fraction, test_fraction
        )
        payload["meta"]["index"] = "rows of the data set as its loader returns them"
    else:
        payload = _official_table_payload(name, *arrays, split_seed, validation_fraction)
    payload["meta"]["source"] = f"loader {spec['loader']} with {spec['kwargs']}"
    with atomic_path(out_path) as tmp:
        torch.save(payload, tmp)
    meta = {**payload["meta"], "sha256": data.fingerprint(payload)}
    # Beside the tensor file, as `optreg.data.datasets.prepare` writes it: train jobs check
    # against it.
    write_json(data.meta_path(out_path), meta)
    return meta


def _official_table_payload(
    name, x_train, y_train, x_test, y_test, split_seed, validation_fraction
):
    idx = data.carve_validation(y_train, split_seed, validation_fraction)
    idx["test"] = np.arange(len(y_test))
    xs = {"train": x_train[idx["train"]], "val": x_train[idx["val"]], "test": x_test}
    ys = {"train": y_train[idx["train"]], "val": y_train[idx["val"]], "test": y_test}
    xs = data.standardize(xs)
    meta = {
        **data._describe(name, ys, idx, x_train.shape[1:], split_seed, validation_fraction),
        "test_fraction": None,
        "split": (
            "official: test is the loader's test part; validation is a stratified "
            f"{validation_fraction:g} of its training part drawn with the split seed"
        ),
        "index": "train, val: rows of the loader's training part; test: of its test part",
        "scaling": "standardized with the train split's per-feature mean and standard deviation",
    }
    payload = {"meta": meta}
    for k in data.SPLITS:
        payload[f"x_{k}"] = torch.from_numpy(xs[k].reshape(len(xs[k]), -1)).float()
        payload[f"y_{k}"] = torch.from_numpy(ys[k]).long()
        payload[f"index_{k}"] = torch.from_numpy(idx[k]).long()
    return payload
