"""docs/extending.md works as written: each of its bash blocks, run in order from the root
of a copy of the project, with every `snakemake` command as a dry run (which validates the
config, imports the user's modules and plans every job)."""

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

PAGE = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
BLOCKS = re.findall(r"^```bash\n(.*?)^```", PAGE.read_text(), re.M | re.S)


def test_the_page_has_commands():
    assert sum("snakemake" in block for block in BLOCKS) >= 3


@pytest.mark.parametrize("block", BLOCKS, ids=[b.splitlines()[-1][:60] for b in BLOCKS])
def test_block_runs_as_written(root, tmp_path, block):
    work = copy_project(root, tmp_path / "optreg")
    shutil.copytree(root / "docs", work / "docs")
    script = re.sub(r"^snakemake\b(?!.*\s-n\b)", "snakemake -n", block, flags=re.M)
    proc = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
    )
    assert proc.returncode == 0, f"{script}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "train" in proc.stdout + proc.stderr  # it planned training jobs
