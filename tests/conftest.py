"""Shared fixtures: the repository layout, the prepared digits file, a small config, the
tables of small tuned studies and what the figures' tests look at."""

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

# The textbook loop; `textbook_mlp` is re-exported: tests import it from here.
from optreg.training.reference import data_order, textbook_epochs, textbook_mlp  # noqa: F401

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


# ---------------------------------------------------------------- study tables
# The smoke config's studies, trimmed to what the figures and their analyses need: two
# values of each factor, the proximal L1 step among the penalties, and MLPs only (a CNN adds
# time, not coverage). Shared by the report's tests and the analysis tests of the same tables.
STUDY_FACTORS = {
    "optimization": ["optimizer", "activation"],
    "regularization": ["penalty", "strength"],
    "problems": ["problem", "optimizer"],
}
SMALLER_STUDIES = {
    "optimization": {"optimizer": ["momentum", "adam"], "activation": ["relu", "sigmoid"]},
    "regularization": {"penalty": ["none", "l1", "l1_prox"], "strength": [0.0001, 0.01]},
    "problems": {"problem": ["digits_mlp", "cancer_mlp"], "optimizer": ["sgd", "adam"]},
}
STUDY_TARGET = 0.5


@pytest.fixture(scope="session")
def study_tables(root, tmp_path_factory) -> dict[str, dict]:
    """{study: {table name: CSV path}} built by the package's own training and tables."""
    from optreg.analysis import tables
    from optreg.data.prepare import prepare
    from optreg.data.prepared import meta_path
    from optreg.study import validate as cfg
    from optreg.training import job as train

    config = cfg.load_config(str(root / "config" / "smoke.yaml"))
    for study, factors in SMALLER_STUDIES.items():
        config["studies"][study]["factors"] = factors
    work = tmp_path_factory.mktemp("plots")
    jobs = cfg.jobs(config)
    datasets = {}
    for dataset in sorted({j.cell.settings["data"]["dataset"] for j in jobs}):
        datasets[dataset] = work / f"{dataset}.pt"
        prepare(dataset, datasets[dataset])
    threads = torch.get_num_threads()
    files: dict[str, list] = {s: [] for s in SMALLER_STUDIES}
    tuning: dict[tuple[str, str], list] = {}
    try:
        # Tuning jobs first: a cell's evaluation chooses its rate from them.
        for job in sorted(jobs, key=lambda j: j.phase == "eval"):
            key = (job.study, job.cell.id)
            written = train.run_job(
                data_path=datasets[job.cell.settings["data"]["dataset"]],
                out_dir=work / job.study / job.phase / job.cell.id / job.block,
                study=job.study,
                combination=job.cell.id,
                factors=job.cell.factors,
                settings=job.cell.settings,
                phase=job.phase,
                seeds=job.seeds,
                tuning_seeds=job.tuning_seeds,
                lr_grid=job.cell.lr_grid,
                default_lr=job.cell.default_lr,
                tuning_files=tuning.get(key, []) if job.phase == "eval" else [],
                threads=1,
            )
            if job.tunes:
                tuning.setdefault(key, []).extend(p for p in written if p.name.startswith("lr-"))
            files[job.study] += written
    finally:
        torch.set_num_threads(threads)
    out = {}
    for study, factors in STUDY_FACTORS.items():
        problems = {
            j.cell.settings["problem"]: j.cell.settings["data"]["dataset"]
            for j in jobs
            if j.study == study
        }
        base = work / study
        names = ("runs", "history", "tuning", "summary", "pairs")
        paths = {name: base / f"{name}.csv" for name in names}
        tables.collect_runs(files[study], paths["runs"], paths["history"])
        tables.summarize_study(
            runs_path=paths["runs"],
            history_path=paths["history"],
            factors=factors,
            target=STUDY_TARGET,
            datasets=problems,
            data_meta=[meta_path(datasets[d]) for d in sorted(set(problems.values()))],
            tuning_path=paths["tuning"],
            summary_path=paths["summary"],
            pairs_path=paths["pairs"],
        )
        out[study] = paths
    return out


@pytest.fixture(scope="session")
def study_frames(study_tables) -> dict[str, dict]:
    """The tables of `study_tables`, read: {study: {table name: DataFrame}}."""
    from optreg.analysis import tables

    return {
        study: {name: tables.read_table(path) for name, path in paths.items()}
        for study, paths in study_tables.items()
    }


def runs_at_two_depths(runs):
    """The optimization study's runs at two depths (depth 2: the same runs, sigmoid 0.2 less
    accurate) and the paired comparisons of their tuned evaluation runs: (runs, pairs)."""
    import pandas as pd

    from optreg.analysis.stats import pairwise_comparisons

    deeper = runs.assign(depth=2, combination=runs["combination"] + "_depth-2")
    deeper.loc[deeper["activation"] == "sigmoid", "test_accuracy"] -= 0.2
    runs = pd.concat([runs.assign(depth=1), deeper], ignore_index=True)
    evals = runs[(runs["phase"] == "eval") & (runs["protocol"] == "tuned")]
    return runs, pairwise_comparisons(evals).assign(protocol="tuned")


def figure_texts(fig) -> list[str]:
    """The texts drawn in a figure's axes."""
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def figure_panels(fig) -> list:
    """A figure's visible panels (not its colour bar)."""
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def tangled_panels(fig) -> list[str]:
    """The panels (by title) whose x tick labels run into each other, as laid out: level
    labels whose boxes overlap, or slanted ones closer (across their slant) than a line."""
    import math

    import numpy as np

    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    tangled = []
    for ax in figure_panels(fig):
        labels = [t for t in ax.get_xticklabels() if t.get_text()]
        boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.x0)
        angle = math.radians(labels[0].get_rotation()) if labels else 0.0
        if angle == 0.0:
            hit = any(a.x1 > b.x0 for a, b in zip(boxes, boxes[1:], strict=False))
        else:
            at = [t.get_loc() for t in ax.xaxis.get_major_ticks() if t.label1.get_text()]
            xs = sorted(ax.transData.transform((x, 0))[0] for x in at)
            line = labels[0].get_fontsize() * fig.dpi / 72
            hit = min(np.diff(xs)) * math.sin(angle) < line
        if hit:
            tangled.append(ax.get_title())
    return tangled


# ---------------------------------------------------------------- the textbook loop
def assert_textbook_epochs(
    plain,
    optimizer,
    seed: int,
    data,
    history,
    batch_size: int,
    closure: bool = False,
    rel: float = 1e-5,
) -> None:
    """Train `plain` with `optimizer` as a textbook PyTorch loop, in the run's data order, and
    check each epoch's training and validation loss against the run's `history`."""
    epochs = textbook_epochs(
        plain, optimizer, data, len(history), batch_size, order=data_order(seed), closure=closure
    )
    for epoch, textbook in zip(history, epochs, strict=True):
        assert epoch["train_loss"] == pytest.approx(textbook["train_loss"], rel=rel)
        assert epoch["val_loss"] == pytest.approx(textbook["val_loss"], rel=rel)


# ---------------------------------------------------------------- the workflow
PROJECT_PARTS = ("workflow", "scripts", "config", "envs", "profiles", "src", "examples")


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
