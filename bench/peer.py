"""The peer row: `train_runs` against a JAX scan loop and `torch.func` vmap, side by side.

Usage: python bench/peer.py [--runs 1 5 21 64] [--models mlp cnn] [--epochs 10] [--repeats 5]

Needs JAX and optax (`pip install -e '.[bench]'`; never a dependency of the workflow); the
same process imports torch and JAX, so it runs in an environment that has both.

On the default problem (MNIST-1D, Adam at the cell's default rate, batch 64, 10 epochs, one
thread), the same number of runs (seeds) trained three ways, taking turns within each
repetition in an order rotated each repetition:

- `train_runs`: the study's path, `optreg.training.loop.train_runs`, all runs in one stack
  (with what it does beyond training: training loss and accuracy per batch, validation
  after every epoch, test and weight statistics at the end);
- `torch.func vmap`: the same architecture as a user model (`nn.Sequential`,
  examples/nn_model.py) stacked by `torch.func` through `train_runs` (MLP only);
- JAX: `jit(vmap(epoch))`, each epoch a `lax.scan` over its batches (each run its own
  shuffle, `jax.random.permutation`) of `value_and_grad` and an optax Adam update; the
  parameters of each repetition freshly initialized (`jit(vmap(init))`); compilation
  excluded (every program is run once before the timed repetitions): its steady state.
  Nothing but training steps.

Models: `mlp`, the optimization study's deeper MLP (3 hidden layers of 100, ReLU); `cnn`,
`mnist1d_cnn` (1-D convolutions, stride 2, padding 1, kernels 5, 3, 3, 16 channels, ReLU,
then one linear layer to the logits).

Each way's time is the CPU time of this process (`time.process_time`: all its threads),
which does not change when other processes take turns on the cores; torch runs one thread
and XLA is asked for one (`--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1`). It prints the issue's table: samples per CPU second (the
median over repetitions), optreg ÷ JAX (the median of the ratio within one repetition), and
the matmul floor (the products' training FLOPs per sample, `optreg.study.flops`, at the
512×512 float32 matmul peak measured in this process) and each way's fraction of it. A
benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os

# Before JAX is imported: one XLA thread, as torch's one.
os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import common  # noqa: E402
import torch  # noqa: E402
from common import ROOT, interleaved, load_average, paired_ratio, prepare_for  # noqa: E402

from optreg import extensions as extend  # noqa: E402
from optreg.data.prepared import load_prepared  # noqa: E402
from optreg.study.flops import flops_per_sample  # noqa: E402
from optreg.training.loop import train_runs  # noqa: E402

CPU = torch.device("cpu")
PROBLEMS = {"mlp": "mnist1d_mlp", "cnn": "mnist1d_cnn"}


def model_settings(config: dict, model: str, epochs: int) -> dict:
    """The default cell's settings with `model`: the 3-layer MLP or the MNIST-1D CNN, from a
    study of the config that trains it, or else from its `problems:` entry."""
    from optreg.study.matrix import cells

    defaults = config["defaults"]
    keys = ("optimizer", "activation", "penalty")
    for cell in cells(config):
        s = cell.settings
        if s["problem"] != PROBLEMS[model] or any(s[k] != defaults[k] for k in keys):
            continue
        if model == "cnn" or list(s["model"].get("hidden", [])) == [100, 100, 100]:
            return {**s, "lr": cell.default_lr, "epochs": epochs}
    # No study of the config trains it (the default config's CNN is in config/full.yaml):
    # the cell its `problems:` entry makes with the default settings.
    if PROBLEMS[model] not in config["problems"]:
        raise SystemExit(f"the config has no problem {PROBLEMS[model]}")
    fixed = {"problem": PROBLEMS[model], **({"depth": 3} if model == "mlp" else {})}
    probe = {**config, "studies": {"bench": {"fixed": fixed, "factors": {"penalty": ["none"]}}}}
    (cell,) = cells(probe)
    return {**cell.settings, "lr": cell.default_lr, "epochs": epochs}


def jax_trainer(settings: dict, meta: dict, x, y):
    """fn(runs) training `runs` runs for the settings' epochs, all steps in JAX programs."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    x = jnp.asarray(np.asarray(x))
    y = jnp.asarray(np.asarray(y))
    n, batch, epochs = len(y), settings["batch_size"], settings["epochs"]
    steps = n // batch  # whole batches only (MNIST-1D: 3,200 = 50 x 64)
    spec = settings["model"]
    classes = meta["n_classes"]

    def glorot(key, fan_in, fan_out, shape):
        bound = (6.0 / (fan_in + fan_out)) ** 0.5
        return jax.random.uniform(key, shape, jnp.float32, -bound, bound)

    if spec["model"] == "mlp":
        sizes = [meta["n_features"], *spec["hidden"], classes]

        def init(key):
            keys = jax.random.split(key, len(sizes) - 1)
            return [
                (glorot(k, a, b, (a, b)), jnp.zeros(b))
                for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)
            ]

        def forward(params, xb):
            h = xb
            for w, b in params[:-1]:
                h = jax.nn.relu(h @ w + b)
            w, b = params[-1]
            return h @ w + b

    else:
        channels, length = meta["input_shape"]
        kernels = list(spec["kernel"])
        shapes = []
        for out, k in zip(spec["channels"], kernels, strict=True):
            shapes.append((out, channels, k))
            channels, length = out, (length + 2 - k) // 2 + 1
        flat = channels * length

        def init(key):
            keys = jax.random.split(key, len(shapes) + 1)
            convs = [
                (glorot(kk, c * k, o * k, (o, c, k)), jnp.zeros(o))
                for kk, (o, c, k) in zip(keys, shapes, strict=False)
            ]
            return [*convs, (glorot(keys[-1], flat, classes, (flat, classes)), jnp.zeros(classes))]

        def forward(params, xb):
            h = xb.reshape(xb.shape[0], *meta["input_shape"])
            for w, b in params[:-1]:
                h = jax.lax.conv_general_dilated(
                    h, w, (2,), [(1, 1)], dimension_numbers=("NCH", "OIH", "NCH")
                )
                h = jax.nn.relu(h + b[None, :, None])
            w, b = params[-1]
            return h.reshape(h.shape[0], -1) @ w + b

    optimizer = optax.adam(settings["lr"])

    def loss(params, xb, yb):
        logits = forward(params, xb)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    def epoch(params, state, key, x, y):
        order = jax.random.permutation(key, n)[: steps * batch].reshape(steps, batch)

        def step(carry, idx):
            params, state = carry
            value, grads = jax.value_and_grad(loss)(params, x[idx], y[idx])
            updates, state = optimizer.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), value

        (params, state), losses = jax.lax.scan(step, (params, state), order)
        return params, state, losses

    run_epoch = jax.jit(jax.vmap(epoch, in_axes=(0, 0, 0, None, None)))
    start = jax.jit(jax.vmap(lambda key: (lambda p: (p, optimizer.init(p)))(init(key))))

    def train(runs: int) -> None:
        keys = jax.random.split(jax.random.PRNGKey(0), runs)
        params, state = start(keys)
        for e in range(epochs):
            epoch_keys = jax.vmap(lambda k, e=e: jax.random.fold_in(k, e))(keys)
            params, state, losses = run_epoch(params, state, epoch_keys, x, y)
        jax.block_until_ready((params, losses))

    return train, steps * batch * epochs


def matmul_peak(repeats: int = 5, size: int = 512) -> float:
    """FLOP per CPU second of 512x512 float32 products in this process (median)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    rates = []
    for _ in range(repeats):
        cpu = time.process_time()
        for _ in range(10):
            torch.mm(a, b)
        rates.append(10 * 2 * size**3 / (time.process_time() - cpu))
    return statistics.median(rates)


def cpu_seconds(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def model_table(data, settings: dict, runs_list: list[int], repeats: int) -> None:
    """One table (the issue's) for one model."""
    n = len(data.y["train"])
    samples = settings["epochs"] * n
    jax_train, jax_samples = jax_trainer(settings, data.meta, data.x["train"], data.y["train"])
    func = None
    if settings["model"]["model"] == "mlp":
        hidden = list(settings["model"]["hidden"])
        user = {"model": "torch_mlp", "factory": "nn_model:mlp", "kwargs": {"hidden": hidden}}
        func = {**settings, "model": {**user, "stack": "vmap"}}
    names = ["optreg train_runs", "torch.func vmap", "JAX jit(vmap(epoch)) + lax.scan, optax Adam"]
    per_runs = {}
    peaks = []
    for runs in runs_list:
        seeds, lrs = list(range(runs)), [settings["lr"]] * runs
        ways = {
            names[0]: lambda lrs=lrs, seeds=seeds: train_runs(data, settings, lrs, seeds, CPU),
            names[2]: lambda r=runs: jax_train(r),
        }
        if func is not None:
            ways[names[1]] = lambda lrs=lrs, seeds=seeds: train_runs(data, func, lrs, seeds, CPU)
        for fn in ways.values():
            fn()  # compile (JAX), first allocations, the vmap probe
        seconds = interleaved({k: (lambda f=f: cpu_seconds(f)) for k, f in ways.items()}, repeats)
        peaks.append(matmul_peak())
        per_runs[runs] = seconds
        done = {k: f"{statistics.median(v):.2f}" for k, v in seconds.items()}
        print(f"{runs} runs: median CPU s {done}", flush=True)
    peak = statistics.median(peaks)
    header = " | ".join(f"{r} run{'s' if r > 1 else ''}" for r in runs_list)
    print(f"\n{settings['problem']} {settings['model']}: samples per CPU-s\n")
    print(f"| samples per CPU-s | {header} |")
    print("|---|" + "---|" * len(runs_list))

    def rate(name: str, runs: int) -> float:
        count = jax_samples if name == names[2] else samples
        return statistics.median(runs * count / s for s in per_runs[runs][name])

    for name in names:
        if name not in per_runs[runs_list[0]]:
            continue
        cells = " | ".join(f"{rate(name, r) / 1e3:.0f}k" for r in runs_list)
        print(f"| {name} | {cells} |")
    for other in names[1:]:
        if other not in per_runs[runs_list[0]]:
            continue
        ratios = []
        for r in runs_list:
            mine = [r * samples / s for s in per_runs[r][names[0]]]
            count = jax_samples if other == names[2] else samples
            theirs = [r * count / s for s in per_runs[r][other]]
            ratios.append(f"{paired_ratio(mine, theirs):.2f}")
        print(f"| optreg ÷ {other.split(' ')[0]} | {' | '.join(ratios)} |")
    meta = data.meta
    floor = peak / flops_per_sample(settings["model"], meta["input_shape"], meta["n_classes"])
    floors = " | ".join(f"{floor / 1e3:.0f}k" for _ in runs_list)
    print(f"| matmul floor (training FLOPs per sample at the measured 512² peak) | {floors} |")
    for name in (names[0], names[2]):
        fractions = " | ".join(f"{rate(name, r) / floor:.0%}" for r in runs_list)
        print(f"| {name.split(' ')[0]}, fraction of the floor | {fractions} |")
    print(f"\nmatmul peak {peak / 1e9:.0f} GFLOP/CPU s; load average {load_average()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 5, 21, 64])
    parser.add_argument("--models", nargs="+", choices=sorted(PROBLEMS), default=["mlp", "cnn"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    import jax

    config = common.study_config(args.config)
    # After the config: validating it sets the search path to its own `extensions_path`.
    extend.use_path([ROOT / "examples"])
    print(
        f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, JAX {jax.__version__}; "
        f"load average at start: {load_average()}"
    )
    with tempfile.TemporaryDirectory(prefix="optreg-peer-") as tmp:
        data = load_prepared(prepare_for(config, "mnist1d", Path(tmp) / "data.pt"))
    for model in args.models:
        model_table(data, model_settings(config, model, args.epochs), args.runs, args.repeats)


if __name__ == "__main__":
    main()
