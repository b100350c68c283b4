"""Every `snakemake` command in the README and in docs/ runs as written.

Commands are taken from the ```bash blocks of README.md and every docs/*.md page (so pages
added later are covered too) and run from the root of a copy of the project. A command that
only looks (a dry run, the rule list, the rule graph, the lint) runs as written; one that would
train runs as a dry run (`-n` added), which still parses the workflow with that command line,
validates the config and plans every job. A few cannot run here, each for the reason given.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import copy_project

pytestmark = pytest.mark.workflow

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LOOKS = ("-n", "--dry-run", "--dryrun", "--list-rules", "--rulegraph", "--dag", "--lint")


def commands(page: Path) -> list[str]:
    """The `snakemake` command lines of a page's bash blocks (continuations joined, comments
    dropped)."""
    found = []
    blocks = re.findall(r"^[ \t]*```bash\n(.*?)^[ \t]*```", page.read_text(), re.M | re.S)
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if re.match(r"(\w+=\S+ )*snakemake\b", line):
                found.append(line)
    return found


# Each command once, with the first page that shows it.
CASES = list({cmd: (page, cmd) for page in reversed(PAGES) for cmd in commands(page)}.values())


def why_not_here(cmd: str) -> str | None:
    """Why a command cannot run in the test environment, or None."""
    if "--report" in cmd:
        return "needs a finished run (tests/workflow/test_deploy.py builds the report of one)"
    if "--sdm conda" in cmd and shutil.which("conda") is None:
        return "needs conda, which CI lacks (tests/workflow/test_envs.py checks the environments)"
    if "| dot " in cmd and shutil.which("dot") is None:
        return "needs Graphviz's dot"
    return None


def as_run_here(cmd: str) -> str:
    """The command as the test runs it: as written, or as a dry run when it would train."""
    words = cmd.split("|")[0].split()
    if any(flag in words for flag in LOOKS):
        return cmd
    return re.sub(r"\bsnakemake\b", "snakemake -n", cmd, count=1)


def test_the_pages_have_commands():
    assert len(CASES) >= 10 and any(p.name == "README.md" for p, _ in CASES)


@pytest.mark.parametrize(("page", "cmd"), CASES, ids=[f"{p.name}:{c}" for p, c in CASES])
def test_command_runs_as_written(root, tmp_path, page, cmd):
    reason = why_not_here(cmd)
    if reason:
        pytest.skip(reason)
    work = copy_project(root, tmp_path / "optreg")
    shutil.copytree(root / "docs", work / "docs")
    for name in re.findall(r"--configfile (\S+)", cmd):
        if not (work / name).exists():
            # A study file of the reader's own: the smoke preset stands in for it.
            shutil.copy(root / "config" / "smoke.yaml", work / name)
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", as_run_here(cmd)],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        # `snakemake` as the reader's shell finds it: the one beside this Python.
        env={
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
    )
    assert proc.returncode == 0, f"{page.name}: {cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_links_between_pages_resolve(page):
    for target in re.findall(r"\]\(([^)#\s]+)", page.read_text()):
        if re.match(r"\w+:", target):
            continue  # a web address
        path = (page.parent / target).resolve()
        assert path.exists(), f"{page.name} links to {target}, which does not exist"


def test_readme_is_a_front_door():
    """Short enough to read in three minutes; the depth is in docs/."""
    assert len((ROOT / "README.md").read_text()) < 8000
