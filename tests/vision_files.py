"""Tiny MNIST, Fashion-MNIST and CIFAR-10 folders in each set's own on-disk format.

The files are what torchvision reads: big-endian IDX files in `<root>/MNIST/raw/` (or
`FashionMNIST/raw/`), pickled batches in `<root>/cifar-10-batches-py/`. Each image carries a
bright square whose position depends on its class, so that a model can learn something.
"""

from __future__ import annotations

import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np

CLASSES = 10
MNIST_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


def images_for(labels: np.ndarray, shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """uint8 images [n, C, H, W]: noise plus a bright square placed by the class."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 100, size=(len(labels), *shape), dtype=np.uint8)
    for i, label in enumerate(labels):
        top, left = 2 * (label // 5) * 4 + 2, (label % 5) * 4 + 2
        images[i, :, top : top + 4, left : left + 4] = 255
    return images


def balanced_labels(n: int, seed: int) -> np.ndarray:
    """n labels, every class equally often (n a multiple of 10), in random order."""
    return np.random.default_rng(seed).permutation(np.arange(n) % CLASSES).astype(np.uint8)


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file: magic (0, 0, type 0x08 = ubyte, dimensions), big-endian sizes, bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_mnist_like(root: Path, name: str, n_train: int = 100, n_test: int = 50) -> dict:
    """The four IDX files of `name` ('mnist' or 'fashion_mnist') under `root`; their arrays."""
    folder = Path(root) / MNIST_FOLDERS[name] / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for part, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        labels = balanced_labels(n, seed)
        images = images_for(labels, (1, 28, 28), seed)[:, 0]
        write_idx(folder / f"{part}-images-idx3-ubyte", images)
        write_idx(folder / f"{part}-labels-idx1-ubyte", labels)
        arrays[part] = (images, labels)
    return arrays


def write_cifar10(root: Path, per_batch: int = 20, n_test: int = 50) -> dict:
    """data_batch_1..5, test_batch and batches.meta under `root`/cifar-10-batches-py.

    Returns {file name: md5}: torchvision checks each file's md5, so tests point its
    expected checksums at these files (`patch_cifar_md5`).
    """
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    batches = {f"data_batch_{i}": (per_batch, 10 + i) for i in range(1, 6)}
    batches["test_batch"] = (n_test, 20)
    for name, (n, seed) in batches.items():
        labels = balanced_labels(n, seed)
        images = images_for(labels, (3, 32, 32), seed)
        entry = {
            "batch_label": name,
            "labels": labels.tolist(),
            "data": images.reshape(n, -1),  # rows of 3072: the R, G and B planes
            "filenames": [f"{name}_{i}.png" for i in range(n)],
        }
        with open(folder / name, "wb") as fh:
            pickle.dump(entry, fh, protocol=2)
    meta = {"label_names": [f"class_{i}" for i in range(10)], "num_cases_per_batch": per_batch}
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump(meta, fh, protocol=2)
    return {p.name: md5(p) for p in folder.iterdir()}


def cifar_arrays(root: Path, names) -> tuple[np.ndarray, np.ndarray]:
    """Images [n, 3, 32, 32] and labels of the named batch files, read back directly."""
    images, labels = [], []
    for name in names:
        with open(Path(root) / "cifar-10-batches-py" / name, "rb") as fh:
            entry = pickle.load(fh)
        images.append(entry["data"].reshape(-1, 3, 32, 32))
        labels += entry["labels"]
    return np.concatenate(images), np.array(labels)


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def patch_cifar_md5(monkeypatch, md5s: dict) -> None:
    """Point torchvision's expected CIFAR-10 checksums at our files; its check still runs."""
    from torchvision.datasets import CIFAR10

    monkeypatch.setattr(
        CIFAR10, "train_list", [[f"data_batch_{i}", md5s[f"data_batch_{i}"]] for i in range(1, 6)]
    )
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5s["test_batch"]]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5s["batches.meta"]})
