"""The training arithmetic of a model and of a train job, known before anything is trained.

FLOPs of the products only: 6·a·b per sample and dense layer of a inputs and b outputs
(forward, and the gradients of its inputs and weights), 6·L_out·out·in·k per 1-D convolution
(stride 2, padding 1: `optreg.training.models.StackedCNN1d`), 6·H·W·out·in·9 per 3×3 2-D
convolution before its 2×2 pooling (`StackedCNN`). Elementwise work and the validation and
test passes are not counted. The benchmarks divide CPU time by it (`bench/study_flops.py`,
`bench/peer.py`, `bench/peak_fraction.py`); the workflow orders train jobs by it, the
largest first (`train_priorities`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from optreg.data.registry import dataset_entries, training_rows
from optreg.settings import ModelSpec


def flops_per_sample(model, input_shape: Sequence[int], classes: int) -> float | None:
    """Training FLOPs of one sample through built-in `model` (a ModelSpec or its dict) on
    inputs of `input_shape` with `classes` outputs; None for a user's model."""
    spec = ModelSpec.of(model)
    shape = [int(d) for d in input_shape]
    if spec.model == "mlp":
        sizes = [math.prod(shape), *(spec.hidden or ()), classes]
        return _dense(sizes)
    if spec.model != "cnn":
        return None
    flops, channels = 0.0, shape[0]
    if len(shape) == 2:  # 1-D: stride 2, padding 1
        length = shape[1]
        kernels = list(spec.kernel or ()) + [3] * (len(spec.channels) - len(spec.kernel or ()))
        for out, k in zip(spec.channels, kernels, strict=True):
            length = (length + 2 - k) // 2 + 1
            flops += 6.0 * length * out * channels * k
            channels = out
        features = channels * length
    else:  # 2-D: 3x3, padding 1, then 2x2 pooling
        height, width = shape[1], shape[2]
        for out in spec.channels:
            flops += 6.0 * height * width * out * channels * 9
            channels, height, width = out, height // 2, width // 2
        features = channels * height * width
    return flops + _dense([features, *(spec.dense or ()), classes])


def _dense(sizes: Sequence[int]) -> float:
    return sum(6.0 * a * b for a, b in zip(sizes, sizes[1:], strict=False))


def job_flops(job, config: dict, entries: dict | None = None) -> float | None:
    """Training FLOPs of a train job (`optreg.study.matrix.Job`): its runs × epochs ×
    training rows × FLOPs per sample; None where the data set's shape or size, or the model,
    is known only when loaded (a user's). `entries`: the config's data sets, where known."""
    settings = job.cell.settings
    entry = (entries or dataset_entries(config))[settings.dataset]
    shape = entry.shape(entry.generation_args(config))
    rows = training_rows(entry, config)
    if shape is None or rows is None or entry.classes is None:
        return None
    per_sample = flops_per_sample(settings.model, shape, entry.classes)
    if per_sample is None:
        return None
    rows = min(rows, settings.data.get("train_size") or rows)
    return job.runs * settings.epochs * rows * per_sample


def train_priorities(jobs: Iterable, config: dict) -> dict[tuple, float]:
    """Each train job's Snakemake priority, by (study, phase, cell id, block), below 1 (a
    data set's preparation: 1): its FLOPs over the largest job's, so that ready jobs start
    largest first and the short ones fill the cores at the end (longest processing time
    first). A job of unknown size ranks with the largest."""
    entries = dataset_entries(config)
    flops = {(j.study, j.phase, j.cell.id, j.block): job_flops(j, config, entries) for j in jobs}
    largest = max((f for f in flops.values() if f), default=1.0)
    return {key: 0.99 * (f or largest) / largest for key, f in flops.items()}
