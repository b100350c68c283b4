"""Training FLOPs of models and train jobs, and the train jobs' priorities."""

from __future__ import annotations

import math

import pytest
import torch

from optreg.study.flops import flops_per_sample, job_flops, train_priorities
from optreg.study.matrix import jobs
from optreg.study.validate import load_config
from optreg.training.models import StackedCNN, StackedCNN1d, StackedMLP


def test_an_mlps_flops_are_six_per_weight():
    # Forward, and the gradients of inputs and weights: three products of in x out per sample.
    model = StackedMLP(40, [100, 100, 100], 10, "relu", [0])
    weights = sum(w[0].numel() for w in model.weights)
    spec = {"model": "mlp", "hidden": [100, 100, 100]}
    assert flops_per_sample(spec, [1, 40], 10) == 6 * weights == 6 * 25_000
    assert flops_per_sample({"model": "mlp", "hidden": []}, [30], 2) == 6 * 30 * 2


@pytest.mark.parametrize(
    "spec, shape",
    [
        ({"model": "cnn", "channels": [16, 16, 16], "kernel": [5, 3, 3]}, (1, 40)),
        ({"model": "cnn", "channels": [8, 4]}, (1, 40)),  # kernels default to 3
        ({"model": "cnn", "channels": [8, 16], "dense": [32]}, (1, 8, 8)),
    ],
)
def test_a_cnns_flops_follow_its_layers(spec, shape):
    # Each convolution's weights times the positions it is applied at (read off the model's
    # own output), and six per dense weight.
    channels, dense = spec["channels"], spec.get("dense", [])
    if len(shape) == 2:
        model = StackedCNN1d(shape, channels, 10, "relu", [0], dense, spec.get("kernel", ()))
    else:
        model = StackedCNN(shape, channels, 10, "relu", [0], dense)
    convs, dims = model.weights[: len(channels)], list(shape[1:])
    expected = 0.0
    for w in convs:
        if len(shape) == 2:
            dims = [(dims[0] + 2 - w.shape[-1]) // 2 + 1]
            expected += 6 * dims[0] * w[0].numel()
        else:
            expected += 6 * math.prod(dims) * w[0].numel()
            dims = [d // 2 for d in dims]
    expected += sum(6 * w[0].numel() for w in model.weights[len(channels) :])
    assert flops_per_sample(spec, shape, 10) == pytest.approx(expected)
    assert model(torch.zeros(1, 2, math.prod(shape))).shape == (1, 2, 10)


def test_a_user_model_has_no_count():
    assert flops_per_sample({"model": "torch_mlp", "factory": "m:f"}, [4], 3) is None


def test_a_jobs_flops_are_its_runs_epochs_rows_and_model(root):
    config = load_config(root / "config" / "config.yaml")
    job = next(
        j
        for j in jobs(config)
        if j.trains and j.study == "optimization" and j.cell.factors["depth"] == 3
    )
    # 3,200 MNIST-1D training signals of 40 values; three layers of 100.
    assert job_flops(job, config) == job.runs * job.cell.settings.epochs * 3200 * 6 * 25_000
    overfit = next(j for j in jobs(config) if j.trains and j.study == "regularization")
    per_sample = 6 * (40 * 256 + 256 * 256 + 256 * 10)
    epochs = overfit.cell.settings.epochs
    assert job_flops(overfit, config) == overfit.runs * epochs * 800 * per_sample  # train_size


def test_a_user_data_set_or_model_is_of_unknown_size(root):
    config = load_config(root / "examples" / "extras.yaml")
    trains = [j for j in jobs(config) if j.trains]
    assert trains and all(job_flops(j, config) is None for j in trains)
    assert set(train_priorities(trains, config).values()) == {0.99}  # ranked with the largest


def test_train_jobs_start_largest_first_and_after_the_data(root):
    config = load_config(root / "config" / "config.yaml")
    trains = [j for j in jobs(config) if j.trains]
    priorities = train_priorities(trains, config)
    assert len(priorities) == len(trains)
    # Below the data sets' preparation (priority 1 in workflow/rules/data.smk).
    assert max(priorities.values()) == 0.99 and min(priorities.values()) > 0
    by_key = {(j.study, j.phase, j.cell.id, j.block): j for j in trains}
    order = sorted(priorities, key=priorities.get, reverse=True)
    first, last = by_key[order[0]], by_key[order[-1]]
    assert first.study == "optimization" and first.cell.factors["depth"] == 3
    assert last.cell.settings.problem == "cancer_mlp"
    flops = {key: job_flops(by_key[key], config) for key in order}
    assert [flops[k] for k in order] == sorted(flops.values(), reverse=True)
