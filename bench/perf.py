"""Fast studies, measured: the project's costs next to the plain ways of doing the same work.

Usage: python bench/perf.py [--plain-sample K | --plain-full] [--cores 8] [--repeats 15]
                            [--config config/config.yaml] [--skip-study]

In one invocation, side by side, on this machine:

- the study of `--config` through Snakemake (`snakemake --cores N` on a fresh copy of the
  project in a temporary folder: data preparation, training, aggregation, figures, PDF)
  against the same training runs as a plain sequential loop in this process, the way the
  original notebooks did it: one run at a time, an `nn.Module` of the same architecture
  and initialization scheme, a `torch.optim` optimizer, the same epochs, batch size,
  rates and seeds, validation after every epoch, test at the end. `--plain-sample K`
  (default 3) times K runs of every cell and extrapolates by the cell's run count (and
  says so); `--plain-full` runs them all, tuning included;
- training throughput (samples/s) of the project's `train_runs` with one run against a
  minimal hand-written loop for the same MLP (`nn.Linear` layers, `torch.optim.Adam`,
  same batch size, data already in tensors), and 5 seeds stacked against 5 runs one after
  the other; repetitions interleaved, medians of the paired ratios;
- a no-op rerun of the study, and `snakemake -n` on a generated matrix of over 10,000 runs;
- train jobs' imports, wall time and peak memory (Snakemake's benchmark files).

A benchmark, not a test: its numbers depend on the machine and on what else runs on it;
the load average is printed at the start and at the end.
"""

from __future__ import annotations

import argparse
import copy
import csv
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch import nn

from optreg.data.prepare import prepare
from optreg.data.prepared import load_prepared
from optreg.records import read_run
from optreg.study.matrix import cells, jobs
from optreg.study.validate import load_config
from optreg.training.loop import train_runs
from optreg.training.protocol import plan_runs

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("workflow", "scripts", "config", "envs", "profiles", "src")
HEAVY = ("torchvision", "pandas", "matplotlib", "seaborn", "scipy", "sklearn", "torch._dynamo")
CPU = torch.device("cpu")
SPLIT_KEYS = ("split_seed", "validation_fraction", "test_fraction")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def copy_project(dest: Path, config: Path | None = None) -> Path:
    """The workflow, its code and config in `dest` (no results); `config` as the default."""
    for name in COPIED:
        shutil.copytree(ROOT / name, dest / name, symlinks=True)
    if config is not None:
        shutil.copy(config, dest / "config" / "config.yaml")
    return dest


def timed(cmd: list[str], cwd: Path) -> float:
    """Wall seconds of a command that must succeed (its output is shown only if it fails)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return wall


def snakemake(cores: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--cores", str(cores), *args]


# ---------------------------------------------------------------- the plain loop
ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def plain_model(spec: dict, meta: dict, activation: str) -> nn.Module:
    """The cell's network as a plain nn.Sequential, Glorot-uniform weights and zero biases."""
    act = ACTIVATIONS[activation]
    if spec["model"] == "mlp":
        sizes = [meta["n_features"], *spec["hidden"], meta["n_classes"]]
        layers = []
        for a, b in zip(sizes, sizes[1:], strict=False):
            layers += [nn.Linear(a, b), act()]
        model = nn.Sequential(*layers[:-1])
    elif len(meta["input_shape"]) == 2:  # signals: the strided 1-D CNN of optreg.training.models
        c, length = meta["input_shape"]
        layers = [nn.Unflatten(1, (c, length))]
        kernels = [*spec.get("kernel", []), *[3] * len(spec["channels"])]
        for out, k in zip(spec["channels"], kernels, strict=False):
            layers += [nn.Conv1d(c, out, k, stride=2, padding=1), act()]
            c, length = out, (length + 2 - k) // 2 + 1
        model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * length, meta["n_classes"]))
    else:
        c, h, w = meta["input_shape"]
        layers = [nn.Unflatten(1, (c, h, w))]
        for out in spec["channels"]:
            layers += [nn.Conv2d(c, out, 3, padding=1), act(), nn.MaxPool2d(2)]
            c, h, w = out, h // 2, w // 2
        model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * h * w, meta["n_classes"]))
    for module in model.modules():
        if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    return model


def plain_optimizer(settings: dict, params, lr: float) -> torch.optim.Optimizer:
    name, kind, strength = settings["optimizer"], settings["penalty"], settings["strength"]
    if name == "adam" and kind == "wd":
        return torch.optim.AdamW(params, lr=lr, weight_decay=2 * strength)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    momentum = settings["momentum"] if name == "momentum" else 0.0
    return torch.optim.SGD(params, lr=lr, momentum=momentum)


def plain_run(data, settings: dict, lr: float, seed: int) -> dict:
    """One run, notebook style; returns its final validation accuracy and divergence."""
    torch.manual_seed(seed)
    model = plain_model(settings["model"], data.meta, settings["activation"])
    optimizer = plain_optimizer(settings, model.parameters(), lr)
    weights = [
        m.weight for m in model.modules() if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d)
    ]
    kind, strength = settings["penalty"], settings["strength"]
    x, y = data.x["train"], data.y["train"]
    n, batch_size = len(y), settings["batch_size"]
    history = []
    for _ in range(settings["epochs"]):
        model.train()
        perm = torch.randperm(n)
        total, correct = 0.0, 0
        for first in range(0, n, batch_size):
            idx = perm[first : first + batch_size]
            out = model(x[idx])
            loss = F.cross_entropy(out, y[idx])
            if kind == "l1":
                loss = loss + strength * sum(w.abs().sum() for w in weights)
            elif kind == "l2":
                loss = loss + strength * sum(w.square().sum() for w in weights)
            optimizer.zero_grad()
            loss.backward()
            with torch.no_grad():
                if kind == "wd" and settings["optimizer"] != "adam":
                    for w in weights:
                        w.mul_(1 - 2 * lr * strength)
            optimizer.step()
            with torch.no_grad():
                if kind == "l1_prox":
                    for w in weights:
                        w.copy_(w.sign() * (w.abs() - lr * strength).clamp(min=0))
            total += loss.item() * len(idx)
            correct += (out.argmax(1) == y[idx]).sum().item()
        model.eval()
        with torch.no_grad():
            out = model(data.x["val"])
            val_loss = F.cross_entropy(out, data.y["val"]).item()
            val_acc = (out.argmax(1) == data.y["val"]).float().mean().item()
        history.append({"train_loss": total / n, "train_acc": correct / n, "val_loss": val_loss})
    with torch.no_grad():
        out = model(data.x["test"])
        test_acc = (out.argmax(1) == data.y["test"]).float().mean().item()
    diverged = not all(math.isfinite(h["train_loss"] + h["val_loss"]) for h in history)
    return {"val_accuracy": val_acc, "test_accuracy": test_acc, "diverged": diverged}


def cell_runs(config: dict, cell) -> list[tuple[float, int]]:
    """(rate, seed) of every run of a cell, tuned evaluation runs at the default rate.

    Only for timing a sample: a run costs the same arithmetic whatever its rate.
    """
    protocol = config["protocol"]
    tuning = [(lr, seed) for seed in protocol["tuning_seeds"] for lr in cell.lr_grid]
    evaluation = [(cell.default_lr, seed) for seed in protocol["evaluation_seeds"]]
    return tuning + 2 * evaluation  # tuned and one-shot


def plain_cell_full(config: dict, cell, data) -> int:
    """Every run of a cell: tune on the tuning seeds, choose the rate, evaluate both rates."""
    protocol = config["protocol"]
    tuning = []
    for lr in cell.lr_grid:
        for seed in protocol["tuning_seeds"]:
            result = plain_run(data, cell.settings, lr, seed)
            tuning.append(
                {"settings": {"lr": lr}, "seed": seed, "combination": cell.id}
                | {"final": result, "diverged": result["diverged"]}
            )
    runs, _ = plan_runs("eval", protocol["evaluation_seeds"], cell.lr_grid, cell.default_lr, tuning)
    for run in runs:
        plain_run(data, cell.settings, run.lr, run.seed)
    return len(tuning) + len(runs)


def clock() -> tuple[float, float]:
    """(wall, CPU) seconds of this process, to subtract."""
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    now = clock()
    return now[0] - start[0], now[1] - start[1]


def plain_loop(config: dict, sample: int | None, data_dir: Path) -> dict:
    """Every run of `config` as a plain loop in this process: wall and CPU seconds.

    Includes preparing the datasets. With `sample`, times that many runs of each cell and
    scales their mean by the cell's run count.
    """
    start = clock()
    datasets = {}
    for cell in cells(config):
        name = cell.settings["data"]["dataset"]
        if name not in datasets:
            path = data_dir / f"{name}.pt"
            split = {k: config["data"][k] for k in SPLIT_KEYS}
            prepare(name, path, **split, generation=config["data"]["mnist1d"])
            data = load_prepared(path)
            data.x = {k: v.clone() for k, v in data.x.items()}  # in memory, not memory-mapped
            data.y = {k: v.clone() for k, v in data.y.items()}
            datasets[name] = data
    wall, cpu = since(start)
    runs = timed_runs = 0
    for cell in cells(config):
        data = datasets[cell.settings["data"]["dataset"]]
        start = clock()
        if sample is None:
            count = plain_cell_full(config, cell, data)
            scale, timed_count = 1.0, count
        else:
            specs = cell_runs(config, cell)
            chosen = [specs[int((i + 0.5) * len(specs) / sample)] for i in range(sample)]
            for lr, seed in chosen:
                plain_run(data, cell.settings, lr, seed)
            count, timed_count = len(specs), len(chosen)
            scale = count / timed_count
        cell_wall, cell_cpu = since(start)
        wall, cpu = wall + cell_wall * scale, cpu + cell_cpu * scale
        runs, timed_runs = runs + count, timed_runs + timed_count
    how = "all runs timed" if sample is None else f"EXTRAPOLATED from {sample} runs per cell"
    return {"wall": wall, "cpu": cpu, "runs": runs, "timed_runs": timed_runs, "how": how}


# ---------------------------------------------------------------- the study
def benchmark_rows(work: Path) -> list[dict]:
    """The last row of every train job's benchmark file."""
    rows = []
    for path in sorted((work / "results" / "benchmarks" / "train").rglob("*.tsv")):
        with open(path, newline="") as fh:
            rows.append(list(csv.DictReader(fh, delimiter="\t"))[-1])
    return rows


def children_cpu() -> float:
    """CPU seconds of every finished child process and their waited-for descendants."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def job_steps(folder: Path, grid) -> list[list[tuple[float, int]]]:
    """The (rate, seed) runs of each `train_runs` call a train job made, from its records:
    the grid's tuning runs, one round per rate added past the grid's edge, the evaluation
    runs (a tuned rate equal to the default rate is one run, recorded twice)."""
    records = [read_run(f) for f in sorted(folder.glob("*.json"))]
    tune = [r for r in records if r["phase"] == "tune"]
    on_grid = [r for r in tune if any(math.isclose(r["settings"]["lr"], g) for g in grid)]
    added = {}
    for r in tune:
        if r not in on_grid:
            added.setdefault(r["settings"]["lr"], []).append(r)
    evaluation = [r for r in records if r["phase"] == "eval"]
    steps = [on_grid, *added.values(), evaluation]
    runs = [list(dict.fromkeys((r["settings"]["lr"], r["seed"]) for r in step)) for step in steps]
    return [step for step in runs if step]


def in_process_training(work: Path, config: dict) -> dict:
    """The runs every train job of the finished study in `work` trained, trained again in
    this process by `train_runs`, job by job and step by step, in stacks of the size the job
    used (its records' `stacked_seeds`), on the study's prepared data: CPU seconds of
    training alone, none of a job's process start, imports, data loading or writing."""
    threads = torch.get_num_threads()
    torch.set_num_threads(config["threads"]["train"])
    datasets, cpu, runs, n_jobs = {}, 0.0, 0, 0
    try:
        for job in jobs(config):
            if not job.trains:
                continue  # its runs are another study's job's
            folder = work / "results" / "studies" / job.study / job.phase / job.cell.id
            folder = folder / f"seeds-{job.block}"
            name = job.cell.settings["data"]["dataset"]
            if name not in datasets:
                datasets[name] = load_prepared(work / "results" / "data" / f"{name}.pt")
            stacked = read_run(next(folder.glob("*.json")))["provenance"]["stacked_seeds"]
            for step in job_steps(folder, job.cell.lr_grid):
                lrs, seeds = [lr for lr, _ in step], [seed for _, seed in step]
                start = time.process_time()
                train_runs(datasets[name], job.cell.settings, lrs, seeds, CPU, stacked)
                cpu += time.process_time() - start
                runs += len(step)
            n_jobs += 1
    finally:
        torch.set_num_threads(threads)
    return {"cpu": cpu, "runs": runs, "jobs": n_jobs}


def run_study(config: Path, cores: int, repeats: int) -> dict:
    """The study on a fresh copy: wall and CPU seconds (all processes), then no-op reruns,
    then its train jobs' runs trained again in this process (`in_process_training`)."""
    with tempfile.TemporaryDirectory(prefix="optreg-perf-") as tmp:
        work = copy_project(Path(tmp), config)
        cpu = children_cpu()
        wall = timed(snakemake(cores), work)
        cpu = children_cpu() - cpu
        runs = len(list((work / "results" / "studies").rglob("*seed-*.json")))
        noop = statistics.median(timed(snakemake(cores), work) for _ in range(repeats))
        rows = benchmark_rows(work)
        in_process = in_process_training(work, load_config(str(config)))
    rss = [float(r["max_rss"]) for r in rows if r["max_rss"] != "NA"]
    train_cpu = sum(float(r["cpu_time"]) for r in rows if r["cpu_time"] != "NA")
    return {
        "in_process": in_process,
        "unsampled_jobs": sum(r["cpu_time"] == "NA" for r in rows),
        "train_cpu": train_cpu,
        "wall": wall,
        "cpu": cpu,
        "runs": runs,
        "noop": noop,
        "jobs": len(rows),
        "job_wall": statistics.median(float(r["s"]) for r in rows),
        "max_rss": max(rss) if rss else math.nan,
        "median_rss": statistics.median(rss) if rss else math.nan,
    }


def big_matrix(config: dict, runs: int) -> dict:
    """The config with its studies replaced by one crossing 4 optimizers, 3 activations,
    4 penalties and as many strengths as make over `runs` runs."""
    big = copy.deepcopy(config)
    per_cell = sum(j.runs for j in jobs(config)) / len(cells(config))
    n_strengths = math.ceil(runs / per_cell / (4 * 3 * 4))
    big["studies"] = {
        "matrix": {
            "factors": {
                "optimizer": ["sgd", "momentum", "rmsprop", "adam"],
                "activation": ["relu", "sigmoid", "tanh"],
                "penalty": ["l1", "l1_prox", "l2", "wd"],
                "strength": [round(1e-6 * (i + 1), 9) for i in range(n_strengths)],
            }
        }
    }
    big["max_runs"] = 10 * runs
    return big


def dry_run(config: dict, cores: int, repeats: int) -> tuple[float, int, int]:
    """Median seconds of `snakemake -n` on a fresh project with `config`; its runs and jobs."""
    with tempfile.TemporaryDirectory(prefix="optreg-dry-") as tmp:
        work = copy_project(Path(tmp))
        (work / "config" / "config.yaml").write_text(yaml.safe_dump(config))
        wall = statistics.median(timed(snakemake(cores, "-n"), work) for _ in range(repeats))
    trained = [j for j in jobs(config) if j.trains]
    return wall, sum(j.runs for j in trained), len(trained)


def train_imports(repeats: int) -> tuple[float, list[str]]:
    """Median wall of a process that imports the train job's code; heavy modules it loaded."""
    code = (
        "import sys, optreg.training.job; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    walls, heavy = [], ""
    for _ in range(repeats):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        heavy = out.stdout.strip()
    return statistics.median(walls), [m for m in heavy.split(",") if m]


# ---------------------------------------------------------------- throughput
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
    rates = {name: {"cpu": [], "wall": []} for name in ways}
    names = list(ways)
    for rep in range(repeats):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            runs, fn = ways[name]
            cpu, wall = time.process_time(), time.perf_counter()
            fn()
            rates[name]["cpu"].append(runs * samples / (time.process_time() - cpu))
            rates[name]["wall"].append(runs * samples / (time.perf_counter() - wall))
    return rates


def matmul_peak(repeats: int, size: int = 512) -> float:
    """Measured matmul peak of this process (FLOP per CPU second): the median of `repeats`
    products of two size x size float32 matrices, each timed by CPU time."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    rates = []
    for _ in range(repeats):
        cpu = time.process_time()
        for _ in range(10):
            torch.mm(a, b)
        rates.append(10 * 2 * size**3 / (time.process_time() - cpu))
    return statistics.median(rates)


def training_flops_per_sample(meta: dict, spec: dict) -> float:
    """Multiply-add FLOPs of one training sample of an MLP: forward 2ab per layer, backward
    4ab (gradients of inputs and weights); elementwise work is not counted."""
    sizes = [meta["n_features"], *spec["hidden"], meta["n_classes"]]
    return sum(6.0 * a * b for a, b in zip(sizes, sizes[1:], strict=False))


def peak_fraction_row(data, settings: dict, seeds: list[int], repeats: int) -> None:
    """Training FLOPs / CPU time / the matmul peak measured in this run, one run per entry
    of `seeds` stacked as a study's job stacks them (a tuning stack: each tuning seed once
    per grid rate; here all at the cell's default rate, so that none diverges and drops out
    of the FLOP count); CPU time includes each epoch's validation pass."""
    if settings["model"]["model"] != "mlp":
        return
    lrs = [settings["lr"]] * len(seeds)
    train_runs(data, settings, lrs, seeds, CPU)  # warm up
    fractions = []
    for _ in range(repeats):
        peak = matmul_peak(3)
        cpu = time.process_time()
        train_runs(data, settings, lrs, seeds, CPU)
        seconds = time.process_time() - cpu
        flops = training_flops_per_sample(data.meta, settings["model"])
        flops *= len(seeds) * settings["epochs"] * len(data.y["train"])
        fractions.append(flops / seconds / peak)
    fraction = statistics.median(fractions)
    row(
        f"training / matmul peak, {settings['problem']} {settings['model']['hidden']}, "
        f"{len(seeds)} runs stacked",
        f"{100 * fraction:.0f}% of peak",
        f"peak {matmul_peak(5) / 1e9:.0f} GFLOP/CPU s (512x512 matmul)",
        f"{fraction:.2f} (>= 0.35)",
        fraction >= 0.35,
    )


def paired_ratio(a: list[float], b: list[float]) -> float:
    """Median over repetitions of a / b: the load drifts less within one repetition."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def default_cells(config: dict) -> list:
    """The cells of the default problem, optimizer, activation and penalty: one per model
    the studies give that problem (the optimization study's depths)."""
    defaults = config["defaults"]
    keys = ("problem", "optimizer", "activation", "penalty")
    found = [c for c in cells(config) if all(c.settings[k] == defaults[k] for k in keys)]
    models = {}
    for cell in found:
        models.setdefault(repr(cell.settings["model"]), cell)
    return list(models.values()) or cells(config)[:1]


def throughput_rows(config: dict, repeats: int) -> None:
    """Throughput of the default cell's model, with the targets on CPU-time ratios; the
    fraction of matmul peak for every model of the default problem."""
    torch.set_num_threads(config["threads"]["train"])
    models = default_cells(config)
    cell = models[0]
    settings = {**cell.settings, "lr": cell.default_lr, "epochs": 10}
    with tempfile.TemporaryDirectory(prefix="optreg-perf-data-") as tmp:
        path = Path(tmp) / "data.pt"
        split = {k: config["data"][k] for k in SPLIT_KEYS}
        prepare(
            cell.settings["data"]["dataset"], path, **split, generation=config["data"]["mnist1d"]
        )
        prepared = load_prepared(path)
        rates = throughput(prepared, settings, repeats, stack=5)
        # The runs of one cell's tuning stack: each tuning seed at every grid rate.
        seeds = list(config["protocol"]["tuning_seeds"]) * len(cell.lr_grid)
        for model in models:
            model_settings = {**model.settings, "lr": model.default_lr, "epochs": 10}
            peak_fraction_row(prepared, model_settings, seeds, max(3, repeats // 5))
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


# ---------------------------------------------------------------- the table
def row(name: str, value: str, reference: str = "", ratio: str = "", target=None) -> None:
    verdict = "" if target is None else ("PASS" if target else "MISS")
    print(f"| {name} | {value} | {reference} | {ratio} | {verdict} |", flush=True)


def study_rows(config: dict, config_path: Path, args) -> None:
    """The study against the plain loop, its no-op rerun, its train jobs' time and memory."""
    sample = None if args.plain_full else args.plain_sample
    with tempfile.TemporaryDirectory(prefix="optreg-plain-") as tmp:
        torch.set_num_threads(args.plain_threads)
        plain = plain_loop(config, sample, Path(tmp))
    print(f"load average after the plain loop: {load()}", flush=True)
    study = run_study(config_path, args.cores, 3)
    ratio, cpu_ratio = study["wall"] / plain["wall"], study["cpu"] / plain["cpu"]
    row(
        f"plain loop, one process, {args.plain_threads} torch thread(s) ({plain['how']}: "
        f"{plain['timed_runs']} of {plain['runs']} runs timed)",
        f"{plain['wall']:.0f} s",
        f"CPU {plain['cpu']:.0f} s",
    )
    row(
        f"study through the PDF, snakemake --cores {args.cores} ({study['runs']} runs, "
        f"{study['jobs']} train jobs)",
        f"{study['wall']:.0f} s",
        f"CPU {study['cpu']:.0f} s; CPU ratio {cpu_ratio:.2f}",
        f"{ratio:.2f} (<= 0.35)",
        ratio <= 0.35,
    )
    row("no-op rerun (median of 3)", f"{study['noop']:.1f} s", "", "(<= 2 s)", study["noop"] <= 2)
    row(
        "train jobs: wall (median); CPU (sum, sampled by Snakemake)",
        f"{study['job_wall']:.1f} s",
        f"CPU {study['train_cpu']:.0f} s",
    )
    trained = study["in_process"]
    ratio = study["train_cpu"] / trained["cpu"]
    unsampled = study["unsampled_jobs"]
    row(
        f"training phase: train jobs' CPU (sum) / the same {trained['runs']} runs' training CPU "
        f"in this process (train_runs, the jobs' stacks, {trained['jobs']} jobs)",
        f"{ratio:.2f}",
        f"jobs {study['train_cpu']:.0f} CPU s, in process {trained['cpu']:.0f} CPU s: "
        f"{(study['train_cpu'] - trained['cpu']) / trained['jobs']:.2f} CPU s a job around "
        "its training"
        + (f"; {unsampled} job(s) too short to sample, counted 0" if unsampled else ""),
    )
    row(
        "train job peak memory (max RSS: largest; median)",
        f"{study['max_rss']:.0f} MiB",
        f"median {study['median_rss']:.0f} MiB",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--plain-sample", type=int, default=3, metavar="K")
    how.add_argument("--plain-full", action="store_true")
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--cores", type=int, default=8)
    parser.add_argument(
        "--plain-threads",
        type=int,
        default=1,
        help="torch threads of the plain loop (1, the fastest for these small models)",
    )
    parser.add_argument("--repeats", type=int, default=15, help="throughput repetitions")
    parser.add_argument("--skip-study", action="store_true", help="only the quick measurements")
    args = parser.parse_args()
    config_path = ROOT / args.config
    config = load_config(str(config_path))

    print(
        f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, Python "
        f"{sys.version.split()[0]}; load average at start: {load()}"
    )
    print("| measurement | value | reference | ratio (target) | result |")
    print("| --- | --- | --- | --- | --- |", flush=True)

    throughput_rows(config, args.repeats)

    seconds, heavy = train_imports(5)
    row(
        "import optreg.training.loop (process wall)",
        f"{seconds:.2f} s",
        f"heavy modules: {', '.join(heavy) or 'none'}",
    )

    big = big_matrix(config, 10_000)
    dry, big_runs, big_jobs = dry_run(big, args.cores, 3)
    row(
        f"snakemake -n, {big_runs:,} runs in {big_jobs} train jobs",
        f"{dry:.1f} s",
        "",
        "(<= 10 s)",
        dry <= 10,
    )

    if not args.skip_study:
        study_rows(config, config_path, args)
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
