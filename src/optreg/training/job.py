"""One train job: every run of a cell's block of seeds, its records written together.

The job runner around the training loop (`optreg.training.loop`): it claims a GPU, loads
the prepared data, plans the runs of each phase (`optreg.training.protocol`), resumes from
or saves checkpoints, and writes one metrics record per run.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from optreg import __version__
from optreg.data.prepared import Prepared, load_verified, train_subset
from optreg.extensions import cell_packages, module_packages
from optreg.io import canonical_hash
from optreg.naming import FUSED
from optreg.origin import code_origin
from optreg.records import SCHEMA_VERSION, read_run, write_manifest, write_run
from optreg.settings import Settings
from optreg.training.checkpoint import Checkpoints, job_key
from optreg.training.loop import train_runs
from optreg.training.memory import max_stack, stack_limit
from optreg.training.progress import Progress
from optreg.training.protocol import (
    Run,
    added_rates,
    extend_grid,
    plan_runs,
    protocols,
    select_lr,
    selections,
    tuning_sets,
)
from optreg.training.watch import Watch

progress_log = logging.getLogger("optreg.training.progress")


def resolve_device(device: str) -> torch.device:
    """'auto' picks CUDA when available; 'cuda' without a GPU is an error, not a silent fallback."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but torch sees no CUDA device")
    return torch.device(device)


def provenance(
    device: torch.device, stacked: int, gpu_id: str | None = None, packages: dict | None = None
) -> dict:
    """Versions and machine facts recorded with every run, including the device it used.

    `device` names the hardware (`cpu` or the GPU's model), `torch_device` is torch's name
    for it in the job (`cpu`, `cuda:1`), `gpu_id` the machine's id of that GPU (its index,
    or its CUDA_VISIBLE_DEVICES entry; null on the CPU). `packages`: the installed packages
    the cell's own optimizer, model or data set come from, by distribution name
    (`optreg.extensions.module_packages`); empty for a cell of built-ins.
    """
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": importlib.metadata.version("numpy"),
        "optreg": __version__,
        "code": code_origin(),
        "platform": platform.platform(),
        "host": platform.node(),
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "torch_device": str(device),
        "gpu_id": gpu_id,
        "torch_threads": torch.get_num_threads(),
        "stacked_seeds": stacked,
        "packages": dict(packages or {}),
    }


@dataclass
class JobState:
    """Where a job stands: built at its start, or from its checkpoint when resumed.

    `records` are the (file name, record) pairs of its finished steps; `tuning` the tuning
    records an evaluation chooses from (the tune files', and those this job trained);
    `step` the index of the step in progress, with the results of its finished stacks
    (`step_results`), its wall time so far (`step_wall`) and the snapshot of the stack in
    training (`stack`). `limit` is the stack size, kept on resume: the results would not
    change with another, the checkpoint would.
    """

    records: list
    tuning: list[dict]
    limit: int | None
    step: int = 0
    step_results: list = field(default_factory=list)
    step_wall: float = 0.0
    stack: dict | None = None
    progress_done: int = 0

    @classmethod
    def restore(cls, saved: dict, tuning: list[dict]) -> JobState:
        """The state a checkpoint (`Watch.between_batches`) saved."""
        records = [tuple(pair) for pair in json.loads(saved["records"])]
        # The tuning runs: those of the tune files, and those this job trained (its own tune
        # step, or rates it added past the grid's edge), each (rate, seed) once.
        own = [record for _, record in records if record["phase"] == "tune"]
        tuning = list({(r["settings"]["lr"], r["seed"]): r for r in [*tuning, *own]}.values())
        return cls(
            records,
            tuning,
            saved["limit"],
            saved["step"],
            saved["step_results"],
            saved["step_wall"],
            saved["stack"],
            saved["progress_done"],
        )


@dataclass(frozen=True)
class _Training:
    """What every step of a job trains with: its data, cell, device and stack size."""

    data: Prepared
    settings: Settings
    job: dict  # study, combination, factors, settings (record form), data_sha256
    device: torch.device
    limit: int | None
    gpu_id: str | None
    lr_grid: tuple[float, ...]
    default_lr: float
    retuning_seeds: tuple[int, ...]


def run_job(
    *,
    data_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    study: str,
    combination: str,
    factors: dict,
    settings: Settings | dict,
    phase: str,
    seeds,
    lr_grid,
    default_lr: float,
    tuning_seeds=(),
    tuning_files=(),
    retuning_seeds=(),
    lr_limits=(1e-5, 10.0),
    device: str = "cpu",
    threads: int = 1,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_minutes: float | None = None,
) -> list[Path]:
    """Train every run of one job (see `optreg.training.protocol`); write one metrics JSON
    per run.

    `phase` is `tune` (every grid rate on `seeds`), `eval` (`seeds` under each protocol, at
    the rates chosen from `tuning_files`, and at `default_lr`) or `tune-eval`: tune on
    `tuning_seeds`, choose from those runs, evaluate `seeds`, all in one process; the records
    are the same as those of a `tune` job followed by an `eval` job. The tuning runs of
    `retuning_seeds` (among the tuning seeds, or in `tuning_files`) choose the `retuned`
    protocol's rate, the others every other protocol's (`optreg.training.protocol.selections`).
    Before evaluating, a best rate on an edge of the grid makes the job train that protocol's
    tuning seeds at further rates within `lr_limits` (see
    `optreg.training.protocol.extend_grid`); their records are tuning records of this job.
    The files appear together: they are written into a hidden temporary folder that
    is renamed to `out_dir` at the end, so a killed job leaves no `out_dir` at all.
    `threads` caps torch's threads: Snakemake's OMP_NUM_THREADS reaches torch only when
    the job runs under Snakemake. On CUDA the job trains on a GPU no concurrent job holds
    (`optreg.training.gpus`: Snakemake counts GPUs but does not assign them).
    With `checkpoint` (a file path, see `optreg.training.checkpoint`), the job saves its
    state there every `checkpoint_minutes` (None: never on a timer) and on SIGTERM or SIGINT,
    after which it raises `Interrupted`; a matching checkpoint found at the start is resumed.
    Once the job's files are written, the checkpoint holds only their records, marked
    finished (see `optreg.training.checkpoint.remove_finished`). Progress goes to
    `optreg.training.progress`.
    """
    from optreg.training.gpus import hold_gpu  # only training claims GPUs

    torch.set_num_threads(threads)
    tuning = [read_run(f) for f in tuning_files]
    # A one-rate grid chooses nothing, so it is never retuned (protocol.protocols).
    retuning_seeds = tuple(sorted(retuning_seeds)) if len(lr_grid) > 1 else ()
    steps = [("tune", tuning_seeds), ("eval", seeds)] if phase == FUSED else [(phase, seeds)]
    settings = Settings.of(settings)
    # The job's part of every record: the cell's settings in their record form.
    job = {
        "study": study,
        "combination": combination,
        "factors": factors,
        "settings": settings.to_dict(),
    }
    dev = resolve_device(device)
    with hold_gpu(torch.cuda.device_count() if dev.type == "cuda" else 0) as slot:
        if slot is not None:
            dev = torch.device("cuda", slot.index)
        data = load_verified(data_path, device=dev)
        job["data_sha256"] = data.sha256
        data = train_subset(
            data, settings.data.get("train_size"), settings.data.get("split_seed", 0)
        )
        checkpoints = None
        saved = None
        if checkpoint is not None:
            key = {
                **job,
                "phase": phase,
                "steps": steps,
                "lr_grid": sorted(lr_grid),
                "default_lr": default_lr,
                "retuning_seeds": list(retuning_seeds),
                "selection": select_lr(tuning) if tuning else None,
                "device": dev.type,
                "threads": threads,
                **user_source(settings),
            }
            every_s = None if checkpoint_minutes is None else 60 * checkpoint_minutes
            checkpoints = Checkpoints(checkpoint, job_key(key), every_s)
            saved = checkpoints.load()
        if saved and saved.get("finished"):
            progress_log.info(
                "%s %s finished before, but its files were lost: writing them from checkpoint %s",
                study,
                combination,
                checkpoints.path,
            )
            return _write_together(out_dir, [tuple(pair) for pair in json.loads(saved["records"])])
        if saved:
            state = JobState.restore(saved, tuning)
        else:
            limit = stack_limit(settings, data.meta, max_stack(data, settings, dev))
            state = JobState([], tuning, limit)
        training = _Training(
            data,
            settings,
            job,
            dev,
            state.limit,
            slot.gpu_id if slot else None,
            tuple(lr_grid),
            float(default_lr),
            retuning_seeds,
        )
        progress = _start_progress(training, phase, steps, threads, data_path, state)
        if saved:
            _log_resume(training, steps, state, checkpoints.path)
        watch = Watch(progress, checkpoints)
        with checkpoints.on_signals() if checkpoints else contextlib.nullcontext():
            for index in range(state.step, len(steps)):
                state.step = index
                _run_step(training, steps[index], state, watch, lr_limits)
    records = state.records
    written = _write_together(out_dir, records, usage=process_usage())
    if checkpoints is not None:
        # Kept until the workflow has the files (optreg.training.checkpoint.remove_finished):
        # a job stopped before Snakemake is done with it loses them, and writes them again
        # from here.
        checkpoints.save({"finished": True, "records": json.dumps(records)})
    progress.finish(len(records), sum(record["diverged"] for _, record in records))
    return written


def _start_progress(training: _Training, phase, steps, threads, data_path, state):
    """The job's progress counter, and its first log line."""
    per_seed = {
        "tune": len(training.lr_grid),
        "eval": len(protocols(training.lr_grid, training.default_lr, training.retuning_seeds)),
    }
    run_counts = [len(step_seeds) * per_seed[step] for step, step_seeds in steps]
    job, settings, limit = training.job, training.settings, training.limit
    progress = Progress(job["study"], job["combination"], sum(run_counts) * settings.epochs)
    progress.resumed(state.progress_done)
    progress_log.info(
        "%s %s start: %s %s runs, stacks of up to %d, %s epochs, device %s, %d threads, data %s",
        job["study"],
        job["combination"],
        phase,
        " + ".join(map(str, run_counts)),
        min(max(run_counts), limit or max(run_counts)),
        settings.epochs,
        training.device,
        threads,
        data_path,
    )
    return progress


def _log_resume(training: _Training, steps, state: JobState, path) -> None:
    at = state.stack
    progress_log.info(
        "%s %s resuming from checkpoint %s: %s, %d runs done, epoch %d, %d samples in",
        training.job["study"],
        training.job["combination"],
        path,
        steps[state.step][0],
        len(state.step_results),
        at["epoch"],
        at["next_batch"],
    )


def _run_step(training: _Training, step_and_seeds, state: JobState, watch, lr_limits):
    """One step of a job (`tune` or `eval`), from where `state` stands; adds its records."""
    step, step_seeds = step_and_seeds
    chosen = None
    if step == "eval":
        extensions = {
            protocol: _extend_grid(training, state, protocol, lr_limits)
            for protocol in tuning_sets(state.tuning, training.retuning_seeds)
        }
        chosen = selections(
            state.tuning, training.lr_grid, training.default_lr, training.retuning_seeds, extensions
        )
    runs = plan_runs(
        step, step_seeds, training.lr_grid, training.default_lr, chosen, training.retuning_seeds
    )
    watch.phase = step
    watch.job_state = {
        "step": state.step,
        # As JSON, like the files: any record field survives weights-only loading.
        "records": json.dumps(state.records),
        "selection": chosen,
        "limit": state.limit,
    }
    watch.step_started = time.perf_counter() - state.step_wall
    resume = {"results": state.step_results, "stack": state.stack}
    records = _train_records(training, runs, step, chosen, watch.step_started, watch, resume)
    if step == "tune":
        state.tuning = [record for _, record in records]  # what `eval` chooses from
    state.records += records
    # The next step starts from its beginning.
    state.step_results, state.step_wall, state.stack = [], 0.0, None


def _extend_grid(training: _Training, state: JobState, protocol: str, lr_limits) -> dict:
    """One extra tuning round per rate past the grid's edge, on the tuning seeds of
    `protocol` only (optreg.training.protocol.extend_grid); its runs are tuning records of
    this job."""
    mine = tuning_sets(state.tuning, training.retuning_seeds)[protocol]
    others = [r for r in state.tuning if not any(r is m for m in mine)]
    seeds = sorted({r["seed"] for r in mine})
    added: list = []
    train_rate = functools.partial(_train_rate, training, seeds, added)
    mine, _ = extend_grid(mine, lr_limits, train_rate)
    state.tuning = others + mine
    state.records += added
    return {"extended": added_rates(mine, training.lr_grid), "lr_limits": list(lr_limits)}


def _train_rate(training: _Training, seeds, added: list, lr: float) -> list[dict]:
    """Train the tuning seeds at one more rate; their (file name, record) pairs go to `added`."""
    new = _train_records(
        training, [Run(lr, s, None) for s in seeds], "tune", None, time.perf_counter()
    )
    added.extend(new)
    return [record for _, record in new]


def _train_records(training: _Training, runs, step, chosen, started, watch=None, resume=None):
    """Train `runs` and make their records; `chosen`: each protocol's selection. A run at the
    same rate and seed as another (a tuned rate equal to the default rate) is the same run:
    trained once, recorded under both names."""
    distinct = list(dict.fromkeys((r.lr, r.seed) for r in runs))
    lrs, seeds = [lr for lr, _ in distinct], [seed for _, seed in distinct]
    limit, device = training.limit, training.device
    trained = train_runs(
        training.data, training.settings, lrs, seeds, device, limit, watch=watch, resume=resume
    )
    by_run = dict(zip(distinct, trained, strict=True))
    wall = time.perf_counter() - started
    packages = module_packages(cell_packages(training.job["settings"]))
    base = provenance(device, min(len(distinct), limit or len(distinct)), training.gpu_id, packages)
    return [
        (
            run.filename,
            run_record(
                run,
                by_run[(run.lr, run.seed)],
                job=training.job,
                phase=step,
                selection=(chosen or {}).get(run.protocol),
                wall=wall,
                provenance=base,
            ),
        )
        for run in runs
    ]


def run_record(
    run, result: dict, *, job: dict, phase: str, selection, wall: float, provenance: dict
) -> dict:
    """The metrics record of one run. `job`: the job's study, combination, factors, settings
    and data fingerprint (`data_sha256`); `provenance`: its machine and versions."""
    settings = {**job["settings"], "lr": run.lr}
    return {
        "schema_version": SCHEMA_VERSION,
        "study": job["study"],
        "combination": job["combination"],
        "factors": job["factors"],
        "settings": settings,
        "phase": phase,
        "protocol": run.protocol,
        "selection": selection if run.protocol not in (None, "oneshot") else None,
        "seed": run.seed,
        **result,
        "wall_time_s": wall,
        "provenance": {
            **provenance,
            "settings_hash": canonical_hash({"settings": settings, "seed": run.seed}),
            "data_sha256": job["data_sha256"],
        },
    }


# The job's own CPU time and memory, beside its records (optreg.analysis.cost reads it): a
# header and one row, tab-separated (not JSON: every *.json of the folder is a run's record).
USAGE = "usage.tsv"


def process_usage() -> dict:
    """What this process has used so far, from `getrusage`: CPU seconds (user + system) of
    the process itself and of its waited-for children, and its peak memory. Taken at the end
    of a train job, it counts the whole job: the interpreter's start, the imports, loading
    the data, the training; all but writing the files and exiting."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    per_mib = 1 << 20 if sys.platform == "darwin" else 1 << 10
    return {
        "cpu_s": round(own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime, 3),
        "user_s": round(own.ru_utime, 3),
        "system_s": round(own.ru_stime, 3),
        "children_cpu_s": round(children.ru_utime + children.ru_stime, 3),
        "max_rss_mib": round(max(own.ru_maxrss, children.ru_maxrss) / per_mib, 1),
    }


def _write_together(out_dir: str | os.PathLike, records, usage: dict | None = None) -> list[Path]:
    """Validate and write (file name, record) pairs into `out_dir`, all or none: into a
    hidden temporary folder first, renamed to `out_dir` once every file is written; with
    `usage` (`process_usage`), the job's `USAGE` file beside them (not in the manifest: it
    says what the job cost, not what it computed)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, record in records:
            write_run(tmp_dir / name, record)
        write_manifest(tmp_dir, [name for name, _ in records])
        if usage is not None:
            header, row = "\t".join(usage), "\t".join(str(v) for v in usage.values())
            (tmp_dir / USAGE).write_text(f"{header}\n{row}\n")
        os.chmod(tmp_dir, 0o755)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp_dir, out_dir)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return [out_dir / name for name, _ in records]


def user_source(settings: dict) -> dict:
    """The SHA-256 of each user module a cell's jobs import (none for built-in cells), for
    the checkpoint key: a checkpoint saved before the user's file changed is not resumed."""
    import hashlib

    from optreg.extensions import cell_modules, current_path, module_file

    digests = {}
    for module in cell_modules(settings):
        path = module_file(module, current_path())
        if path is not None:
            digests[module] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"user_source": digests} if digests else {}
