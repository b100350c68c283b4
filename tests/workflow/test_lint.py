"""Lint is part of the tests: Snakemake's linter, snakefmt and ruff must be clean."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run(root, *cmd):
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)


def test_snakemake_lint(root):
    proc = run(
        root, sys.executable, "-m", "snakemake", "--lint", "--configfile", "config/smoke.yaml"
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Congratulations" in out, out


def test_snakefmt(root):
    proc = run(root, sys.executable, "-m", "snakefmt", "--check", "workflow")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("args", [("check",), ("format", "--check")])
def test_ruff(root, args):
    proc = run(root, sys.executable, "-m", "ruff", *args, ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr
