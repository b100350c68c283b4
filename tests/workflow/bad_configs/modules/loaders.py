"""Data set loaders whose arrays do not fit a classification problem."""

import numpy as np


def _x(n=60, features=4):
    return np.random.default_rng(0).normal(size=(n, features))


def _y(n=60, classes=3):
    return np.arange(n) % classes


def non_finite():
    x = _x()
    x[5, 2] = np.nan
    return x, _y()


def labels_out_of_range():
    y = _y()
    y[0] = 1000
    return _x(), y


def label_gaps():
    return _x(), _y() * 3  # labels 0, 3, 6: a 7-class model for 3 classes


def one_class():
    return _x(), np.zeros(60, dtype=int)


def different_lengths():
    return _x(60), _y(59)


def text_features():
    return np.array([["a", "b", "c", "d"]] * 60), _y()


def too_few_rows():
    return _x(12), _y(12, classes=6)


def float_labels():
    return _x(), _y().astype(float) + 0.5


def fits():
    return _x(), _y()
