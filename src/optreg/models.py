"""Models: an MLP whose parameters are stacked over seeds.

`StackedMLP` holds S independent networks, one per seed, as parameters with a
leading seed dimension, and evaluates them together with batched matrix
products. Slices never mix: slice s sees only its own weights and its own
inputs, so training the stack equals training S networks one at a time, at a
fraction of the per-step overhead. S = 1 is a plain MLP.
"""

from __future__ import annotations

import hashlib
import math

import torch
from torch import nn

ACTIVATIONS = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


def derived_seed(seed: int, purpose: str) -> int:
    """An independent 63-bit seed for one purpose ('init', 'order') of one run."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class StackedMLP(nn.Module):
    """S independent MLPs: input -> hidden layers with `activation` -> logits."""

    def __init__(self, in_features: int, hidden: list[int], n_classes: int, activation: str, seeds):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}")
        self.activation = ACTIVATIONS[activation]
        sizes = [in_features, *hidden, n_classes]
        stack = len(seeds)
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(stack, a, b)) for a, b in zip(sizes, sizes[1:], strict=False)
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(stack, 1, b)) for b in sizes[1:])
        # Glorot-uniform weights and zero biases (the Keras default the original study used),
        # drawn per seed so that a run's initialization does not depend on its stack mates.
        with torch.no_grad():
            for s, seed in enumerate(seeds):
                gen = torch.Generator().manual_seed(derived_seed(seed, "init"))
                for w in self.weights:
                    fan_in, fan_out = w.shape[1:]
                    bound = math.sqrt(6.0 / (fan_in + fan_out))
                    w[s].copy_(torch.rand(fan_in, fan_out, generator=gen) * 2 * bound - bound)

    @property
    def stack(self) -> int:
        return self.weights[0].shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [S, B, classes] for inputs [S, B, features] (or [B, features], shared)."""
        if x.dim() == 2:
            x = x.expand(self.stack, -1, -1)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = self.activation(x)
        return x

    def keep(self, mask: torch.Tensor) -> None:
        """Drop the slices where `mask` is False (diverged seeds).

        The parameters are replaced by new ones: autograd remembers a leaf's shape,
        so shrinking a parameter in place would break the next backward pass.
        """
        self.weights = nn.ParameterList(nn.Parameter(w.detach()[mask]) for w in self.weights)
        self.biases = nn.ParameterList(nn.Parameter(b.detach()[mask]) for b in self.biases)
