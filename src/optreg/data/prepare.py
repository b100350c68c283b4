"""Preparing a built-in data set: its registry entry's loader, the fixed split, the file.

Each built-in set is prepared from its entry in the registry (`optreg.data.registry`), once:
split, scaled, stored as tensors in the dtype training uses, with its metadata and
fingerprint beside it (`optreg.data.prepared`). A config's own sets are prepared the same
way by `optreg.data.user`, kept apart so that editing that module (an input of their prepare
jobs) reruns no built-in set's.
"""

from __future__ import annotations

import os

# The registry names the built-in loaders as text; imported here so that the workflow's
# dependency scan (optreg.deps) counts their module among this rule's inputs.
from optreg.data import registry, sources  # noqa: F401
from optreg.data.prepared import write_prepared
from optreg.data.registry import GENERATED, OFFICIAL, POOLED, DatasetEntry
from optreg.data.split import generated_payload, official_payload, pooled_payload
from optreg.extensions import load


def prepare(
    dataset: str | DatasetEntry,
    out_path: str | os.PathLike,
    split_seed: int = 0,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
    root: str | os.PathLike = "data",
    download: bool = False,
    generation: dict | None = None,
) -> dict:
    """Split and scale a data set, write its tensor file atomically and its metadata beside
    it (`optreg.data.prepared.meta_path`), return the metadata.

    `dataset` is a built-in's name or a registry entry of a built-in kind. `root` and
    `download` concern only the sets with an official test set (read from files);
    `generation` only a generated set (its generation arguments); `test_fraction` only the
    pooled sets (the others keep their own test part). Nothing is written unless the whole
    data set was read and checked, its sample shape against its entry's.
    """
    entry = dataset if isinstance(dataset, DatasetEntry) else builtin_entry(dataset)
    if entry.kind not in (POOLED, OFFICIAL, GENERATED):
        raise ValueError(
            f"dataset {entry.name!r}: prepare() prepares the kinds {POOLED}, {OFFICIAL} and "
            f"{GENERATED}, not {entry.kind!r} (a config's own: optreg.data.user)"
        )
    loader = load(entry.loader)
    if entry.kind == POOLED:
        x, y = loader(**entry.kwargs)
        payload = pooled_payload(entry.name, x, y, split_seed, validation_fraction, test_fraction)
    elif entry.kind == OFFICIAL:
        data = loader(root=root, download=download, **entry.kwargs)
        payload = official_payload(entry.name, data, split_seed, validation_fraction)
    else:
        data = loader(generation, **entry.kwargs)
        payload = generated_payload(entry.name, data, split_seed, validation_fraction)
    # A generated set's shape follows the arguments it was generated with.
    return write_prepared(payload, out_path, entry.shape(payload["meta"].get("generation_args")))


def builtin_entry(name: str) -> DatasetEntry:
    """The registry entry of the built-in data set `name`."""
    builtins = registry.dataset_entries()
    if name not in builtins:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(builtins))}")
    return builtins[name]
