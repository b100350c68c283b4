"""A data set from a CSV file: numeric feature columns and a label column.

A loader returns arrays: pooled `(x, y)`, which optreg cuts into stratified
train/validation/test parts, or `(x_train, y_train, x_test, y_test)` to keep an official
test part. Labels are integers 0..classes-1. optreg standardizes the features with the
train split's statistics, fingerprints the result and stores it like the built-in sets.
"""

import csv
from pathlib import Path

import numpy as np


def load_csv(path, label="species"):
    """Rows of the CSV file at `path` (relative to the working directory); the `label`
    column's distinct values become classes 0, 1, ... in sorted order."""
    with open(Path(path), newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{path}: no rows")
    features = [name for name in rows[0] if name != label]
    x = np.array([[float(row[name]) for name in features] for row in rows])
    classes = sorted({row[label] for row in rows})
    y = np.array([classes.index(row[label]) for row in rows])
    return x, y
