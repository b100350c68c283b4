"""This checkout's training against another revision's, side by side: CPU seconds per stack.

Usage: python bench/versus.py REV [--optimizers adam sgd] [--epochs 5] [--repeats 5]
                               [--problem mnist1d_mlp] [--runs 1 5 21 64]

REV (a commit, tag or branch) is checked out into a temporary folder (`git worktree`). Each
repetition runs one child process per tree, taking turns; each child imports `optreg` from
its own tree, prepares the default problem's data with its own code and trains, with one
torch thread, one tuning stack (each tuning seed at every grid rate: 21 runs in the default,
all at the cell's default rate so that none diverges) of every model of the default problem
(the optimization study's depths), ReLU, no penalty, once to warm up and once timed. It
prints each tree's median CPU seconds and the median over repetitions of the ratio within one
repetition: CPU time of the benchmark's children, which does not change when other processes
take turns on the cores (their contention for caches and memory still shows).

REV may also be a folder holding another copy of the project (its `src` and `config`), used
as it is. `--problem` trains another problem's models (the default problem's by default);
`--runs` trains stacks of these sizes (seeds 0, 1, ...) instead of the tuning stack.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from common import ROOT, interleaved, paired_ratio, python_child

CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
root, optimizer, epochs = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
problem, sizes = sys.argv[4], [int(r) for r in sys.argv[5].split(",") if r]
sys.path.insert(0, str(root / "src"))
import torch
from optreg.study.matrix import cells
from optreg.study.validate import load_config
from optreg.data.prepare import prepare
from optreg.data.prepared import load_prepared
from optreg.training.loop import train_runs
torch.set_num_threads(1)
config = load_config(str(root / "config" / "config.yaml"))
defaults = config["defaults"]
chosen = {}
for cell in cells(config):
    s = cell.settings
    if (s["problem"], s["optimizer"], s["activation"], s["penalty"]) == (
        problem or defaults["problem"], optimizer, "relu", "none"
    ):
        chosen.setdefault(json.dumps(s["model"]), cell)
out = {}
with tempfile.TemporaryDirectory() as tmp:
    first = next(iter(chosen.values()))
    split = {k: config["data"][k] for k in ("split_seed", "validation_fraction", "test_fraction")}
    path = Path(tmp) / "data.pt"
    prepare(first.settings["data"]["dataset"], path, **split, generation=config["data"]["mnist1d"])
    data = load_prepared(path)
    for model, cell in chosen.items():
        settings = {**cell.settings, "lr": cell.default_lr, "epochs": epochs}
        tuning = list(config["protocol"]["tuning_seeds"]) * len(cell.lr_grid)
        for seeds in [list(range(size)) for size in sizes] or [tuning]:
            lrs = [cell.default_lr] * len(seeds)
            train_runs(data, settings, lrs, seeds, torch.device("cpu"))
            start = time.process_time()
            train_runs(data, settings, lrs, seeds, torch.device("cpu"))
            name = f"{cell.settings['problem']} {model} ({len(seeds)} runs)"
            out[name] = time.process_time() - start
print(json.dumps(out))
"""


def child(root: Path, optimizer: str, epochs: int, problem: str, runs: list[int]) -> dict:
    """CPU seconds per stack of one child process training with `root`'s code."""
    sizes = ",".join(map(str, runs))
    done = python_child(
        CHILD, str(root), optimizer, str(epochs), problem, sizes, what=f"training in {root}"
    )
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="the revision to compare with (commit, tag, branch)")
    parser.add_argument("--optimizers", nargs="+", default=["adam", "sgd"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--problem", default="", help="a problem of the config (its models)")
    parser.add_argument("--runs", type=int, nargs="*", default=[], help="stack sizes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="optreg-versus-") as tmp:
        given = Path(args.rev).is_dir()
        other = Path(args.rev) if given else Path(tmp) / "other"
        if not given:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(other), args.rev],
                check=True,
            )
        try:
            job = (args.epochs, args.problem, args.runs)
            print(f"{args.epochs} epochs, one torch thread, {args.repeats} repetitions")
            print(f"| stack | optimizer | {args.rev} CPU s | this checkout CPU s | ratio |")
            print("| --- | --- | --- | --- | --- |")
            for optimizer in args.optimizers:
                times = interleaved(
                    {
                        "other": lambda o=optimizer: child(other, o, *job),
                        "this": lambda o=optimizer: child(ROOT, o, *job),
                    },
                    args.repeats,
                    rotate=False,  # each repetition: the other revision, then this one
                )
                for stack in times["this"][0]:
                    theirs = [t[stack] for t in times["other"]]
                    ours = [t[stack] for t in times["this"]]
                    ratio = paired_ratio(ours, theirs)
                    print(
                        f"| {stack} | {optimizer} | {statistics.median(theirs):.2f} | "
                        f"{statistics.median(ours):.2f} | {ratio:.2f} |",
                        flush=True,
                    )
        finally:
            if not given:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)],
                    check=False,
                )


if __name__ == "__main__":
    main()
