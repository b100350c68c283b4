"""A train job's process: its start and its end, without Python's garbage-collection costs.

A train job is a fresh Python process that imports torch, trains for seconds and exits, and a
study runs dozens of them. Importing torch creates some hundred thousand objects; Python's
cyclic garbage collector scans them again and again while they are created and on every
full collection after, and at exit the interpreter collects and frees them all one by one.
Neither finds garbage worth the time: the modules live as long as the process. For a train
job of a small cell the two are a large share of its process's CPU time (`bench/process.py`
measures it, side by side with the script as it was).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
from collections.abc import Iterator
from typing import NoReturn


@contextlib.contextmanager
def imports_uncollected() -> Iterator[None]:
    """Import the job's modules inside: the collector is off while they load, and what they
    made is frozen after (`gc.freeze`), so that no later collection scans it again. Objects
    made afterwards are collected as usual."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _flush(stream) -> None:
    with contextlib.suppress(Exception):  # a closed or broken stream has nothing to keep
        stream.flush()


def exit_now(status: int = 0) -> NoReturn:
    """End the process with `status` without the interpreter's teardown (atexit handlers,
    freeing every object): `os._exit`, after the logs (`logging.shutdown`: every handler
    flushed and closed, the job's log file included) and the standard streams are flushed.

    Only once the job's outputs are written and closed: its files are renamed into place by
    then (`optreg.training.job.run_job` writes them into a temporary folder first), so nothing the
    teardown would do is left to do. An exception that ends a job is not for this: its
    traceback goes to the log and its status stays Python's own.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            _flush(stream)
    if sys.stderr is not sys.__stderr__ and sys.stderr is not None:
        with contextlib.suppress(Exception):
            sys.stderr.close()  # the job's log file (optreg.logs.log_to)
    os._exit(status)
