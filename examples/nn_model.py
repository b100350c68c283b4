"""A model from plain torch.nn layers: an MLP with dropout-free hidden layers.

A model factory returns a `torch.nn.Module` mapping inputs [batch, *input_shape] to
logits [batch, n_classes]. It may ask for any of `input_shape`, `n_features`,
`n_classes` and `activation` (the study's factor) by name; the entry's `kwargs` in the
config give the rest. optreg seeds torch's generator from the run's seed before calling
it, so the layers' own initializations are reproducible per run.
"""

import math

from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def mlp(input_shape, n_classes, activation, hidden=(32,)):
    layers = [nn.Flatten()]
    width = math.prod(input_shape)
    for size in hidden:
        layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
        width = size
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)
