"""Model factories that do not fit the problem they are given."""

import math

from torch import nn


def too_many_logits(input_shape, n_classes):
    """Ten more outputs than classes: would train, its extra logits never a label."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), n_classes + 10))


def not_a_module(input_shape, n_classes):
    """The layer's class, not a layer."""
    return nn.Linear


def fits(input_shape, n_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), n_classes))
