"""Logging for workflow jobs: everything a job says goes to its rule's log file."""

from __future__ import annotations

import logging
import sys


def log_to(path: str) -> None:
    """Send stderr (warnings, tracebacks) and the `optreg` loggers to the job's log file."""
    stream = open(path, "w", buffering=1)  # noqa: SIM115 - open for the job's lifetime
    sys.stderr = stream
    logging.basicConfig(
        stream=stream, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
