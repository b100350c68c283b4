"""The corpus of malformed configs: each fails before any job, naming the problem.

Every file in tests/bad_configs/ starts with `# expect: <text>`, the text its error
message must contain.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from optreg.config import ConfigError, load_config

CORPUS = sorted((Path(__file__).parent / "bad_configs").glob("*.yaml"))
# Errors that Snakemake raises itself while reading the file, before the workflow runs.
SNAKEMAKE_LEVEL = "Config file"


def expected(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), path
    return first.removeprefix("# expect: ")


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 25


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_package_validation_names_the_problem(path):
    if expected(path).startswith(SNAKEMAKE_LEVEL):
        pytest.skip("rejected by Snakemake's own config loader")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert expected(path) in str(err.value)


@pytest.fixture(scope="module")
def project(root, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("bad")
    for name in ("workflow", "scripts", "config", "envs", "profiles", "src"):
        shutil.copytree(root / name, work / name, symlinks=True)
    return work


@pytest.mark.workflow
@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_snakemake_refuses_before_any_job(project, path):
    shutil.copy(path, project / "config" / "config.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert expected(path) in out, out
    assert not (project / "results").exists()
    assert not (project / "logs").exists()
