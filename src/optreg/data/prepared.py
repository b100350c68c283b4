"""The prepared file: writing it, its content's fingerprint, the metadata beside it, and
loading it.

Each data set is prepared once (`optreg.data.prepare`, `optreg.data.user`) as tensors in the
dtype training uses, with its metadata and fingerprint in a JSON file beside it; every train
job loads that file with torch only (`load_verified`), checked against the fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch

from optreg.data.errors import DataError
from optreg.io import atomic_path, canonical_hash, write_json

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def write_prepared(
    payload: dict, out_path: str | os.PathLike, expected_shape: tuple[int, ...] | None
) -> dict:
    """Write a data set's prepared content atomically and its metadata beside it
    (`meta_path`); return the metadata, with the content's fingerprint (`sha256`).

    A sample shape other than `expected_shape` (its registry entry's; None: not known
    before loading) is refused before anything is written.
    """
    meta = payload["meta"]
    shape = tuple(meta["input_shape"])
    if expected_shape is not None and shape != tuple(expected_shape):
        # Config validation checks models against the entries before any job: keep them true.
        raise DataError(
            f"{meta['dataset']}: samples have shape {shape}, but its entry in "
            f"optreg.data.registry says {tuple(expected_shape)}; correct the entry"
        )
    with atomic_path(out_path) as tmp:
        torch.save(payload, tmp)
    meta = {**meta, "sha256": fingerprint(payload)}
    # Beside the tensor file, for every reader: train jobs check the file against it.
    write_json(meta_path(out_path), meta)
    return meta


def meta_path(path: str | os.PathLike) -> Path:
    """The metadata (and fingerprint) file `prepare` writes beside a prepared file."""
    return Path(path).with_suffix(".json")


def fingerprint(payload: dict) -> str:
    """SHA-256 of a prepared dataset's content: every tensor's dtype, shape and bytes, and the
    metadata. (The file's own bytes are no fingerprint: torch.save stamps each file with a
    random serialization id.)"""
    digest = hashlib.sha256(canonical_hash(payload["meta"]).encode())
    for key in sorted(k for k in payload if k != "meta"):
        tensor = payload[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        # A view of the bytes, not a copy: a memory-mapped file is hashed page by page.
        digest.update(memoryview(tensor.numpy()).cast("B"))
    return digest.hexdigest()


@dataclass
class Prepared:
    """A prepared dataset: tensors on the training device, or, when they do not fit it,
    memory-mapped from the prepared file on the CPU (`streamed`: moved one batch at a time)."""

    x: dict[str, torch.Tensor]
    y: dict[str, torch.Tensor]
    meta: dict
    sha256: str
    streamed: bool = False

    @property
    def n_features(self) -> int:
        return self.meta["n_features"]

    @property
    def n_classes(self) -> int:
        return self.meta["n_classes"]


# Share of a GPU's free memory the splits may take; the rest is left to the stacked models'
# activations, which for a CNN on CIFAR-10 are the larger part.
DEVICE_SHARE = 0.5


def fits_device(nbytes: int, device: torch.device, free_bytes: int | None = None) -> bool:
    """Whether `nbytes` of data should be copied to `device` (always on the CPU, where the
    memory-mapped file is paged in and out by the operating system)."""
    if device.type == "cpu":
        return True
    if free_bytes is None:
        free_bytes = torch.cuda.mem_get_info(device)[0]
    return nbytes <= DEVICE_SHARE * free_bytes


def load_prepared(
    path: str | os.PathLike, device: str | torch.device = "cpu", free_bytes: int | None = None
) -> Prepared:
    """Load a tensor file written by `prepare` (weights_only: no code runs on load).

    The file is memory-mapped, so nothing is read before it is used. The splits are copied
    to `device` when they fit it (`fits_device`; `free_bytes` overrides the measured free
    memory); otherwise they stay memory-mapped on the CPU and training streams batches.
    """
    device = torch.device(device)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise DataError(
            f"{path}: not a readable prepared data file ({exc}); it is truncated or corrupt: "
            "rerun with --forcerun prepare_data"
        ) from exc
    tensors = [payload[f"{p}_{k}"] for p in ("x", "y") for k in SPLITS]
    nbytes = sum(t.numel() * t.element_size() for t in tensors)
    on_device = fits_device(nbytes, device, free_bytes)
    target = device if on_device else torch.device("cpu")
    if not on_device:
        log.info(
            "%s: %.2f GB of data do not fit %s; streaming batches from the memory-mapped file",
            path,
            nbytes / 1e9,
            device,
        )
    return Prepared(
        x={k: payload[f"x_{k}"].to(target) for k in SPLITS},
        y={k: payload[f"y_{k}"].to(target) for k in SPLITS},
        meta=payload["meta"],
        sha256=fingerprint(payload),
        streamed=not on_device,
    )


def load_verified(
    path: str | os.PathLike, device: str | torch.device = "cpu", free_bytes: int | None = None
) -> Prepared:
    """`load_prepared`, then check the content against the fingerprint that prepare_data
    recorded beside the file (`<name>.json`): a prepared file changed since then (a copy
    gone wrong, a disk error, an edit) stops the job instead of training on it."""
    recorded_in = meta_path(path)
    try:
        recorded = json.loads(recorded_in.read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{recorded_in}: the fingerprint of {path} cannot be read ({exc}); "
            "rerun with --forcerun prepare_data"
        ) from exc
    data = load_prepared(path, device, free_bytes)
    if data.sha256 != recorded:
        raise DataError(
            f"{path}: its content differs from the fingerprint prepare_data recorded in "
            f"{recorded_in}; the file changed after it was prepared: rerun with "
            "--forcerun prepare_data"
        )
    return data


def train_subset(data: Prepared, size: int | None, seed: int) -> Prepared:
    """`data` with its training split cut to `size` samples (None: as it is): a stratified
    subset, each class keeping its share (largest remainders), drawn by `seed`; validation
    and test unchanged. The same `size` and `seed` give the same subset, so every run of a
    cell, and every cell of a problem, trains on the same samples."""
    if size is None:
        return data
    y = data.y["train"]
    n = len(y)
    if size > n:
        raise DataError(
            f"{data.meta['dataset']}: train_size {size} is more than the {n} samples of its "
            "training split"
        )
    if size == n:
        return data
    generator = torch.Generator().manual_seed(seed)
    labels = y.cpu()
    classes, counts = labels.unique(return_counts=True)
    quota = counts.double() * size / n
    take = quota.floor().long()
    remainders = (quota - take).tolist()
    for index in sorted(range(len(classes)), key=lambda i: (-remainders[i], i))[
        : size - int(take.sum())
    ]:
        take[index] += 1
    chosen = []
    for label, k in zip(classes.tolist(), take.tolist(), strict=True):
        members = (labels == label).nonzero().flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:k]])
    index = torch.cat(chosen).sort().values.to(y.device)
    return Prepared(
        x={**data.x, "train": data.x["train"].index_select(0, index.to(data.x["train"].device))},
        y={**data.y, "train": y.index_select(0, index)},
        meta={**data.meta, "train_size": size},
        sha256=data.sha256,
        streamed=data.streamed,
    )
