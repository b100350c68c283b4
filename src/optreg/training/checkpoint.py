"""Checkpoints: the whole state of an unfinished train job, so that a rerun resumes it exactly.

A checkpoint holds what decides the rest of the job: the runs finished so far (their
records or results), and for the stack in training its parameters, optimizer state, the
data-order generators' states, the epoch's shuffles, the position in the epoch and the
running sums of the epoch's metrics, its histories, and the phase. Initialization needs no
state: a resumed stack loads its parameters. It is written atomically (a killed writer leaves
the previous checkpoint), read with `torch.load(weights_only=True)` (plain tensors and
containers, no code), and only accepted when it was saved for the same job: the hash of the
job's settings, seeds, grid, tuning choice, data, device kind, threads and the source of the
modules that compute the numbers (`job_key`). Anything else is ignored with a log line.

Checkpoints live outside the job's outputs (Snakemake deletes those when a job fails), in
`checkpoints/` of the working directory. A job that succeeds marks its checkpoint finished
(with its records); the workflow removes it once Snakemake is done (`remove_finished`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from optreg.io import atomic_path, canonical_hash

log = logging.getLogger("optreg.training.checkpoint")


FORMAT = 1


# Numbers depend on these modules' code; a checkpoint saved by other code is not resumed.
_NUMERIC_MODULES = (
    "loop",
    "job",
    "models",
    "funcmodel",
    "seeds",
    "optimizers",
    "torch_optim",
    "penalties",
    "protocol",
    "checkpoint",
)


class Interrupted(Exception):
    """The job stopped on a signal after writing its checkpoint."""

    def __init__(self, signum: int, path: Path):
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}; checkpoint {path}")


def checkpoint_path(out_dir: str | os.PathLike, root: str | os.PathLike = "checkpoints") -> Path:
    """Where the checkpoint of the job writing `out_dir` lives: `root` plus `out_dir` without
    its first folder (`results/studies/s/tune/c/seeds-0-9` -> `checkpoints/studies/s/tune/c/
    seeds-0-9.pt`), so that a checkpoint is found next to nothing the workflow deletes."""
    parts = Path(out_dir).parts
    rest = parts[1:] if len(parts) > 1 else parts
    return Path(root, *rest[:-1], rest[-1] + ".pt")


def remove_finished(root: str | os.PathLike, results: str | os.PathLike) -> list[Path]:
    """Remove every checkpoint under `root` whose job's output folder exists in `results`.

    A finished job keeps its checkpoint (marked finished) until this runs after Snakemake is
    done: a job stopped between writing its files and Snakemake's end of it (SLURM's time
    limit while Snakemake wraps up) loses those files, and its rerun writes them again from
    the checkpoint instead of training again. Returns the paths removed.
    """
    removed = []
    for path in sorted(Path(root).rglob("*.pt")):
        relative = path.relative_to(root)
        if (Path(results) / relative.parent / relative.stem).is_dir():
            path.unlink()
            with contextlib.suppress(OSError):
                os.removedirs(path.parent)
            removed.append(path)
    return removed


def job_key(job: dict) -> str:
    """The hash a checkpoint must carry to be resumed by `job` (any JSON-able description)."""
    here = Path(__file__).parent
    code = {name: canonical_hash((here / f"{name}.py").read_text()) for name in _NUMERIC_MODULES}
    return canonical_hash({"job": job, "code": code, "format": FORMAT})


class Checkpoints:
    """The checkpoint file of one job: load, save every `every_s` seconds (None: only on a
    signal), remove. `due` is the monotonic time of the next save; a signal sets it to 0."""

    def __init__(self, path: str | os.PathLike, key: str, every_s: float | None):
        self.path, self.key, self.every_s = Path(path), key, every_s
        self.signum: int | None = None
        self.saves = 0
        self.due = math.inf
        self.schedule()

    def schedule(self) -> None:
        if self.signum is None:
            self.due = math.inf if self.every_s is None else time.monotonic() + self.every_s

    def load(self) -> dict | None:
        """The saved state, or None (no file; or unreadable or for other settings: logged)."""
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated, corrupt, not a torch file: all mean "start over"
            reason = f"it cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        else:
            if not isinstance(state, dict) or state.get("format") != FORMAT:
                reason = "it is not a checkpoint of this format"
            elif state.get("key") != self.key:
                reason = (
                    f"it was saved for other settings or code (key {str(state.get('key'))[:12]}, "
                    f"this job's {self.key[:12]})"
                )
            else:
                return state
        log.warning("ignoring checkpoint %s: %s; starting from the beginning", self.path, reason)
        return None

    def save(self, state: dict) -> None:
        """Write `state` atomically: a reader (or a kill mid-write) sees the old file or the new."""
        with atomic_path(self.path) as tmp:
            torch.save({**state, "format": FORMAT, "key": self.key, "saved": time.time()}, tmp)
        self.saves += 1
        self.schedule()

    @contextlib.contextmanager
    def on_signals(self, signums=(signal.SIGTERM, signal.SIGINT)) -> Iterator[None]:
        """While inside, SIGTERM and SIGINT only ask for a checkpoint at the next batch
        (the training loop then raises `Interrupted`). Main thread only, as Python wants."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request(signum, frame):
            self.signum = signum
            self.due = 0.0

        previous = {s: signal.signal(s, request) for s in signums}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
