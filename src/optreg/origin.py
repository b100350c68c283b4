"""Where the running optreg code came from: recorded with every run."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path


@cache
def code_origin() -> dict:
    """The package's folder and, in a git checkout of optreg, its commit (else null).

    `modified` says whether tracked files differ from that commit, so a commit is not taken
    for the code that ran when it was not. A copy installed without a checkout is known by
    the `optreg` version recorded beside this.
    """
    package = Path(__file__).resolve().parent
    origin = {"path": str(package), "commit": None, "modified": None}

    def git(*args):
        return subprocess.run(
            ["git", "-C", str(package), *args], capture_output=True, text=True, timeout=30
        )

    try:
        top = git("rev-parse", "--show-toplevel")
        # Only optreg's own checkout: not a repository that merely holds an environment.
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() / "src" / "optreg" != package:
            return origin
        head, status = git("rev-parse", "HEAD"), git("status", "--porcelain", "-uno")
    except (OSError, subprocess.TimeoutExpired):
        return origin
    if head.returncode == 0:
        origin["commit"] = head.stdout.strip()
        origin["modified"] = bool(status.stdout.strip()) if status.returncode == 0 else None
    return origin
