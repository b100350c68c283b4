"""Training throughput: `train_runs` against a minimal PyTorch loop, stacked against one by one.

Usage: python bench/throughput.py [--config config/config.yaml] [--repeats 15]

On the default cell's model (the first of `bench/common.py:default_cells`; 10 epochs, the
config's `threads.train` torch threads, as in a train job), four ways of training take turns
within each repetition, in an order rotated each repetition: a minimal hand-written loop
(`nn.Linear` layers, `torch.optim`, nothing but training steps), `train_runs` with one run,
`train_runs` with 5 seeds stacked, and 5 one-run `train_runs` calls one after the other. It
prints their samples per CPU second and per wall second, and two ratios with targets, each
the median over repetitions of the ratio within one: one run of `train_runs` against the
minimal loop (>= 0.95), 5 stacked against 5 one by one (>= 3). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import common
import torch
import torch.nn.functional as F
from common import cpu_and_wall, default_cells, interleaved, paired_ratio, prepare_for, row
from torch import nn

from optreg.data.prepared import load_prepared
from optreg.training.loop import train_runs
from optreg.training.reference import plain_optimizer

CPU = torch.device("cpu")


def minimal_loop(data, settings: dict, seed: int) -> None:
    """The least a PyTorch user writes to train this MLP: no metrics, no validation."""
    torch.manual_seed(seed)
    sizes = [data.meta["n_features"], *settings["model"]["hidden"], data.meta["n_classes"]]
    layers = []
    for a, b in zip(sizes, sizes[1:], strict=False):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    optimizer = plain_optimizer(settings, model.parameters(), settings["lr"])
    x, y = data.x["train"], data.y["train"]
    n, batch_size = len(y), settings["batch_size"]
    for _ in range(settings["epochs"]):
        perm = torch.randperm(n)
        for first in range(0, n, batch_size):
            idx = perm[first : first + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def throughput(data, settings: dict, repeats: int, stack: int) -> dict[str, dict]:
    """Training samples per CPU second and per wall second of each way, per repetition.

    The ways take turns within a repetition, in an order rotated each time. CPU seconds
    (of this process; one torch thread) measure the code; wall seconds also measure what
    else the machine ran meanwhile.
    """
    samples = settings["epochs"] * len(data.y["train"])
    lr = settings["lr"]
    seeds = list(range(stack))
    ways = {
        "minimal loop, 1 run": (1, lambda: minimal_loop(data, settings, 0)),
        "train_runs, 1 run": (1, lambda: train_runs(data, settings, [lr], [0], CPU)),
        f"train_runs, {stack} runs stacked": (
            stack,
            lambda: train_runs(data, settings, [lr] * stack, seeds, CPU),
        ),
        f"train_runs, {stack} runs one by one": (
            stack,
            lambda: [train_runs(data, settings, [lr], [s], CPU) for s in seeds],
        ),
    }
    for _, fn in ways.values():
        fn()  # warm up: first calls allocate, and torch.optim imports dynamo once
    seconds = interleaved(
        {name: (lambda fn=fn: cpu_and_wall(fn)) for name, (_, fn) in ways.items()}, repeats
    )
    return {
        name: {
            "cpu": [runs * samples / cpu for cpu, _ in seconds[name]],
            "wall": [runs * samples / wall for _, wall in seconds[name]],
        }
        for name, (runs, _) in ways.items()
    }


def rows(config: dict, repeats: int) -> None:
    """Throughput of the default cell's model, with the targets on CPU-time ratios."""
    torch.set_num_threads(config["threads"]["train"])
    cell = default_cells(config)[0]
    settings = {**cell.settings, "lr": cell.default_lr, "epochs": 10}
    with tempfile.TemporaryDirectory(prefix="optreg-perf-data-") as tmp:
        path = prepare_for(config, cell.settings["data"]["dataset"], Path(tmp) / "data.pt")
        rates = throughput(load_prepared(path), settings, repeats, stack=5)
    print(
        f"throughput: {cell.settings['problem']} {cell.settings['model']}, "
        f"{settings['optimizer']} at lr {settings['lr']}, batch {settings['batch_size']}, "
        f"10 epochs, {torch.get_num_threads()} torch thread(s), {repeats} interleaved "
        "repetitions; samples per CPU second (median, min-max) and per wall second (median)"
    )
    for name, r in rates.items():
        cpu, wall = r["cpu"], r["wall"]
        row(
            name,
            f"{statistics.median(cpu):,.0f}/CPU s",
            f"{min(cpu):,.0f}-{max(cpu):,.0f}; wall {statistics.median(wall):,.0f}/s",
        )
    names = list(rates)
    for label, (a, b), target in (
        ("1 run: train_runs / minimal loop", names[1:2] + names[0:1], 0.95),
        ("5 runs: stacked / one by one", names[2:4], 3.0),
    ):
        ratio = paired_ratio(rates[a]["cpu"], rates[b]["cpu"])
        wall = paired_ratio(rates[a]["wall"], rates[b]["wall"])
        row(label, "", f"wall: {wall:.2f}", f"{ratio:.2f} (>= {target:g})", ratio >= target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--repeats", type=int, default=15, help="interleaved repetitions")
    common.table(parser, lambda args: rows(common.study_config(args.config), args.repeats))


if __name__ == "__main__":
    main()
