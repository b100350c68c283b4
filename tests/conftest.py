"""Shared fixtures: the repository layout, the prepared digits file, a small config."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]

torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Tests marked `cuda` need a GPU: skipped, saying so, where torch sees none."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (bench/gpu_check.sh runs these)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def digits_file(tmp_path_factory) -> Path:
    from optreg.data.prepare import prepare

    path = tmp_path_factory.mktemp("data") / "digits.pt"
    prepare("digits", path, split_seed=0)  # and digits.json, its fingerprint
    return path


@pytest.fixture(scope="session")
def digits(digits_file):
    from optreg.data.prepared import load_prepared

    return load_prepared(digits_file)


@pytest.fixture(scope="session")
def mnist1d(tmp_path_factory):
    """A small MNIST-1D (500 signals of length 40), generated and prepared."""
    from optreg.data.prepare import prepare
    from optreg.data.prepared import load_prepared

    path = tmp_path_factory.mktemp("data") / "mnist1d.pt"
    prepare("mnist1d", path, split_seed=0, generation={"num_samples": 500})
    return load_prepared(path)


@pytest.fixture
def smoke_config() -> dict:
    with open(ROOT / "config" / "smoke.yaml") as fh:
        return copy.deepcopy(yaml.safe_load(fh))


def settings(**overrides) -> dict:
    """Full cell settings (plus `lr`) for direct calls to the training code."""
    base = {
        "problem": "digits_mlp",
        "optimizer": "adam",
        "activation": "relu",
        "lr": 0.01,
        "penalty": "none",
        "strength": 0.0,
        "momentum": 0.9,
        "epochs": 3,
        "batch_size": 64,
        "model": {"model": "mlp", "hidden": [16], "channels": [4, 8]},
        "data": {"dataset": "digits", "split_seed": 0},
    }
    base.update(overrides)
    return base


# ---------------------------------------------------------------- the workflow
PROJECT_PARTS = ("workflow", "scripts", "config", "envs", "profiles", "src", "examples")


def textbook_mlp(seed: int):
    """The digits MLP of one run (64 -> 8 ReLU -> 10) as a plain nn.Sequential, starting
    from that run's own initialization."""
    from torch import nn

    from optreg.training.models import StackedMLP

    start = StackedMLP(64, [8], 10, "relu", seeds=[seed])
    plain = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10))
    with torch.no_grad():
        for layer, w, b in zip(plain[::2], start.weights, start.biases, strict=True):
            layer.weight.copy_(w[0])
            layer.bias.copy_(b[0, :, 0])
    return plain


def assert_textbook_epochs(plain, optimizer, seed: int, data, history, batch_size: int) -> None:
    """Train `plain` with `optimizer` as a textbook PyTorch loop, in the run's data order, and
    check each epoch's training and validation loss against the run's `history`."""
    import torch.nn.functional as F

    from optreg.training.seeds import derived_seed

    order = torch.Generator().manual_seed(derived_seed(seed, "order"))
    x, y = data.x["train"], data.y["train"]
    for epoch in history:
        perm = torch.randperm(len(y), generator=order)
        total = 0.0
        for first in range(0, len(y), batch_size):
            idx = perm[first : first + batch_size]
            loss = F.cross_entropy(plain(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        with torch.no_grad():
            val_loss = F.cross_entropy(plain(data.x["val"]), data.y["val"]).item()
        assert epoch["train_loss"] == pytest.approx(total / len(y), rel=1e-5)
        assert epoch["val_loss"] == pytest.approx(val_loss, rel=1e-5)


def copy_project(root: Path, dest: Path) -> Path:
    for name in PROJECT_PARTS:
        shutil.copytree(root / name, dest / name, symlinks=True)
    return dest


def snakemake(
    workdir: Path, *args: str, check: bool = True, env: dict | None = None
) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=900, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def job_counts(output: str) -> dict[str, int]:
    """Parse Snakemake's 'Job stats' table into {rule: count}."""
    table = output.split("Job stats:", 1)[1]
    return {
        m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"
    }


def dry_run(workdir: Path, *args: str, env: dict | None = None) -> dict[str, int]:
    proc = snakemake(workdir, "-n", *args, env=env)
    text = proc.stdout + proc.stderr
    return {} if "Nothing to be done" in text else job_counts(text)


# A folder that uses a checkout as a Snakemake module: its own config and this Snakefile only.
MODULE_SNAKEFILE = """\
configfile: "config/config.yaml"


module optreg:
    snakefile:
        "{snakefile}"
    config:
        config


use rule * from optreg
"""


def module_folder(checkout: Path, dest: Path, config: Path) -> Path:
    """`dest` holding only config/config.yaml (a copy of `config`) and a Snakefile that
    uses every rule of `checkout`'s workflow as a module."""
    (dest / "config").mkdir(parents=True)
    shutil.copy(config, dest / "config" / "config.yaml")
    snakefile = (checkout / "workflow" / "Snakefile").resolve()
    (dest / "Snakefile").write_text(MODULE_SNAKEFILE.format(snakefile=snakefile))
    return dest


@pytest.fixture(scope="session")
def smoke(root, tmp_path_factory) -> Path:
    """The smoke study run once through Snakemake to the PDF."""
    work = copy_project(root, tmp_path_factory.mktemp("smoke"))
    shutil.copy(work / "config" / "smoke.yaml", work / "config" / "config.yaml")
    snakemake(work)
    return work


@pytest.fixture
def smoke_clone(smoke, tmp_path) -> Path:
    """A private copy of the finished smoke project (results, metadata and times kept)."""
    dest = tmp_path / "clone"
    shutil.copytree(smoke, dest, symlinks=True)
    return dest
