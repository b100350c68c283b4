"""What a training loop reports between batches: progress lines and checkpoints."""

from __future__ import annotations

import logging
import signal
import time

from optreg.training.checkpoint import Checkpoints, Interrupted
from optreg.training.progress import Progress

log = logging.getLogger(__name__)


class Watch:
    """Where a job's training loop reports between batches and after each epoch: progress
    lines (`optreg.training.progress`) and checkpoints (`optreg.training.checkpoint`, None:
    none are written).

    `due` is the monotonic time at which the loop must next call `between_batches`: the
    next progress line during a long epoch, the next checkpoint, or 0 after a signal.
    `job_state` is run_job's part of a checkpoint (phase, finished phases' records).
    """

    def __init__(self, progress: Progress, checkpoints: Checkpoints | None = None):
        self.progress, self.checkpoints = progress, checkpoints
        self.phase = ""
        self.job_state: dict = {}
        self.step_results: list = []
        self.step_started = time.perf_counter()

    @property
    def due(self) -> float:
        if self.checkpoints is None:
            return self.progress.due
        return min(self.progress.due, self.checkpoints.due)

    def start_stack(self, step_results: list) -> None:
        """A stack starts; `step_results`: the results of the phase's finished stacks."""
        self.step_results = step_results
        self.progress.start_epoch()

    def between_batches(self, epoch: int, epochs: int, end: int, n: int, snapshot) -> None:
        """After the batch that ends at sample `end` of `n`; `snapshot()` is the stack's state."""
        now, checkpoints = time.monotonic(), self.checkpoints
        where = f"{self.phase} epoch {epoch}/{epochs}, {end}/{n} samples"
        if checkpoints is not None and now >= checkpoints.due:
            started = time.perf_counter()
            checkpoints.save(
                {
                    **self.job_state,
                    "step_results": self.step_results,
                    "step_wall": time.perf_counter() - self.step_started,
                    "progress_done": self.progress.done,
                    "stack": snapshot(),
                }
            )
            if checkpoints.signum is not None:
                name = signal.Signals(checkpoints.signum).name
                log.warning(
                    "%s: checkpoint %s written at %s; stopping", name, checkpoints.path, where
                )
                raise Interrupted(checkpoints.signum, checkpoints.path)
            log.info(
                "checkpoint %s written at %s in %.2g s",
                checkpoints.path,
                where,
                time.perf_counter() - started,
            )
        if now >= self.progress.due:
            self.progress.during_epoch(self.phase, epoch, epochs, end, n)

    def end_epoch(self, epoch: int, epochs: int, **numbers) -> None:
        self.progress.end_epoch(self.phase, epoch, epochs, **numbers)
