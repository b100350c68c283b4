"""Every example in examples/ runs through Snakemake, and editing a user's file reruns
exactly the jobs that import it."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import copy_project, dry_run, module_folder, snakemake

pytestmark = pytest.mark.workflow


def project_with(root: Path, dest: Path, preset: str, shrink) -> Path:
    """A copy of the project whose config is the example preset, made small by `shrink`."""
    work = copy_project(root, dest)
    config = yaml.safe_load((root / "examples" / preset).read_text())
    shrink(config)
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return work


@pytest.mark.parametrize("preset", ["lion.yaml", "extras.yaml", "third_party.yaml"])
def test_an_examples_comment_says_what_it_runs(root, preset):
    """The header comment names each data set the example trains and its epochs."""
    text = (root / "examples" / preset).read_text()
    header = text.split("\n\n")[0].lower()
    config = yaml.safe_load(text)
    for problem in config["problems"].values():
        assert problem["dataset"] in header, (preset, problem["dataset"])
    assert f"{config['defaults']['epochs']} epochs" in header, preset


def edit(path: Path) -> None:
    """A change to `path` that keeps it valid: a source file gets a comment, a CSV file its
    last row once more (a data set's loader is called before any job, and must still work)."""
    time.sleep(0.01)
    text = path.read_text()
    if path.suffix == ".csv":
        path.write_text(text.rstrip("\n") + "\n" + text.rstrip("\n").splitlines()[-1] + "\n")
    else:
        path.write_text(text + "\n# edited by a test\n")


def small_lion(config: dict) -> None:
    config["protocol"].update(lr_grid=[0.001, 0.01], tuning_seeds=[0], evaluation_seeds=[100])
    config["defaults"]["epochs"] = 2
    config["studies"]["optimization"]["factors"]["activation"] = ["relu"]


def small_extras(config: dict) -> None:
    config["protocol"].update(tuning_seeds=[0], evaluation_seeds=[10, 11])
    config["defaults"]["epochs"] = 3


@pytest.fixture(scope="module")
def lion_study(root, tmp_path_factory) -> Path:
    work = project_with(root, tmp_path_factory.mktemp("lion"), "lion.yaml", small_lion)
    snakemake(work)
    return work


def test_the_lion_preset_puts_lion_beside_the_builtin_optimizers(lion_study):
    summary = pd.read_csv(lion_study / "results" / "studies" / "optimization" / "summary.csv")
    assert set(summary["optimizer"]) == {"sgd", "momentum", "rmsprop", "adam", "lion"}
    lion = summary[(summary["optimizer"] == "lion") & (summary["protocol"] == "oneshot")]
    assert lion["lr"].tolist() == [0.0001]  # its own default rate
    figures = lion_study / "results" / "studies" / "optimization" / "figures"
    assert (figures / "test_accuracy_heatmap.png").stat().st_size > 0
    assert "lion" in (lion_study / "results" / "report.json").read_text()
    assert (lion_study / "results" / "report.pdf").stat().st_size > 0


def test_editing_the_user_optimizer_reruns_exactly_its_jobs(lion_study, tmp_path):
    clone = tmp_path / "clone"
    shutil.copytree(lion_study, clone, symlinks=True)
    assert dry_run(clone) == {}
    edit(clone / "examples" / "lion.py")
    counts = dry_run(clone)
    assert counts["train"] == 1  # the one lion cell; the built-in cells stay
    assert "prepare_data" not in counts


def test_every_kind_of_extension_runs_through_the_workflow(root, tmp_path):
    work = project_with(root, tmp_path / "extras", "extras.yaml", small_extras)
    snakemake(work)
    summary = pd.read_csv(work / "results" / "studies" / "extensions" / "summary.csv")
    assert set(summary["problem"]) == {"iris_torch_mlp", "iris_mlp"}
    assert set(summary["optimizer"]) == {"adam", "lion", "nadam"}
    assert (summary[summary["protocol"] == "tuned"]["test_accuracy_mean"] > 0.6).all()
    report = json.loads((work / "results" / "report.json").read_text())
    assert "optimizer nadam: torch.optim:NAdam(momentum_decay=0.004)" in report["extensions"]
    assert "data set iris: csv_data:load_csv(path=examples/iris.csv)" in report["extensions"]
    figures = work / "results" / "studies" / "extensions" / "figures"
    assert (figures / "performance_profile.png").stat().st_size > 0  # across both problems
    # Each user file is an input of exactly the jobs that import it.
    expected = {
        "lion.py": {"train": 2},  # lion on both problems
        "nn_model.py": {"train": 3},  # the torch.nn model with each optimizer
        "csv_data.py": {"prepare_user_data": 1, "train": 6},  # the data set under everything
        "iris.csv": {"prepare_user_data": 1, "train": 6},
    }
    for name, jobs in expected.items():
        path = work / "examples" / name
        saved = path.read_bytes()
        stat = path.stat()
        edit(path)
        counts = dry_run(work)
        assert {k: counts.get(k, 0) for k in jobs} == jobs, name
        assert "prepare_data" not in counts, name
        path.write_bytes(saved)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert dry_run(work) == {}


def test_an_unimportable_optimizer_stops_snakemake_before_any_job(root, tmp_path):
    def broken(config: dict) -> None:
        config["optimizers"]["lion"]["class"] = "lion:Lino"

    work = project_with(root, tmp_path / "broken", "lion.yaml", broken)
    proc = snakemake(work, "-n", check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "optimizers.lion.class: cannot import 'lion:Lino'" in output
    assert "AttributeError: module 'lion' has no attribute 'Lino'" in output
    assert not (work / "results").exists()


def test_a_file_of_ones_own_in_a_module_deployment(root, tmp_path):
    """The workflow used as a module (as snakedeploy writes it): the user's file and config
    sit in the deployment folder, the jobs import the file from there, its optimizer is
    reported beside the built-in one, and editing the file reruns exactly its jobs."""
    config = yaml.safe_load((root / "examples" / "lion.yaml").read_text())
    small_lion(config)
    config.pop("extensions_path")  # the working directory is always searched
    config["optimizers"]["lion"]["class"] = "my_optim:Lion"
    config["studies"]["optimization"]["factors"]["optimizer"] = ["adam", "lion"]
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    work = module_folder(root, tmp_path / "my study", tmp_path / "study.yaml")
    shutil.copy(root / "examples" / "lion.py", work / "my_optim.py")
    snakemake(work)
    summary = pd.read_csv(work / "results" / "studies" / "optimization" / "summary.csv")
    assert set(summary["optimizer"]) == {"adam", "lion"}
    edit(work / "my_optim.py")
    assert dry_run(work)["train"] == 1


# The optimizers of issue 21 that need more than `zero_grad(); backward(); step()`, and two
# that do not (Lion; Prodigy, learning-rate-free), from their real packages.
THIRD_PARTY = ["lion", "prodigy", "sam", "lbfgs", "schedulefree"]


def small_third_party(config: dict) -> None:
    config["protocol"].update(
        lr_grid=[0.01, 0.1], lr_limits=[0.01, 0.1], tuning_seeds=[0], evaluation_seeds=[100, 101]
    )
    config["defaults"]["epochs"] = 2
    config["studies"]["third_party"]["factors"]["optimizer"] = THIRD_PARTY
    config["optimizers"] = {k: v for k, v in config["optimizers"].items() if k in THIRD_PARTY}


def test_third_party_optimizers_run_as_their_packages_document_to_the_report(root, tmp_path):
    pytest.importorskip("pytorch_optimizer")
    pytest.importorskip("schedulefree")
    work = project_with(root, tmp_path / "third", "third_party.yaml", small_third_party)
    snakemake(work)
    summary = pd.read_csv(work / "results" / "studies" / "third_party" / "summary.csv")
    assert set(summary["optimizer"]) == set(THIRD_PARTY)
    # Each learns (10 classes) at its tuned or its own rate; Prodigy, learning-rate-free,
    # only at its own 1.0: the grid's 0.1 scales its step size estimate too far down.
    best = summary.groupby("optimizer")["test_accuracy_mean"].max()
    assert (best > 0.8).all(), best
    report = json.loads((work / "results" / "report.json").read_text())
    assert (
        "optimizer sam: pytorch_optimizer:SAM(base_optimizer=torch.optim:SGD, rho=0.05, "
        "momentum=0.9)" in report["extensions"]
    )
    assert (work / "results" / "report.pdf").stat().st_size > 0


FAKE_PACKAGE = """\
import torch


class Fake(torch.optim.SGD):
    \"\"\"Plain SGD from an installed package.

    Args:
        params: the parameters.
        lr: the learning rate.
    \"\"\"

    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
"""


def install_fake(site: Path, version: str) -> None:
    """A distribution `fakeopt` of `version`, installed by being on PYTHONPATH."""
    for old in site.glob("fakeopt-*.dist-info"):
        shutil.rmtree(old)
    info = site / f"fakeopt-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fakeopt\nVersion: {version}\n")
    (info / "top_level.txt").write_text("fakeopt\n")
    (site / "fakeopt").mkdir(exist_ok=True)
    (site / "fakeopt" / "__init__.py").write_text(FAKE_PACKAGE)


def test_an_upgrade_of_an_optimizers_package_is_recorded_and_reruns_its_cells(root, tmp_path):
    def only_fake(config: dict) -> None:
        small_third_party(config)
        config["optimizers"] = {"fake": {"class": "fakeopt:Fake", "default_lr": 0.1}}
        config["studies"]["third_party"]["factors"]["optimizer"] = ["adam", "fake"]

    work = project_with(root, tmp_path / "fake", "third_party.yaml", only_fake)
    site = tmp_path / "site"
    install_fake(site, "1.0")
    env = {**os.environ, "PYTHONPATH": str(site)}
    snakemake(work, env=env)
    run = next((work / "results" / "studies").glob("third_party/*/*fake*/*/*.json"))
    assert json.loads(run.read_text())["provenance"]["packages"] == {"fakeopt": "1.0"}
    report = json.loads((work / "results" / "report.json").read_text())
    assert report["versions"]["fakeopt"] == "1.0"
    # Adam's cell stacked, the torch.optim one run at a time: the method text says so.
    execution = report["execution"]
    assert (execution["stacked"], execution["single"]) == (1, 1)
    assert execution["single_optimizers"] == ["fake"]
    assert dry_run(work, env=env) == {}
    install_fake(site, "1.1")
    counts = dry_run(work, env=env)
    assert counts["train"] == 1  # the fake cell; Adam's stays
