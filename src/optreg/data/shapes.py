"""What the models do to a sample's shape, computed without torch.

Config validation checks each CNN problem against its data set's input shape (from the
registry, `optreg.data.registry`) before any job starts, and must not import torch to do so.
"""

from __future__ import annotations


def conv1d_length(length: int, kernels: list[int]) -> int:
    """Signal length after the 1-D CNN's stride-2, padding-1 convolutions
    (optreg.training.models)."""
    for k in kernels:
        length = (length + 2 - k) // 2 + 1
    return length
