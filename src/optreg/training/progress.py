"""Progress lines of a train job, for `tail -f` on its log.

A start line (what the job trains and where), one line per epoch of every stack (and, during
an epoch longer than `every_s`, a line each `every_s` seconds), and an end line. Each line is
one logging record, which the job's log handler writes and flushes at once. The estimated
time left counts run-epochs: the job's remaining runs times their remaining epochs, at the
pace of the run-epochs trained since this process started (a stack trains its runs in
parallel, so the pace follows the stack size of the job, not the number of stacks).
"""

from __future__ import annotations

import logging
import statistics
import time

log = logging.getLogger("optreg.training.progress")


# Seconds between two lines while one epoch runs longer than this.
EVERY_S = 60.0


def duration(seconds: float) -> str:
    """`42s`, `3m05s`, `2h07m`: short enough for a progress line."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _median(values) -> str:
    return f"{statistics.median(values):.4g}" if values else "-"


def _best(values) -> str:
    return f"{max(values):.4f}" if values else "-"


class Progress:
    """Progress of one job: `total` run-epochs over its phases; lines name `study` and `cell`."""

    def __init__(self, study: str, cell: str, total: int, every_s: float = EVERY_S):
        self.where = f"{study} {cell}"
        self.total, self.done = total, 0
        self.every_s = every_s
        self.started = time.monotonic()
        self.done_at_start = 0  # run-epochs a resumed job had trained before this process
        self.epoch_started = self.started
        self.due = self.started + every_s

    def resumed(self, done: int) -> None:
        """Count `done` run-epochs as trained before this process (not in its pace)."""
        self.done = self.done_at_start = done

    def _eta(self) -> str:
        trained = self.done - self.done_at_start
        if trained <= 0:
            return "?"
        pace = (time.monotonic() - self.started) / trained
        return duration(pace * (self.total - self.done))

    def start_epoch(self) -> None:
        self.epoch_started = time.monotonic()
        self.due = self.epoch_started + self.every_s

    def during_epoch(self, phase: str, epoch: int, epochs: int, samples: int, n: int) -> None:
        """A line in the middle of a long epoch: how far into it the job is."""
        now = time.monotonic()
        self.due = now + self.every_s
        pace = (now - self.epoch_started) / max(samples, 1) * n
        log.info(
            "%s %s epoch %d/%d, %d/%d samples | about %.3g s/epoch",
            self.where,
            phase,
            epoch,
            epochs,
            samples,
            n,
            pace,
        )

    def end_epoch(
        self,
        phase: str,
        epoch: int,
        epochs: int,
        *,
        training: int,
        diverged: int,
        train_loss,
        val_accuracy,
        dropped: int,
    ) -> None:
        """The line of a finished epoch. `train_loss`, `val_accuracy`: the finite values of the
        runs that trained it; `dropped`: runs that diverged in it (their epochs left are done)."""
        now = time.monotonic()
        self.done += training + dropped + dropped * (epochs - epoch)
        log.info(
            "%s %s epoch %d/%d | runs %d training, %d diverged | train loss median %s"
            " | val acc best %s median %s | %.3g s/epoch | ETA %s",
            self.where,
            phase,
            epoch,
            epochs,
            training,
            diverged,
            _median(train_loss),
            _best(val_accuracy),
            _median(val_accuracy),
            now - self.epoch_started,
            self._eta(),
        )
        self.epoch_started = now
        self.due = now + self.every_s

    def finish(self, runs: int, diverged: int) -> None:
        log.info(
            "%s done: %d runs trained (%d diverged) in %s",
            self.where,
            runs,
            diverged,
            duration(time.monotonic() - self.started),
        )
