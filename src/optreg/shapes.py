"""The input shape of one sample of each registered data set, known without loading it.

Config validation checks each problem's model against these before any job starts (a
CNN needs images large enough for its pooling), and must not import torch to do so.
`optreg.data.prepare` checks every prepared data set against this table, so it cannot drift.
A data set whose shape depends on its config is left out; its model then checks the shape
itself, when its train job starts.
"""

from __future__ import annotations

# Images are [channels, height, width]; a table is [features].
INPUT_SHAPES: dict[str, tuple[int, ...]] = {
    "digits": (1, 8, 8),
    "breast_cancer": (30,),
    "mnist": (1, 28, 28),
    "fashion_mnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
}
