"""Seconds per epoch and peak memory of a train job on a real-size vision dataset.

Usage: python bench/vision_epoch.py --config config/cifar10.yaml [--stack 1] [--epochs 1]
       [--threads N] [--device cpu|cuda]

Writes a prepared file of the dataset's real size (random float32 images, random labels:
the timing does not depend on the values) in a temporary folder, then runs one tuning job
of the preset's first cell (`optreg.training.job.run_job`, as Snakemake would) in a fresh Python
process with `--stack` runs (learning rates) and reports the seconds per epoch of training,
the job's wall time and its peak resident memory (max RSS, which counts the pages of the
memory-mapped data file the job touched). A benchmark, not a test: the numbers depend on
the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from common import checkout_env, job_kwargs, python_child

# Official (train, test) sizes and image shapes.
SIZES = {
    "mnist": (60_000, 10_000, (1, 28, 28)),
    "fashion_mnist": (60_000, 10_000, (1, 28, 28)),
    "cifar10": (50_000, 10_000, (3, 32, 32)),
}

JOB = """
import json, resource, sys, time
import torch
from optreg.training.job import run_job
args = json.loads(sys.argv[1])
start = time.perf_counter()
run_job(**args)
wall = time.perf_counter() - start
out = sorted(__import__("pathlib").Path(args["out_dir"]).glob("*.json"))
history = json.loads(out[0].read_text())["history"]
print(json.dumps({
    "epoch_s": [h["elapsed_s"] for h in history],
    "wall_s": wall,
    "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "torchvision_imported": "torchvision" in sys.modules,
}))
"""


def synthetic_prepared(path: Path, dataset: str, validation_fraction: float) -> dict:
    """A prepared file of `dataset`'s real size in `optreg.data.prepare.prepare`'s format."""
    from optreg.data.prepared import fingerprint, meta_path
    from optreg.io import write_json

    n_train, n_test, shape = SIZES[dataset]
    n_val = round(n_train * validation_fraction)
    sizes = {"train": n_train - n_val, "val": n_val, "test": n_test}
    features = shape[0] * shape[1] * shape[2]
    gen = torch.Generator().manual_seed(0)
    meta = {
        "dataset": dataset,
        "n_features": features,
        "input_shape": list(shape),
        "n_classes": 10,
        "sizes": sizes,
        "synthetic": "random normal images and random labels, for timing only",
    }
    payload = {"meta": meta}
    for split, n in sizes.items():
        payload[f"x_{split}"] = torch.randn(n, features, generator=gen)
        payload[f"y_{split}"] = torch.randint(0, 10, (n,), generator=gen)
        payload[f"index_{split}"] = torch.arange(n)
    torch.save(payload, path)
    # The fingerprint every train job checks the file against, as prepare writes it.
    write_json(meta_path(path), {**meta, "sha256": fingerprint(payload)})
    return meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--stack", type=int, default=1, help="runs trained together")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()

    from optreg.study.matrix import jobs
    from optreg.study.validate import load_config

    config = load_config(args.config)
    job = jobs(config)[0]  # the first cell; one tuning job of it is timed
    settings = {**job.cell.settings, "epochs": args.epochs}
    dataset = settings["data"]["dataset"]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / f"{dataset}.pt"
        meta = synthetic_prepared(data, dataset, config["data"]["validation_fraction"])
        job_args = job_kwargs(
            job,
            data_path=str(data),
            out_dir=str(Path(tmp) / "runs"),
            settings=settings,
            phase="tune",
            seeds=[0],
            tuning_seeds=[],
            lr_grid=[1e-4 * (i + 1) for i in range(args.stack)],
            device=args.device,
            threads=args.threads,
        )
        done = python_child(JOB, json.dumps(job_args), what="the train job", env=checkout_env())
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            json.dumps(
                {
                    "config": args.config,
                    "problem": settings["problem"],
                    "model": settings["model"],
                    "batch_size": settings["batch_size"],
                    "sizes": meta["sizes"],
                    "data_file_mb": round(data.stat().st_size / 2**20),
                    "stack": args.stack,
                    "threads": args.threads,
                    "device": args.device,
                    **result,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
