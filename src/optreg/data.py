"""Datasets: a registry of loaders, the fixed split, and the prepared tensor file.

Each dataset is prepared once (split, scaled, stored as tensors in the dtype
training uses); every train job then loads that one file with torch only.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .io import atomic_path, canonical_hash

Loader = Callable[[], tuple[np.ndarray, np.ndarray]]
DATASETS: dict[str, Loader] = {}
SPLITS = ("train", "val", "test")


def register(name: str) -> Callable[[Loader], Loader]:
    """Register a loader returning (float features [n, ...], integer labels [n])."""

    def decorator(loader: Loader) -> Loader:
        DATASETS[name] = loader
        return loader

    return decorator


@register("digits")
def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 handwritten digits (1,797 images [1, 8, 8], 10 classes)."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    return bunch.images[:, None].astype(np.float64), bunch.target.astype(np.int64)


@register("breast_cancer")
def load_breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's Wisconsin breast-cancer table (569 rows, 30 features, 2 classes)."""
    from sklearn.datasets import load_breast_cancer as sk_load_breast_cancer

    bunch = sk_load_breast_cancer()
    return bunch.data.astype(np.float64), bunch.target.astype(np.int64)


def split_indices(
    y: np.ndarray, split_seed: int, validation_fraction: float, test_fraction: float
) -> dict[str, np.ndarray]:
    """Stratified, disjoint train/val/test indices, fixed by `split_seed`."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    rest, test = train_test_split(
        index, test_size=test_fraction, stratify=y, random_state=split_seed
    )
    val_share = validation_fraction / (1.0 - test_fraction)
    train, val = train_test_split(
        rest, test_size=val_share, stratify=y[rest], random_state=split_seed
    )
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def standardize(x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Scale every split by the train split's per-feature mean and std (constant: std 1)."""
    mean = x["train"].mean(axis=0)
    std = x["train"].std(axis=0)
    std[std == 0] = 1.0
    return {k: (v - mean) / std for k, v in x.items()}


def prepare(
    name: str,
    out_path: str | os.PathLike,
    split_seed: int = 0,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
) -> dict:
    """Split and scale dataset `name`, write its tensor file atomically, return its metadata."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    x, y = DATASETS[name]()
    idx = split_indices(y, split_seed, validation_fraction, test_fraction)
    xs = standardize({k: x[i] for k, i in idx.items()})
    classes = int(y.max()) + 1
    meta = {
        "dataset": name,
        "split_seed": split_seed,
        "validation_fraction": validation_fraction,
        "test_fraction": test_fraction,
        "n_features": int(np.prod(x.shape[1:])),
        "input_shape": list(x.shape[1:]),
        "n_classes": classes,
        "sizes": {k: len(i) for k, i in idx.items()},
        "class_counts": {k: np.bincount(y[i], minlength=classes).tolist() for k, i in idx.items()},
        "scaling": "standardized with the train split's per-feature mean and standard deviation",
    }
    payload = {"meta": meta}
    for k in SPLITS:
        payload[f"x_{k}"] = torch.from_numpy(xs[k].reshape(len(xs[k]), -1)).float()
        payload[f"y_{k}"] = torch.from_numpy(y[idx[k]]).long()
        payload[f"index_{k}"] = torch.from_numpy(idx[k]).long()
    with atomic_path(out_path) as tmp:
        torch.save(payload, tmp)
    return {**meta, "sha256": fingerprint(payload)}


def fingerprint(payload: dict) -> str:
    """SHA-256 of a prepared dataset's content: every tensor's dtype, shape and bytes, and the
    metadata. (The file's own bytes are no fingerprint: torch.save stamps each file with a
    random serialization id.)"""
    digest = hashlib.sha256(canonical_hash(payload["meta"]).encode())
    for key in sorted(k for k in payload if k != "meta"):
        tensor = payload[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


@dataclass
class Prepared:
    """A prepared dataset held as tensors on one device."""

    x: dict[str, torch.Tensor]
    y: dict[str, torch.Tensor]
    meta: dict
    sha256: str

    @property
    def n_features(self) -> int:
        return self.meta["n_features"]

    @property
    def n_classes(self) -> int:
        return self.meta["n_classes"]


def load_prepared(path: str | os.PathLike, device: str | torch.device = "cpu") -> Prepared:
    """Load a tensor file written by `prepare` (weights_only: no code runs on load)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    return Prepared(
        x={k: payload[f"x_{k}"].to(device) for k in SPLITS},
        y={k: payload[f"y_{k}"].to(device) for k in SPLITS},
        meta=payload["meta"],
        sha256=fingerprint(payload),
    )
