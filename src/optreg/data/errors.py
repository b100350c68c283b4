"""The error of a data set that cannot be prepared or loaded."""

from __future__ import annotations


class DataError(RuntimeError):
    """A dataset that cannot be prepared; the message names the dataset, folder and files."""
