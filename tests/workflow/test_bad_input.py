"""The corpus of malformed configs: each fails before any job, naming the problem.

Every file in tests/workflow/bad_configs/ starts with `# expect: <text>`, the text its error
message must contain.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from optreg.study.config_files import read_config_file
from optreg.study.errors import ConfigError
from optreg.study.validate import load_config, validate_config

CORPUS = sorted((Path(__file__).parent / "bad_configs").glob("*.yaml"))
# The user modules the corpus names, by their path from the repository root.
MODULES = "tests/workflow/bad_configs/modules"
# Errors that Snakemake raises itself while reading the file, before the workflow runs.
SNAKEMAKE_LEVEL = "Config file"
# A frame of the package's or a script's code in the output: a crash, not a message. (For
# an error raised in the workflow, Snakemake names the rules file and line it came from.)
PROJECT_FRAME = re.compile(r'File "[^"]*(/src/optreg/|/scripts/)')


def expected(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), path
    return first.removeprefix("# expect: ")


def command_line(path: Path) -> list[str]:
    """The `--config` entry a case is typed with, if any (its second line)."""
    second = path.read_text().splitlines()[1]
    return [second.removeprefix("# config: ")] if second.startswith("# config: ") else []


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 60
    assert sum(bool(command_line(p)) for p in CORPUS) >= 5


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_package_validation_names_the_problem(path, root, monkeypatch):
    if expected(path).startswith(SNAKEMAKE_LEVEL):
        pytest.skip("rejected by Snakemake's own config loader")
    monkeypatch.chdir(root)  # relative paths in a config resolve from the working directory
    with pytest.raises(ConfigError) as err:
        if command_line(path):
            # What Snakemake does with --config: parse each entry, merge it into the file's.
            from snakemake.cli import parse_config
            from snakemake.utils import update_config

            config = read_config_file(path)
            update_config(config, parse_config(command_line(path)))
            validate_config(config)
        else:
            load_config(path)
    assert expected(path) in str(err.value)


def test_whole_number_floats_and_nan_are_refused_everywhere_a_number_is(smoke_config):
    """Every integer and every number of the schema, not only the corpus's examples."""
    bad = copy.deepcopy(smoke_config)
    bad["seeds_per_job"] = 2.0
    bad["threads"] = {"train": 1.0}
    bad["data"] = {"split_seed": 0.0, "test_fraction": float("nan")}
    bad["problems"]["digits_cnn"]["channels"] = [4.0, 8]
    bad["studies"]["regularization"]["factors"]["strength"] = [float("inf"), 0.01]
    with pytest.raises(ConfigError) as err:
        validate_config(bad)
    for where in (
        "seeds_per_job: 2.0",
        "threads.train: 1.0",
        "data.split_seed: 0.0",
        "data.test_fraction: nan",
        "problems.digits_cnn.channels[0]: 4.0",
        "studies.regularization.factors.strength[0]: inf",
    ):
        assert where in str(err.value)


def test_every_pattern_is_matched_in_full(smoke_config):
    """Each name the schema constrains by a pattern, with a newline after a valid name."""
    for edit in (
        lambda c: c["studies"].update({"ok\n": c["studies"].pop("problems")}),
        lambda c: c["problems"].update({"ok\n": c["problems"]["digits_mlp"]}),
        lambda c: c.update(gpu_model="H100\n"),
    ):
        bad = copy.deepcopy(smoke_config)
        edit(bad)
        with pytest.raises(ConfigError, match=r"\\n"):
            validate_config(bad)


def test_duplicate_key_at_any_depth_names_key_and_lines(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a:\n  b:\n    - {x: 1, x: 2}\n")
    with pytest.raises(ConfigError, match="key 'x' is given twice, on lines 3 and 3"):
        read_config_file(path)
    path.write_text("a: 1\nb: 2\n")
    assert read_config_file(path) == {"a": 1, "b": 2}
    assert yaml.safe_load(path.read_text()) == read_config_file(path)


@pytest.fixture(scope="module")
def project(root, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("bad")
    for name in ("workflow", "scripts", "config", "envs", "profiles", "src", MODULES):
        shutil.copytree(root / name, work / name, symlinks=True)
    return work


@pytest.mark.workflow
@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_snakemake_refuses_before_any_job(project, path):
    shutil.copy(path, project / "config" / "config.yaml")
    config = ["--config", *command_line(path)] if command_line(path) else []
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", *config],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert expected(path) in out, out
    assert "Traceback (most recent call last)" not in out, out
    assert not PROJECT_FRAME.search(out), out
    assert not (project / "results").exists()
    assert not (project / "logs").exists()


@pytest.mark.workflow
def test_cuda_on_a_machine_without_a_gpu_is_refused_where_the_jobs_would_run_here(project):
    """Issue 24: every train job failed. A dry run (which may plan a SLURM submission from a
    login node without a GPU) only warns."""
    shutil.copy(project / "config" / "smoke.yaml", project / "config" / "config.yaml")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no GPU, whatever this machine has
    run = [sys.executable, "-m", "snakemake", "--cores", "1", "--config", "device=cuda"]
    message = "device: 'cuda', but this machine shows no GPU (CUDA_VISIBLE_DEVICES='' hides"
    proc = subprocess.run(run, cwd=project, capture_output=True, text=True, env=env, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert message in out, out
    assert "Traceback (most recent call last)" not in out, out
    assert not (project / "results").exists()
    assert not (project / "logs").exists()
    proc = subprocess.run(
        [*run, "-n"], cwd=project, capture_output=True, text=True, env=env, timeout=120
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"Warning: {message}" in out, out
    assert not (project / "results").exists()


# ---- valid input that must run (issue 24, class 8)
VALID = {
    "unsorted_rate_grid": lambda c: c["protocol"].update(lr_grid=[0.1, 0.01]),
    "threads_above_the_cores": lambda c: c.update(threads={"train": 64, "prepare_data": 64}),
    "huge_finite_checkpoint_interval": lambda c: c.update(checkpoint={"every_minutes": 1e300}),
}


def merge_keys(smoke_text: str) -> str:
    """config/smoke.yaml with a problem written as another's, merged in (`<<: *anchor`)."""
    old = "  cancer_mlp: {dataset: breast_cancer, model: mlp, hidden: [8]}"
    assert old in smoke_text
    text = smoke_text.replace(
        "  digits_mlp: {dataset: digits, model: mlp, hidden: [16]}",
        "  digits_mlp: &mlp {dataset: digits, model: mlp, hidden: [16]}",
    )
    return text.replace(
        old, "  cancer_mlp:\n    <<: *mlp\n    dataset: breast_cancer\n    hidden: [8]"
    )


def test_merge_keys_give_the_config_written_out(root, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(merge_keys((root / "config" / "smoke.yaml").read_text()))
    merged = load_config(path)
    assert merged == load_config(root / "config" / "smoke.yaml")
    assert merged["problems"]["cancer_mlp"]["dataset"] == "breast_cancer"


@pytest.mark.parametrize("case", sorted(VALID))
def test_valid_input_gives_the_jobs_of_the_plain_config(smoke_config, case):
    from optreg.study.matrix import jobs

    def planned(config):
        return [
            (j.study, j.cell.id, j.block, j.cell.lr_grid) for j in jobs(validate_config(config))
        ]

    edited = copy.deepcopy(smoke_config)
    VALID[case](edited)
    assert planned(edited) == planned(smoke_config)


@pytest.mark.workflow
@pytest.mark.parametrize("case", ["merge_keys", *sorted(VALID)])
def test_valid_input_plans_its_jobs(project, root, case):
    smoke = (root / "config" / "smoke.yaml").read_text()
    if case == "merge_keys":
        text = merge_keys(smoke)
    else:
        config = yaml.safe_load(smoke)
        VALID[case](config)
        text = yaml.safe_dump(config, sort_keys=False)
    (project / "config" / "config.yaml").write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", "-n"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"^train\s+\d+$", out, re.M), out  # the job stats list the train jobs
    assert not (project / "results").exists()
