"""The experiment matrix: studies crossed into cells, cells split into train jobs.

A config declares named studies. Each study crosses its `factors` (lists of values) into
cells; every cell starts from the config's `defaults`, then the study's `fixed` settings,
then its factor values. The learning rate is not a factor: each cell is tuned over the
protocol's grid on the tuning seeds, then evaluated on the evaluation seeds (see `jobs`).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any

from optreg.data.registry import dataset_entries, generation_keys
from optreg.naming import FUSED, format_value, run_dir, run_file
from optreg.settings import SETTING_FIELDS, Settings
from optreg.study.errors import ConfigError
from optreg.training.protocol import protocols
from optreg.training.registry import MODELS

# Settings that describe a cell; the order is the order of columns in tables and of the
# parts of a cell's id. A run adds a learning rate and a seed.
SETTING_KEYS = SETTING_FIELDS


# Factors that shape a problem's MLP instead of being settings of their own: `depth` hidden
# layers of `width` units each replace the problem's `hidden`. A run's settings keep only the
# resulting `model.hidden`, so a cell named by depth and the same network named by its
# problem are one and the same run.
MODEL_FACTORS = ("depth", "width")


# The canonical order of factors in a cell's id and in tables.
FACTOR_KEYS = (*SETTING_KEYS[:3], *MODEL_FACTORS, *SETTING_KEYS[3:])


@dataclass(frozen=True)
class Cell:
    """One point of a study's matrix: its factor values, full settings and learning-rate grid,
    and the seeds it is retuned on (none with a one-rate grid: it chooses nothing)."""

    study: str
    factors: dict[str, Any]
    settings: Settings
    lr_grid: tuple[float, ...]
    default_lr: float
    id: str = field(init=False)
    retuning_seeds: tuple[int, ...] = ()

    @property
    def protocols(self) -> tuple[str, ...]:
        """The protocols its evaluation seeds are trained under (`training.protocol`)."""
        return protocols(self.lr_grid, self.default_lr, self.retuning_seeds)

    def __post_init__(self):
        label = "_".join(f"{k}-{format_value(v)}" for k, v in self.factors.items())
        object.__setattr__(self, "id", label)


@dataclass(frozen=True)
class Job:
    """One train job of a cell: `tune` a block of tuning seeds, `eval` a block of evaluation
    seeds, or both (`tune-eval`: all of the tuning seeds, then the first evaluation block)."""

    cell: Cell
    phase: str
    block: str
    seeds: tuple[int, ...]  # evaluation seeds, or tuning seeds for a `tune` job
    tuning_seeds: tuple[int, ...] = ()  # a `tune-eval` job's tuning seeds
    # The equal job of an earlier study that trains this job's runs (see `share_runs`);
    # None: this job trains them itself.
    source: Job | None = None
    # The look of the sequential design it belongs to (protocol.sequential): 1, the
    # evaluation seeds every cell has; a later one only for cells whose claims are open.
    look: int = 1

    @property
    def study(self) -> str:
        return self.cell.study

    @property
    def trains(self) -> bool:
        """Whether this job is trained (rather than reading an earlier study's equal job)."""
        return self.source is None

    @property
    def trained_by(self) -> Job:
        """The job whose runs are this job's runs: itself, or its `source`."""
        return self.source or self

    @property
    def tunes(self) -> bool:
        """Whether the job trains tuning runs (those an evaluation chooses its rate from)."""
        return self.phase in ("tune", FUSED)

    @property
    def runs(self) -> int:
        """Training runs in this job: every grid rate per tuning seed, one per protocol and
        evaluation seed (fewer where two protocols choose the same rate)."""
        grid = len(self.cell.lr_grid)
        if self.phase == "tune":
            return grid * len(self.seeds)
        return grid * len(self.tuning_seeds) + len(self.cell.protocols) * len(self.seeds)

    @property
    def folder(self) -> str:
        """The folder of this job's run records (relative to the results folder): that of
        the job which trains them."""
        job = self.trained_by
        return run_dir(job.study, job.phase, job.cell.id, job.block)

    @property
    def tuning_files(self) -> list[str]:
        """The file names of the job's tuning runs (none for an `eval` job)."""
        seeds = self.seeds if self.phase == "tune" else self.tuning_seeds
        return [run_file(lr, s) for s in seeds for lr in self.cell.lr_grid]

    @property
    def files(self) -> list[str]:
        """The file names of every run record the job writes."""
        if self.phase == "tune":
            return self.tuning_files
        evaluation = [run_file(None, s, p) for p in self.cell.protocols for s in self.seeds]
        return self.tuning_files + evaluation


def _normalize(settings: dict, factors: dict, where: str) -> None:
    # `strength` means nothing without a penalty: collapse it so that `none` is one cell.
    if settings["penalty"] == "none":
        settings["strength"] = 0.0
        if "strength" in factors:
            factors["strength"] = 0.0
    elif not settings.get("strength"):
        raise ConfigError(
            f"{where}: penalty '{settings['penalty']}' needs a positive strength "
            "(set it in defaults, fixed or factors)"
        )


def cells(config: dict) -> list[Cell]:
    """Every distinct cell of every study, in config order."""
    from optreg.study.extensions import with_extensions

    out = []
    protocol = config["protocol"]
    datasets = dataset_entries(config)
    not_split = ("root", "download", *generation_keys())
    for name, study in config["studies"].items():
        base = {k: copy.deepcopy(v) for k, v in config["defaults"].items()}
        base.update(copy.deepcopy(study.get("fixed", {})))
        base.setdefault("strength", 0.0)
        base.setdefault("schedule", "constant")
        grid = tuple(sorted(float(v) for v in study.get("lr_grid", protocol["lr_grid"])))
        # Canonical key order: reordering a study's factors in the config renames nothing.
        keys = [k for k in FACTOR_KEYS if k in study["factors"]]
        seen = set()
        for values in itertools.product(*(study["factors"][k] for k in keys)):
            factors = dict(zip(keys, values, strict=True))
            merged = {**base, **factors}
            _normalize(merged, factors, f"studies.{name}")
            settings = {k: merged[k] for k in SETTING_KEYS}
            settings["strength"] = float(settings["strength"])
            # Budget marks before the cell's last epoch (the last is a budget of its own).
            settings["marks"] = sorted({m for m in merged.get("marks", []) if m < merged["epochs"]})
            problem = config["problems"][settings["problem"]]
            # Only the model's own sizes: a CNN setting never reruns an MLP cell.
            # (`dense` only when given, so that CNN cells without one keep their settings.)
            builtin = MODELS.get(problem["model"])
            sizes = builtin.sizes if builtin else ()
            settings["model"] = {
                "model": problem["model"],
                **{k: copy.deepcopy(problem[k]) for k in sizes if k in problem},
            }
            shape = {k: merged[k] for k in MODEL_FACTORS if k in merged}
            if shape:
                if problem["model"] != "mlp":
                    raise ConfigError(
                        f"studies.{name}: {' and '.join(shape)} apply to MLP problems only, "
                        f"but problem '{settings['problem']}' is a {problem['model']}"
                    )
                hidden = settings["model"]["hidden"]
                if not hidden and len(shape) == 1:
                    # A linear model (hidden: []) has no layer to repeat or to widen.
                    given, needs = ("depth", "width") if "depth" in shape else ("width", "depth")
                    raise ConfigError(
                        f"studies.{name}: {given} on problem '{settings['problem']}', a linear "
                        f"model (hidden: []), needs a {needs} too (a fixed one or a factor), "
                        "or a problem with a hidden layer"
                    )
                depth = shape.get("depth", len(hidden))
                settings["model"]["hidden"] = [shape.get("width", hidden[0])] * depth
            # Where the raw files lie and whether they may be downloaded is not part of a run.
            split = {k: v for k, v in config["data"].items() if k not in not_split}
            settings["data"] = {"dataset": problem["dataset"], **split}
            if "train_size" in problem:  # a subset of the training split: part of its runs
                settings["data"]["train_size"] = problem["train_size"]
            # A generated set's arguments are part of its runs; no other set's runs see them.
            entry = datasets[problem["dataset"]]
            generation = entry.generation_args(config)
            if generation is not None:
                settings["data"][entry.generation] = copy.deepcopy(generation)
            settings = Settings.of(with_extensions(settings, config))
            default_lr = float(protocol["default_lr"][settings.optimizer])
            retuning = tuple(sorted(protocol.get("retuning_seeds", []))) if len(grid) > 1 else ()
            cell = Cell(name, factors, settings, grid, default_lr, retuning)
            if cell.id not in seen:
                seen.add(cell.id)
                out.append(cell)
    return out


def rate_traits(cells) -> dict[str, frozenset[str]]:
    """What each study does with the learning rate (`optreg.report.figures.RATE_TRAITS`):
    "grid" when some cell's grid has several rates, "choice" when some cell's rate can
    differ from its optimizer's default rate. A study whose every cell trains at its default
    rate alone has neither: its figures across the grid, or of tuned against default rates,
    would show one point, or the same runs twice."""
    traits: dict[str, set[str]] = {}
    for cell in cells:
        found = traits.setdefault(cell.study, set())
        if len(cell.lr_grid) > 1:
            found |= {"grid", "choice"}
        elif not math.isclose(cell.lr_grid[0], cell.default_lr, rel_tol=1e-9):
            found.add("choice")
    return {study: frozenset(found) for study, found in traits.items()}


def seed_block(seed: int, size: int) -> str:
    """Label of the block of `size` consecutive seed values that holds `seed`."""
    first = seed // size * size
    return f"{first}-{first + size - 1}"


def _blocks(seeds, size: int) -> dict[str, list[int]]:
    blocks: dict[str, list[int]] = {}
    for seed in sorted(seeds):
        blocks.setdefault(seed_block(seed, size), []).append(seed)
    return blocks


def plan_looks(protocol: dict) -> list[list[int]]:
    """The evaluation seeds of each look of the sequential design: `evaluation_seeds`, then
    `sequential.seeds` in blocks of `sequential.block` (none: one look)."""
    sequential = protocol.get("sequential") or {}
    extra = list(sequential.get("seeds", []))
    block = int(sequential.get("block", len(extra) or 1))
    return [list(protocol["evaluation_seeds"])] + [
        extra[i : i + block] for i in range(0, len(extra), block)
    ]


def jobs(config: dict) -> list[Job]:
    """Every study's train jobs: each cell's tuning and evaluation seeds in blocks of
    `seeds_per_job`; a job equal to an earlier study's reads that one's runs (`share_runs`).

    A cell's tuning seeds include its retuning seeds. When they fill one block, one
    `tune-eval` job tunes the cell and evaluates its first evaluation block, and the further
    blocks are `eval` jobs that read its tuning runs; with several tuning blocks, every
    block is a job of its own. Either way, adding evaluation seeds in a new block adds only
    jobs for that block.
    """
    size = config["seeds_per_job"]
    tuning_seeds = config["protocol"]["tuning_seeds"]
    eval_blocks = list(_blocks(config["protocol"]["evaluation_seeds"], size).items())
    out = []
    for cell in cells(config):
        # A cell's retuning seeds are tuning seeds too; the train job tells the two apart.
        tune_blocks = _blocks([*tuning_seeds, *cell.retuning_seeds], size)
        if len(tune_blocks) == 1:
            (tune_block, tune_seeds), (first, seeds) = (
                next(iter(tune_blocks.items())),
                eval_blocks[0],
            )
            out.append(Job(cell, FUSED, f"{tune_block}_{first}", tuple(seeds), tuple(tune_seeds)))
            rest = eval_blocks[1:]
        else:
            out += [Job(cell, "tune", b, tuple(m)) for b, m in tune_blocks.items()]
            rest = eval_blocks
        out += [Job(cell, "eval", b, tuple(m)) for b, m in rest]
        # Later looks' seeds: trained only for the cells a look finds still open.
        for look, seeds in enumerate(plan_looks(config["protocol"])[1:], start=2):
            out += [
                Job(cell, "eval", b, tuple(m), look=look) for b, m in _blocks(seeds, size).items()
            ]
    return share_runs(out)


def training_key(job: Job) -> str:
    """Everything that decides a job's runs, and nothing that only names them: the cell's
    settings (model, data and its split included), grid and default rate, the job's phase,
    seed block and seeds. Two jobs with equal keys train bit-identical runs, whatever their
    study, cell id or factors."""
    return json.dumps(
        {
            "settings": job.cell.settings.to_dict(),
            "lr_grid": job.cell.lr_grid,
            "default_lr": job.cell.default_lr,
            "retuning_seeds": job.cell.retuning_seeds,
            "phase": job.phase,
            "block": job.block,
            "seeds": job.seeds,
            "tuning_seeds": job.tuning_seeds,
        },
        sort_keys=True,
    )


def share_runs(jobs: list[Job]) -> list[Job]:
    """`jobs`, each job equal to an earlier one (`training_key`) pointing at it as its
    `source`: a run is trained once, by the first study (in config order) that has it, and
    every later study reads that job's records. Only exact equals are shared, so a study
    whose settings change stops sharing and trains its own jobs again."""
    first: dict[str, Job] = {}
    out = []
    for job in jobs:
        source = first.setdefault(training_key(job), job)
        # Within one study, cells differ in their settings; should two ever train the same
        # runs, each keeps its folder (a study's tables read a folder under one cell's name).
        shared = source is not job and source.study != job.study
        out.append(dataclasses.replace(job, source=source) if shared else job)
    return out


# A train job may run this much longer than its estimate before its time limit stops it.
RUNTIME_MARGIN = 1.5
# The longest time limit a train job is given: no cluster grants more, and a longer
# estimate is a `run_epoch_s` in the wrong unit (or a product that overflows).
MAX_RUNTIME_MINUTES = 365 * 24 * 60


def train_runtime(job: Job, problems: dict) -> int:
    """Minutes a train job may run (Snakemake's `runtime`, SLURM's `--time`): its run-epochs
    times its problem's `run_epoch_s`, with RUNTIME_MARGIN; at least one minute. A job that
    still hits the limit is resubmitted and resumes from its checkpoint."""
    settings = job.cell.settings
    seconds = job.runs * settings.epochs * problems[settings.problem]["run_epoch_s"]
    return max(1, math.ceil(RUNTIME_MARGIN * seconds / 60))


def runtime_problems(jobs: list[Job], problems: dict) -> list[str]:
    """A line for each problem one of whose train jobs would be given more than
    MAX_RUNTIME_MINUTES (or a non-finite time), with the job's estimate."""
    lines = {}
    for job in jobs:
        if not job.trains:
            continue
        settings = job.cell.settings
        seconds = job.runs * settings.epochs * problems[settings.problem]["run_epoch_s"]
        if settings.problem in lines or (
            math.isfinite(seconds) and RUNTIME_MARGIN * seconds / 60 <= MAX_RUNTIME_MINUTES
        ):
            continue
        lines[settings.problem] = (
            f"problems.{settings.problem}.run_epoch_s: a train job of study '{job.study}' "
            f"({job.runs} runs x {settings.epochs} epochs x "
            f"{problems[settings.problem]['run_epoch_s']:g} s) would be given "
            f"{RUNTIME_MARGIN * seconds / 60:.3g} minutes, more than the limit of "
            f"{MAX_RUNTIME_MINUTES:,} (a year); run_epoch_s is seconds per run and epoch"
        )
    return list(lines.values())
