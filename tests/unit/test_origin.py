"""Where a run's code came from: the package's folder and its checkout's commit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "import json; from optreg.origin import code_origin; print(json.dumps(code_origin()))"


def origin(src: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", ORIGIN],
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def commit_all(repo: Path) -> str:
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    return git(repo, "rev-parse", "HEAD")


def test_a_checkout_records_its_commit_and_whether_it_was_modified(tmp_path):
    package = tmp_path / "optreg" / "src" / "optreg"
    shutil.copytree(ROOT / "src" / "optreg", package, ignore=shutil.ignore_patterns("__pycache__"))
    head = commit_all(tmp_path / "optreg")
    found = origin(package.parent)
    assert found == {"path": str(package.resolve()), "commit": head, "modified": False}
    with open(package / "analysis" / "stats.py", "a") as fh:
        fh.write("\n")
    assert origin(package.parent)["modified"] is True


def test_a_copy_that_is_no_checkout_of_optreg_records_no_commit(tmp_path):
    # A repository that merely holds the package (as one holding an environment would).
    package = tmp_path / "env" / "lib" / "optreg"
    shutil.copytree(ROOT / "src" / "optreg", package, ignore=shutil.ignore_patterns("__pycache__"))
    commit_all(tmp_path / "env")
    assert origin(package.parent) == {
        "path": str(package.resolve()),
        "commit": None,
        "modified": None,
    }
