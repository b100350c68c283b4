"""Datasets: a registry of loaders, the fixed split, and the prepared tensor file.

Each dataset is prepared once (split, scaled, stored as tensors in the dtype
training uses); every train job then loads that one file with torch only.

Three kinds of dataset are registered. The small scikit-learn sets ship without
a split: they are pooled and cut into stratified train/validation/test parts.
MNIST, Fashion-MNIST and CIFAR-10 come with an official test set, which is
kept as the test split; the validation split is carved from the official
training set. They are read by `torchvision.datasets` from files under a data
root, imported only while preparing, so train jobs never import torchvision.
MNIST-1D is generated (never downloaded) by the `mnist1d` package from its
generation arguments; its own train/test division is kept like an official one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import random
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from optreg.data.shapes import INPUT_SHAPES
from optreg.io import atomic_path, canonical_hash, write_json

log = logging.getLogger(__name__)


SPLITS = ("train", "val", "test")


class DataError(RuntimeError):
    """A dataset that cannot be prepared; the message names the dataset, folder and files."""


@dataclass(frozen=True)
class Dataset:
    """A registered dataset.

    `load()` returns pooled (features, labels) for a set without an official test set;
    `load(root, download)` returns an `Official` for one with it (`official_test`).
    """

    name: str
    load: Callable
    official_test: bool = False


@dataclass
class Official:
    """A dataset with its official train/test division: uint8 images [n, C, H, W] (or, for a
    generated set, float signals [n, C, L] already scaled), and labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    raw_files: dict[str, str] = field(default_factory=dict)  # path under root -> sha256
    generation_args: dict | None = None  # a generated set's arguments (MNIST-1D)


DATASETS: dict[str, Dataset] = {}


def register(name: str, official_test: bool = False) -> Callable[[Callable], Callable]:
    """Register a loader: pooled (float features [n, ...], integer labels [n]) by default,
    an `Official` taking (root, download) when `official_test`."""

    def decorator(loader: Callable) -> Callable:
        DATASETS[name] = Dataset(name, loader, official_test)
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


# ---------------------------------------------------------------- torchvision sets
@dataclass(frozen=True)
class VisionFiles:
    """Where torchvision's class `torchvision_class` reads a dataset: `files` in `folder`
    (relative to the data root), exactly as torchvision names them."""

    torchvision_class: str
    folder: str
    files: tuple[str, ...]


_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


VISION_FILES = {
    "mnist": VisionFiles("MNIST", "MNIST/raw", _IDX_FILES),
    "fashion_mnist": VisionFiles("FashionMNIST", "FashionMNIST/raw", _IDX_FILES),
    "cifar10": VisionFiles(
        "CIFAR10",
        "cifar-10-batches-py",
        (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"),
    ),
}


def missing_files_message(name: str, root: str | os.PathLike, missing) -> str:
    """The error for a dataset whose files are not under the data root (download disabled)."""
    spec = VISION_FILES[name]
    folder = Path(root) / spec.folder
    return (
        f"dataset {name!r}: {len(missing)} of its {len(spec.files)} files are missing in "
        f"{folder}/ (data.root is {str(root)!r}); expected: {', '.join(spec.files)}; "
        f"missing: {', '.join(missing)}. Download is disabled: set data.download: true in "
        "the config to let torchvision fetch them (needs internet access), or copy the files "
        "there (docs/datasets.md)."
    )


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def load_vision(name: str, root: str | os.PathLike, download: bool) -> Official:
    """Read dataset `name` with torchvision from `root`, downloading it first if `download`.

    With download disabled, missing files are reported before torchvision is asked; files
    torchvision cannot read (truncated, corrupt, failing its md5 check) raise a DataError
    that names them.
    """
    spec = VISION_FILES[name]
    folder = Path(root) / spec.folder
    if not download:
        missing = [f for f in spec.files if not (folder / f).is_file()]
        if missing:
            raise DataError(missing_files_message(name, root, missing))
    import torchvision  # deferred: only preparing a vision set needs it
    import torchvision.datasets

    cls = getattr(torchvision.datasets, spec.torchvision_class)
    try:
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=download)
    except Exception as exc:  # torchvision raises many kinds for a bad file
        raise DataError(
            f"dataset {name!r}: torchvision.datasets.{spec.torchvision_class} could not read "
            f"the files in {folder}/ ({', '.join(spec.files)}): {type(exc).__name__}: {exc}. "
            "A file is truncated or corrupt: replace it (or delete the folder and set "
            "data.download: true)."
        ) from exc
    parts = [_images_and_labels(ds, name, folder) for ds in (train, test)]
    return Official(
        *parts[0],
        *parts[1],
        source=f"torchvision {torchvision.__version__}, datasets.{spec.torchvision_class}",
        raw_files={f"{spec.folder}/{f}": sha256_file(folder / f) for f in spec.files},
    )


def _images_and_labels(ds, name: str, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [n, C, H, W] and int64 labels of a torchvision dataset, checked."""
    images = np.asarray(ds.data)
    # MNIST-like sets hold grey [n, H, W], CIFAR holds [n, H, W, C].
    images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    labels = np.asarray(ds.targets, dtype=np.int64)
    if images.dtype != np.uint8 or len(images) != len(labels) or len(labels) == 0:
        raise DataError(
            f"dataset {name!r}: the files in {folder}/ hold {len(images)} images of type "
            f"{images.dtype} but {len(labels)} labels; a file is truncated or corrupt"
        )
    if labels.min() < 0 or labels.max() >= len(ds.classes):
        raise DataError(
            f"dataset {name!r}: labels in {folder}/ outside 0..{len(ds.classes) - 1}; "
            "a file is corrupt"
        )
    return np.ascontiguousarray(images), labels


for _name in VISION_FILES:
    register(_name, official_test=True)(
        lambda root, download, _name=_name: load_vision(_name, root, download)
    )


# ---------------------------------------------------------------- MNIST-1D
# The `mnist1d` package's generation arguments (its get_dataset_args()), minus the
# download URL: the set is always generated here. The config's `data.mnist1d` keys and
# their defaults are these (tests/test_data.py checks them against the package).
MNIST1D_ARGS = {
    "num_samples": 5000,
    "train_split": 0.8,
    "template_len": 12,
    "padding": [36, 60],
    "scale_coeff": 0.4,
    "max_translation": 48,
    "corr_noise_scale": 0.25,
    "iid_noise_scale": 2e-2,
    "shear_scale": 0.75,
    "shuffle_seq": False,
    "final_seq_length": 40,
    "seed": 42,
}


@contextmanager
def global_rngs_preserved():
    """Restore Python's and numpy's global random states on exit.

    mnist1d's make_dataset reseeds both global generators (`set_seed(args.seed)`) and then
    draws from them; without this, whatever runs later in the process would see a state
    fixed by the dataset's seed instead of its own.
    """
    # The legacy global generator on purpose: it is the one the package draws from.
    python_state, numpy_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)  # noqa: NPY002


def generate_mnist1d(args: dict | None = None) -> Official:
    """MNIST-1D generated offline by the `mnist1d` package (`make_dataset`, never its
    download path) from `args` (keys of MNIST1D_ARGS; missing keys take the defaults).

    Returns the package's own train/test division, float signals [n, 1, length] as the
    package scales them (the whole set centred and divided by its standard deviation).
    """
    unknown = sorted(set(args or {}) - set(MNIST1D_ARGS))
    if unknown:
        raise DataError(
            f"dataset 'mnist1d': unknown generation arguments {unknown}; known: "
            f"{', '.join(MNIST1D_ARGS)}"
        )
    full = {**MNIST1D_ARGS, **(args or {})}
    from mnist1d.data import make_dataset  # deferred: only preparing MNIST-1D needs it
    from mnist1d.utils import ObjectView

    with global_rngs_preserved():
        # A fresh dict each time: make_dataset reads the arguments as attributes.
        generated = make_dataset(ObjectView({**full, "padding": list(full["padding"])}))
    x_train, x_test = (np.asarray(generated[k], dtype=np.float64) for k in ("x", "x_test"))
    y_train, y_test = (np.asarray(generated[k], dtype=np.int64) for k in ("y", "y_test"))
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    import importlib.metadata

    return Official(
        x_train[:, None],
        y_train,
        x_test[:, None],
        y_test,
        source=f"mnist1d {importlib.metadata.version('mnist1d')}, data.make_dataset",
        raw_files={k: sha256_array(v) for k, v in arrays.items()},
        generation_args=full,
    )


def sha256_array(array: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and C-ordered bytes."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}:{array.shape}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


register("mnist1d", official_test=True)(lambda root, download, args=None: generate_mnist1d(args))


# ---------------------------------------------------------------- split and scaling
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


def carve_validation(
    y: np.ndarray, split_seed: int, validation_fraction: float
) -> dict[str, np.ndarray]:
    """Stratified, disjoint train/val indices into an official training set."""
    from sklearn.model_selection import train_test_split

    train, val = train_test_split(
        np.arange(len(y)), test_size=validation_fraction, stratify=y, random_state=split_seed
    )
    return {"train": np.sort(train), "val": np.sort(val)}


def standardize(x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Scale every split by the train split's per-feature mean and std (constant: std 1)."""
    mean = x["train"].mean(axis=0)
    std = x["train"].std(axis=0)
    std[std == 0] = 1.0
    return {k: (v - mean) / std for k, v in x.items()}


def channel_statistics(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Exact per-channel mean and std of uint8 images [n, C, H, W], in units of pixel/255.

    Computed from each channel's 256-bin histogram: no float copy of the images.
    """
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(images.shape[1]):
        counts = np.bincount(images[:, c].ravel(), minlength=256).astype(np.float64)
        mean = counts @ values / counts.sum()
        var = counts @ (values - mean) ** 2 / counts.sum()
        means.append(float(mean))
        stds.append(float(np.sqrt(var)) or 1.0)
    return means, stds


def normalize_images(images: np.ndarray, mean, std) -> torch.Tensor:
    """float32 [n, C*H*W]: pixel/255 minus the channel mean, divided by the channel std."""
    x = torch.from_numpy(images).to(torch.float32).div_(255.0)
    shape = (1, -1, 1, 1)
    x.sub_(torch.tensor(mean, dtype=torch.float32).view(shape))
    x.div_(torch.tensor(std, dtype=torch.float32).view(shape))
    return x.reshape(len(images), -1)


# ---------------------------------------------------------------- the prepared file
def prepare(
    name: str,
    out_path: str | os.PathLike,
    split_seed: int = 0,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
    root: str | os.PathLike = "data",
    download: bool = False,
    generation: dict | None = None,
) -> dict:
    """Split and scale dataset `name`, write its tensor file atomically and its metadata
    beside it (`meta_path`), return the metadata.

    `root` and `download` concern only the torchvision sets; `generation` only MNIST-1D (its
    generation arguments); `test_fraction` only the pooled sets (the others keep their
    official test set). Nothing is written unless the whole dataset was read and checked.
    """
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    dataset = DATASETS[name]
    if name == "mnist1d":
        payload = _official_payload(
            name, generate_mnist1d(generation), split_seed, validation_fraction
        )
    elif dataset.official_test:
        payload = _official_payload(
            name, dataset.load(root, download), split_seed, validation_fraction
        )
    else:
        payload = _pooled_payload(
            name, *dataset.load(), split_seed, validation_fraction, test_fraction
        )
    shape, expected = tuple(payload["meta"]["input_shape"]), INPUT_SHAPES.get(name)
    if expected is not None and shape != expected:
        # Config validation checks models against the table before any job: keep it true.
        raise DataError(
            f"{name}: samples have shape {shape}, but optreg.data.shapes.INPUT_SHAPES says "
            f"{expected}; correct the table"
        )
    with atomic_path(out_path) as tmp:
        torch.save(payload, tmp)
    meta = {**payload["meta"], "sha256": fingerprint(payload)}
    # Beside the tensor file, for every reader: train jobs check the file against it.
    write_json(meta_path(out_path), meta)
    return meta


def meta_path(path: str | os.PathLike) -> Path:
    """The metadata (and fingerprint) file `prepare` writes beside a prepared file."""
    return Path(path).with_suffix(".json")


def _describe(name, y, idx, x_shape, split_seed, validation_fraction) -> dict:
    """The metadata both kinds of dataset share."""
    classes = int(max(part.max() for part in y.values())) + 1
    return {
        "dataset": name,
        "split_seed": split_seed,
        "validation_fraction": validation_fraction,
        "n_features": int(np.prod(x_shape)),
        "input_shape": list(x_shape),
        "n_classes": classes,
        "sizes": {k: len(i) for k, i in idx.items()},
        "class_counts": {k: np.bincount(y[k], minlength=classes).tolist() for k in SPLITS},
    }


def _pooled_payload(name, x, y, split_seed, validation_fraction, test_fraction) -> dict:
    idx = split_indices(y, split_seed, validation_fraction, test_fraction)
    xs = standardize({k: x[i] for k, i in idx.items()})
    ys = {k: y[i] for k, i in idx.items()}
    meta = {
        **_describe(name, ys, idx, x.shape[1:], split_seed, validation_fraction),
        "test_fraction": test_fraction,
        "split": "pooled: stratified train/validation/test parts of all samples",
        "index": "rows of the dataset as scikit-learn returns it",
        "scaling": "standardized with the train split's per-feature mean and standard deviation",
    }
    payload = {"meta": meta}
    for k in SPLITS:
        payload[f"x_{k}"] = torch.from_numpy(xs[k].reshape(len(xs[k]), -1)).float()
        payload[f"y_{k}"] = torch.from_numpy(ys[k]).long()
        payload[f"index_{k}"] = torch.from_numpy(idx[k]).long()
    return payload


def _official_payload(name, data: Official, split_seed, validation_fraction) -> dict:
    idx = carve_validation(data.y_train, split_seed, validation_fraction)
    idx["test"] = np.arange(len(data.y_test))
    images = {k: data.x_train[i] for k, i in idx.items() if k != "test"}
    images["test"] = data.x_test
    ys = {k: data.y_train[i] for k, i in idx.items() if k != "test"}
    ys["test"] = data.y_test
    if data.generation_args is not None:
        return _generated_payload(name, data, idx, images, ys, split_seed, validation_fraction)
    mean, std = channel_statistics(images["train"])
    meta = {
        **_describe(name, ys, idx, data.x_train.shape[1:], split_seed, validation_fraction),
        "test_fraction": None,
        "split": (
            "official: test is the official test set; validation is a stratified "
            f"{validation_fraction:g} of the official training set drawn with the split "
            "seed; train is the rest of the official training set"
        ),
        "index": "train, val: rows of the official training set; test: of the official test set",
        "scaling": (
            "normalized per channel: pixel/255 minus the train split's channel mean, "
            "divided by its channel standard deviation"
        ),
        "channel_mean": mean,
        "channel_std": std,
        "source": data.source,
        "raw_files_sha256": data.raw_files,
    }
    payload = {"meta": meta}
    for k in SPLITS:
        payload[f"x_{k}"] = normalize_images(images[k], mean, std)
        payload[f"y_{k}"] = torch.from_numpy(ys[k]).long()
        payload[f"index_{k}"] = torch.from_numpy(idx[k]).long()
    return payload


def _generated_payload(name, data: Official, idx, signals, ys, split_seed, validation_fraction):
    meta = {
        **_describe(name, ys, idx, data.x_train.shape[1:], split_seed, validation_fraction),
        "test_fraction": None,
        "split": (
            "generated: test is the generator's own test part; validation is a stratified "
            f"{validation_fraction:g} of its training part drawn with the split seed; train "
            "is the rest of its training part"
        ),
        "index": "train, val: rows of the generated training part; test: of its test part",
        "scaling": "as generated: the package centres the whole set and divides by its std",
        "source": data.source,
        "generation_args": data.generation_args,
        "generated_sha256": data.raw_files,
    }
    payload = {"meta": meta}
    for k in SPLITS:
        x = torch.from_numpy(signals[k]).to(torch.float32)
        payload[f"x_{k}"] = x.reshape(len(x), -1)
        payload[f"y_{k}"] = torch.from_numpy(ys[k]).long()
        payload[f"index_{k}"] = torch.from_numpy(idx[k]).long()
    return payload


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
