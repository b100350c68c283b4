"""The input shape of one sample of each registered data set, known without loading it.

Config validation checks each problem's model against these before any job starts (a
CNN needs images large enough for its pooling), and must not import torch to do so.
`optreg.data.datasets.prepare` checks every prepared data set against this table, so it
cannot drift.
MNIST-1D's signal length is one of its generation arguments (`data.mnist1d.final_seq_length`),
so its shape comes from the config (`input_shape`).
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


def input_shape(dataset: str, config: dict) -> tuple[int, ...] | None:
    """The shape of one sample of `dataset` under `config`; None for a data set not described
    here (its model checks the shape when its train job starts)."""
    if dataset == "mnist1d":
        return (1, int(config["data"]["mnist1d"]["final_seq_length"]))
    return INPUT_SHAPES.get(dataset)


def conv1d_length(length: int, kernels: list[int]) -> int:
    """Signal length after the 1-D CNN's stride-2, padding-1 convolutions
    (optreg.training.models)."""
    for k in kernels:
        length = (length + 2 - k) // 2 + 1
    return length
