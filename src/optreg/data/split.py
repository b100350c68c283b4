"""The fixed split and the scaling: a data set's arrays into the tensors of its prepared file.

Every set is split once, by the split seed, into stratified train/validation/test parts (or,
with an official or generated test part, only validation carved from the training part),
scaled with statistics of the train split alone, and stored in the dtype training uses. Each
function here builds one kind's payload: its metadata and tensors (`optreg.data.prepare`
writes it).
"""

from __future__ import annotations

import numpy as np
import torch

from optreg.data.prepared import SPLITS


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


def describe(name, y, idx, x_shape, split_seed, validation_fraction) -> dict:
    """The metadata every kind of data set shares: its name, split, shape and class counts."""
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


def tensors(meta: dict, x: dict[str, torch.Tensor], y: dict, idx: dict) -> dict:
    """A prepared file's content: `meta`, then each split's float32 features [n, features]
    (`x`), int64 labels and the int64 indices of its rows in the source."""
    payload = {"meta": meta}
    for k in SPLITS:
        payload[f"x_{k}"] = x[k]
        payload[f"y_{k}"] = torch.from_numpy(y[k]).long()
        payload[f"index_{k}"] = torch.from_numpy(idx[k]).long()
    return payload


def flat_float32(x: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Each split's features as float32 rows [n, features]."""
    return {k: torch.from_numpy(v.reshape(len(v), -1)).float() for k, v in x.items()}


def pooled_payload(name, x, y, split_seed, validation_fraction, test_fraction) -> dict:
    """A pooled set (`x` [n, ...], `y` [n]) cut into stratified train/validation/test parts,
    standardized with the train split's per-feature statistics."""
    idx = split_indices(y, split_seed, validation_fraction, test_fraction)
    xs = standardize({k: x[i] for k, i in idx.items()})
    ys = {k: y[i] for k, i in idx.items()}
    meta = {
        **describe(name, ys, idx, x.shape[1:], split_seed, validation_fraction),
        "test_fraction": test_fraction,
        "split": "pooled: stratified train/validation/test parts of all samples",
        "index": "rows of the dataset as scikit-learn returns it",
        "scaling": "standardized with the train split's per-feature mean and standard deviation",
    }
    return tensors(meta, flat_float32(xs), ys, idx)


def official_parts(x_train, y_train, x_test, y_test, split_seed, validation_fraction):
    """(indices, features, labels) by split of a set with its own test part: the test part
    whole, validation a stratified share of the training part, train the rest of it."""
    idx = carve_validation(y_train, split_seed, validation_fraction)
    idx["test"] = np.arange(len(y_test))
    xs = {k: x_train[i] for k, i in idx.items() if k != "test"}
    xs["test"] = x_test
    ys = {k: y_train[i] for k, i in idx.items() if k != "test"}
    ys["test"] = y_test
    return idx, xs, ys


def official_payload(name, data, split_seed, validation_fraction) -> dict:
    """An image set with its official test set (`data`, an `optreg.data.sources.Official`),
    normalized per channel with the train split's statistics."""
    idx, images, ys = official_parts(
        data.x_train, data.y_train, data.x_test, data.y_test, split_seed, validation_fraction
    )
    mean, std = channel_statistics(images["train"])
    meta = {
        **describe(name, ys, idx, data.x_train.shape[1:], split_seed, validation_fraction),
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
    x = {k: normalize_images(images[k], mean, std) for k in SPLITS}
    return tensors(meta, x, ys, idx)


def generated_payload(name, data, split_seed, validation_fraction) -> dict:
    """A generated set with the generator's own train/test division (`data`, an
    `optreg.data.sources.Official`), scaled as generated."""
    idx, signals, ys = official_parts(
        data.x_train, data.y_train, data.x_test, data.y_test, split_seed, validation_fraction
    )
    meta = {
        **describe(name, ys, idx, data.x_train.shape[1:], split_seed, validation_fraction),
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
    x = {}
    for k in SPLITS:
        x[k] = torch.from_numpy(signals[k]).to(torch.float32)
        x[k] = x[k].reshape(len(x[k]), -1)
    return tensors(meta, x, ys, idx)
