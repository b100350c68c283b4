"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision, offline.

Every test reads tiny files written in each set's own on-disk format (tests/vision_files.py)
with download disabled, through torchvision's real dataset classes: IDX files for MNIST and
Fashion-MNIST, pickled batches for CIFAR-10 (whose md5 check still runs, pointed at our files).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import vision_files as vf
import yaml
from conftest import copy_project, settings, snakemake

from optreg.data.errors import DataError
from optreg.data.prepare import prepare
from optreg.data.prepared import Prepared, load_prepared
from optreg.data.registry import DATASETS, OFFICIAL
from optreg.data.sources import VISION_FILES
from optreg.data.split import normalize_images
from optreg.training.loop import train_runs
from optreg.training.models import StackedCNN, build_model

CPU = torch.device("cpu")
VISION = ("mnist", "fashion_mnist", "cifar10")


def write_dataset(root: Path, name: str, monkeypatch) -> None:
    if name == "cifar10":
        vf.patch_cifar_md5(monkeypatch, vf.write_cifar10(root))
    else:
        vf.write_mnist_like(root, name)


def raw_official(root: Path, name: str):
    """(train images, train labels, test images, test labels) read back without torchvision."""
    if name == "cifar10":
        x_train, y_train = vf.cifar_arrays(root, [f"data_batch_{i}" for i in range(1, 6)])
        x_test, y_test = vf.cifar_arrays(root, ["test_batch"])
        return x_train, y_train, x_test, y_test
    folder = root / vf.MNIST_FOLDERS[name] / "raw"
    read = {}
    for part in ("train", "t10k"):
        images = np.frombuffer((folder / f"{part}-images-idx3-ubyte").read_bytes()[16:], np.uint8)
        labels = np.frombuffer((folder / f"{part}-labels-idx1-ubyte").read_bytes()[8:], np.uint8)
        read[part] = (images.reshape(-1, 1, 28, 28), labels.astype(np.int64))
    return (*read["train"], *read["t10k"])


def no_leftovers(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".pt" or ".tmp" in p.name)


# ---------------------------------------------------------------- the registry
def test_registry_names_exactly_the_files_torchvision_reads():
    import torchvision.datasets as tvd

    assert {"digits", "breast_cancer", *VISION} <= set(DATASETS)
    assert all(DATASETS[name].kind == OFFICIAL for name in VISION)
    for name in ("mnist", "fashion_mnist"):
        spec = VISION_FILES[name]
        cls = getattr(tvd, spec.torchvision_class)
        assert spec.folder == f"{cls.__name__}/raw"  # MNIST.raw_folder: <root>/<class>/raw
        assert set(spec.files) == {Path(url).stem for url, _ in cls.resources}
    cifar = tvd.CIFAR10
    assert VISION_FILES["cifar10"].folder == cifar.base_folder
    expected = {f for f, _ in cifar.train_list + cifar.test_list} | {cifar.meta["filename"]}
    assert set(VISION_FILES["cifar10"].files) == expected


# ---------------------------------------------------------------- preparing
@pytest.mark.parametrize("name", VISION)
def test_prepare_reads_the_real_format_and_round_trips_exactly(tmp_path, monkeypatch, name):
    root = tmp_path / "raw"
    write_dataset(root, name, monkeypatch)
    out = tmp_path / "prepared" / f"{name}.pt"
    meta = prepare(name, out, split_seed=3, validation_fraction=0.2, root=root, download=False)
    x_train, y_train, x_test, y_test = raw_official(root, name)
    data = load_prepared(out)

    # The split: the official test set whole, validation carved from the training set.
    assert meta["sizes"] == {"train": 80, "val": 20, "test": 50}
    assert meta["test_fraction"] is None and meta["split"].startswith("official")
    assert torch.equal(data.y["test"], torch.from_numpy(y_test))
    index = {k: torch.load(out, weights_only=True)[f"index_{k}"].numpy() for k in ("train", "val")}
    assert sorted(np.concatenate(list(index.values())).tolist()) == list(range(100))
    assert meta["class_counts"]["val"] == [2] * 10  # stratified
    assert torch.equal(data.y["train"], torch.from_numpy(y_train[index["train"]]))

    # Per-channel normalization with the train split's statistics, checked independently.
    channels = x_train.shape[1]
    pixels = x_train[index["train"]].astype(np.float64) / 255
    mean, std = pixels.mean(axis=(0, 2, 3)), pixels.std(axis=(0, 2, 3))
    np.testing.assert_allclose(meta["channel_mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(meta["channel_std"], std, rtol=1e-12)
    expected = (x_test / 255 - mean[None, :, None, None]) / std[None, :, None, None]
    got = data.x["test"].numpy().reshape(-1, channels, *x_test.shape[2:])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert meta["input_shape"] == list(x_train.shape[1:])

    # Exactly the tensors prepare computed, in the dtype training uses.
    exact = normalize_images(x_train[index["val"]], meta["channel_mean"], meta["channel_std"])
    assert data.x["val"].dtype == torch.float32 and torch.equal(data.x["val"], exact)
    assert data.sha256 == meta["sha256"]
    assert prepare(name, tmp_path / "again.pt", split_seed=3, root=root)["sha256"] == meta["sha256"]
    assert prepare(name, tmp_path / "other.pt", split_seed=4, root=root)["sha256"] != meta["sha256"]

    # The raw files' checksums, and metadata that is plain JSON.
    folder = root / VISION_FILES[name].folder
    assert meta["raw_files_sha256"] == {
        f"{VISION_FILES[name].folder}/{f}": hashlib.sha256((folder / f).read_bytes()).hexdigest()
        for f in VISION_FILES[name].files
    }
    json.dumps(meta, allow_nan=False)
    assert no_leftovers(out.parent) == [out]


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_download_true_uses_a_complete_folder_without_the_network(tmp_path, monkeypatch, name):
    write_dataset(tmp_path, name, monkeypatch)

    def no_network(*args, **kwargs):
        raise AssertionError("torchvision tried to download")

    for module in ("mnist", "cifar"):  # where the dataset classes look the function up
        monkeypatch.setattr(
            f"torchvision.datasets.{module}.download_and_extract_archive", no_network
        )
    meta = prepare(name, tmp_path / "d.pt", root=tmp_path, download=True)
    assert meta["sizes"]["test"] == 50


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("name", VISION)
def test_missing_files_name_dataset_folder_files_and_the_download_switch(tmp_path, name):
    out = tmp_path / "out" / f"{name}.pt"
    with pytest.raises(DataError) as err:
        prepare(name, out, root=tmp_path / "empty", download=False)
    message = str(err.value)
    spec = VISION_FILES[name]
    assert repr(name) in message
    assert str(tmp_path / "empty" / spec.folder) in message
    assert all(f in message for f in spec.files)
    assert "data.download: true" in message
    assert not out.exists() and not out.parent.exists()


def test_one_missing_file_is_named(tmp_path):
    vf.write_mnist_like(tmp_path, "fashion_mnist")
    (tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"1 of its 4 files .* missing: t10k-labels-idx1-ubyte\."):
        prepare("fashion_mnist", tmp_path / "f.pt", root=tmp_path)
    assert not (tmp_path / "f.pt").exists()


@pytest.mark.parametrize("victim", ["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
def test_truncated_idx_file_is_a_clear_error_and_writes_nothing(tmp_path, victim):
    vf.write_mnist_like(tmp_path / "raw", "mnist")
    path = tmp_path / "raw" / "MNIST" / "raw" / victim
    path.write_bytes(path.read_bytes()[:-100])
    out = tmp_path / "out" / "mnist.pt"
    out.parent.mkdir()
    with pytest.raises(DataError) as err:
        prepare("mnist", out, root=tmp_path / "raw")
    message = str(err.value)
    assert "'mnist'" in message and str(path.parent) in message
    assert "truncated or corrupt" in message
    assert no_leftovers(out.parent) == []


def test_images_without_their_labels_are_an_error(tmp_path):
    arrays = vf.write_mnist_like(tmp_path, "mnist")
    images, labels = arrays["train"]
    vf.write_idx(tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte", labels[:-10])
    with pytest.raises(DataError, match="100 images of type uint8 but 90 labels"):
        prepare("mnist", tmp_path / "m.pt", root=tmp_path)
    assert not (tmp_path / "m.pt").exists()


def test_cifar_md5_check_runs(tmp_path, monkeypatch):
    """Without pointing torchvision's checksums at our files, its md5 check rejects them."""
    vf.write_cifar10(tmp_path)
    with pytest.raises(DataError, match="CIFAR10 could not read .* truncated or corrupt"):
        prepare("cifar10", tmp_path / "c.pt", root=tmp_path)
    assert not (tmp_path / "c.pt").exists()


@pytest.mark.parametrize("md5_of_truncated", [False, True], ids=["md5-fails", "unpickling-fails"])
def test_truncated_cifar_batch_is_a_clear_error(tmp_path, monkeypatch, md5_of_truncated):
    md5s = vf.write_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:5000])
    if md5_of_truncated:  # past the checksum: the pickle itself is cut short
        md5s["data_batch_3"] = vf.md5(batch)
    vf.patch_cifar_md5(monkeypatch, md5s)
    with pytest.raises(DataError) as err:
        prepare("cifar10", tmp_path / "out" / "c.pt", root=tmp_path)
    assert "'cifar10'" in str(err.value) and "truncated or corrupt" in str(err.value)
    assert not (tmp_path / "out").exists() or no_leftovers(tmp_path / "out") == []


# ---------------------------------------------------------------- models on real shapes
@pytest.mark.parametrize(
    ("shape", "spec"),
    [
        ((1, 28, 28), {"model": "mlp", "hidden": [12, 6]}),
        ((1, 28, 28), {"model": "cnn", "channels": [3, 4], "dense": [8]}),
        ((3, 32, 32), {"model": "mlp", "hidden": [12]}),
        ((3, 32, 32), {"model": "cnn", "channels": [3, 4, 5], "dense": [8, 6]}),
    ],
    ids=["mlp-28", "cnn-28", "mlp-32", "cnn-32"],
)
def test_models_train_with_every_optimizer_activation_and_penalty(shape, spec):
    features = int(np.prod(shape))
    gen = torch.Generator().manual_seed(0)
    splits = {"train": 32, "val": 8, "test": 8}
    data = Prepared(
        x={k: torch.randn(n, features, generator=gen) for k, n in splits.items()},
        y={k: torch.randint(0, 10, (n,), generator=gen) for k, n in splits.items()},
        meta={"n_features": features, "input_shape": list(shape), "n_classes": 10},
        sha256="",
    )
    activations = ["relu", "sigmoid", "tanh"]
    combos = [
        (o, p) for o in ("sgd", "momentum", "rmsprop", "adam") for p in ("none", "l1", "l1_prox")
    ] + [(o, p) for o in ("sgd", "momentum", "rmsprop", "adam") for p in ("l2", "wd")]
    for i, (optimizer, penalty) in enumerate(combos):
        cfg = settings(
            model=spec,
            optimizer=optimizer,
            activation=activations[i % 3],
            penalty=penalty,
            strength=0.0 if penalty == "none" else 1e-3,
            epochs=1,
            batch_size=16,
        )
        result, *_ = train_runs(data, cfg, [0.01, 0.001], [0, 1], CPU)
        assert not result["diverged"], (optimizer, penalty)
        assert np.isfinite(result["final"]["test_loss"])
        assert result["weights"]["count"] == sum(
            p[0].numel() for p in build_model(spec, data.meta, "relu", [0]).weights
        )


def test_cnn_with_dense_layers_stacks_like_one_at_a_time():
    x = torch.randn(5, 3 * 32 * 32)
    stacked = StackedCNN((3, 32, 32), [4, 6], 10, "relu", seeds=[3, 7], dense=[9, 5])
    for slot, seed in enumerate([3, 7]):
        alone = StackedCNN((3, 32, 32), [4, 6], 10, "relu", seeds=[seed], dense=[9, 5])
        for a, b in zip(alone.weights, stacked.weights, strict=True):
            assert torch.equal(a[0], b[slot])
        torch.testing.assert_close(alone(x)[0], stacked(x)[slot], rtol=1e-5, atol=1e-6)
    assert len(stacked.weights) == 2 + 3 and stacked.weights[2].shape == (2, 9, 6 * 8 * 8)


def test_too_many_convolutions_for_the_image_is_an_error():
    with pytest.raises(ValueError, match="shrink a 1x8x8 input below one pixel"):
        StackedCNN((1, 8, 8), [2, 2, 2, 2], 10, "relu", seeds=[0])


# ---------------------------------------------------------------- memory
def test_data_that_does_not_fit_the_device_is_streamed(tmp_path, monkeypatch):
    vf.write_mnist_like(tmp_path, "mnist")
    prepare("mnist", tmp_path / "m.pt", root=tmp_path)
    # A GPU with no free memory: the splits stay memory-mapped on the CPU (no CUDA needed).
    streamed = load_prepared(tmp_path / "m.pt", device="cuda", free_bytes=0)
    resident = load_prepared(tmp_path / "m.pt")
    assert streamed.streamed and not resident.streamed
    assert streamed.x["train"].device == CPU and streamed.sha256 == resident.sha256
    cfg = settings(model={"model": "mlp", "hidden": [8]}, epochs=2, batch_size=32)
    a = train_runs(streamed, cfg, [0.01], [0], CPU)[0]
    b = train_runs(resident, cfg, [0.01], [0], CPU)[0]

    def untimed(result):
        return [{k: v for k, v in h.items() if k != "elapsed_s"} for h in result["history"]]

    assert untimed(a) == untimed(b) and a["final"] == b["final"]


def test_train_jobs_never_import_torchvision(tmp_path):
    vf.write_mnist_like(tmp_path, "mnist")
    prepare("mnist", tmp_path / "m.pt", root=tmp_path)
    job = {
        "data_path": str(tmp_path / "m.pt"),
        "out_dir": str(tmp_path / "runs"),
        "study": "s",
        "combination": "c",
        "factors": {},
        "settings": {k: v for k, v in settings(epochs=1).items() if k != "lr"},
        "phase": "tune",
        "seeds": [0],
        "lr_grid": [0.01],
        "default_lr": 0.001,
    }
    code = (
        "import json, sys\n"
        "from optreg.training.job import run_job\n"
        "run_job(**json.loads(sys.argv[1]))\n"
        "print('torchvision' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(job)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
    assert len(list((tmp_path / "runs").glob("*.json"))) == 1


# ---------------------------------------------------------------- through Snakemake
def shrunk_preset(root: Path, work: Path, data_root: Path) -> None:
    """config/fashion_mnist.yaml made tiny: fewer epochs, seeds, grid points and strengths,
    a smaller network, and a data root of tiny IDX files (torchvision does not md5-check
    MNIST-format files, so they pass without the patching a Snakemake job would not see)."""
    config = yaml.safe_load((root / "config" / "fashion_mnist.yaml").read_text())
    config["data"]["root"] = str(data_root)
    config["protocol"].update(lr_grid=[0.001, 0.01], tuning_seeds=[0], evaluation_seeds=[10, 11])
    config["problems"]["fmnist_2c2d"].update(channels=[2, 4], dense=[8])
    config["defaults"].update(epochs=2, batch_size=32)
    config["threads"] = {"prepare_data": 1, "train": 1}
    config["device"] = "cpu"
    config["studies"]["regularization"]["factors"]["strength"] = [0.001]
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config))


@pytest.mark.workflow
def test_fashion_mnist_preset_runs_to_the_report(root, tmp_path):
    work = copy_project(root, tmp_path / "project")
    data_root = tmp_path / "raw"
    vf.write_mnist_like(data_root, "fashion_mnist")
    shrunk_preset(root, work, data_root)
    snakemake(work)
    meta = json.loads((work / "results" / "data" / "fashion_mnist.json").read_text())
    assert meta["sizes"] == {"train": 90, "val": 10, "test": 50}  # the preset's 0.1
    assert meta["split"].startswith("official")
    assert (work / "results" / "report.pdf").stat().st_size > 10_000
    from pypdf import PdfReader

    text = "".join(p.extract_text() for p in PdfReader(work / "results" / "report.pdf").pages)
    assert "fashion_mnist" in text and "Study regularization" in text


@pytest.mark.workflow
@pytest.mark.parametrize("fault", ["missing", "truncated"])
def test_bad_raw_files_fail_the_prepare_job_and_leave_no_tensor_file(root, tmp_path, fault):
    work = copy_project(root, tmp_path / "project")
    data_root = tmp_path / "raw"
    vf.write_mnist_like(data_root, "fashion_mnist")
    victim = data_root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"
    if fault == "missing":
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[:-1000])
    shrunk_preset(root, work, data_root)
    proc = snakemake(work, "results/data/fashion_mnist.pt", check=False)
    assert proc.returncode != 0
    log = (work / "logs" / "prepare_data" / "fashion_mnist.log").read_text()
    assert "'fashion_mnist'" in log and str(victim.parent) in log
    expected = "data.download: true" if fault == "missing" else "truncated or corrupt"
    assert expected in log
    assert not list((work / "results").rglob("*.pt"))
    shutil.rmtree(work)
