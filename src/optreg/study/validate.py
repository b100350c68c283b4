"""Validating a config: the schema's checks, then those a schema cannot express.

A config that cannot describe a study stops here, before any job, with one line per
problem naming the key.
"""

from __future__ import annotations

import copy
import difflib
import math
import os
from typing import Any

from optreg.data.registry import dataset_entries, training_rows
from optreg.naming import format_value
from optreg.study.config_files import read_config_file
from optreg.study.errors import ConfigError
from optreg.study.matrix import jobs, plan_looks, runtime_problems, seed_block
from optreg.study.schema import (
    _describe,
    _fill_defaults,
    _key_path,
    _validator_class,
    config_schema,
)
from optreg.study.shapes import check_shapes
from optreg.training.registry import MODELS


def _non_finite(value: Any, parts: tuple = ()) -> list[str]:
    """Every NaN or infinite number in the config, by key (no range check can catch them),
    and every key that is not text (YAML reads `1:` or `true:` as a number or a boolean)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{_key_path(parts)}: {value} is not a finite number"]
    if isinstance(value, dict):
        keys = [
            f"{_key_path(parts)}: key {k!r} is not text; quote it if it is meant"
            for k in value
            if not isinstance(k, str)
        ]
        return keys + [
            p for k, v in value.items() if isinstance(k, str) for p in _non_finite(v, (*parts, k))
        ]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _non_finite(v, (*parts, i))]
    return []


def _sequential_problems(protocol: dict, per_job: int) -> list[str]:
    """protocol.sequential's seeds: seeds of their own, in seed blocks of their own."""
    extra = protocol["sequential"]["seeds"]
    problems = []
    for name in ("tuning", "retuning", "evaluation"):
        shared = sorted(set(extra) & set(protocol[f"{name}_seeds"]))
        if shared:
            problems.append(
                f"protocol.sequential.seeds: seeds {shared} are also {name} seeds; a look "
                "adds seeds of its own"
            )
    if problems:
        return problems
    # A train job holds one seed block: two looks must not share one.
    owner = {seed_block(s, per_job): 1 for s in protocol["evaluation_seeds"]}
    for look, seeds in enumerate(plan_looks(protocol)[1:], start=2):
        for block in sorted({seed_block(s, per_job) for s in seeds}):
            if owner.setdefault(block, look) != look:
                return [
                    f"protocol.sequential.seeds: seed block {block} (seeds_per_job "
                    f"{per_job}) holds seeds of look {owner[block]} and of look {look}; a "
                    "train job trains one look's seeds: make sequential.block a multiple "
                    "of seeds_per_job and start the seeds at a multiple of it (for example "
                    f"{max(protocol['evaluation_seeds']) // per_job * per_job + per_job})"
                ]
    return problems


def validate_config(config: dict, source: str = "config") -> dict:
    """Return a validated copy of `config` with defaults filled in; raise ConfigError otherwise.

    All problems found by the schema are reported at once, then the checks a
    schema cannot express (a setting both fixed and a factor, equal values after
    formatting, a penalty without a strength, a matrix too large to be meant).
    """
    if not isinstance(config, dict):
        raise ConfigError(f"{source}: the config must be a mapping, got {type(config).__name__}")
    config = copy.deepcopy(config)
    from optreg.study.extensions import (  # user optimizers, models, datasets
        check_config,
        extend_schema,
    )

    schema = extend_schema(config_schema(), config)
    non_finite = _non_finite(config)
    if any("is not text" in line for line in non_finite):
        # The schema's messages about such keys would only repeat them, less clearly.
        errors = []
    else:
        validator = _validator_class()(schema)
        errors = sorted(
            validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))
        )
    if errors or non_finite:
        # A NaN fails no range check, so the schema's own message would not name the cause.
        named = {line.split(":")[0] for line in non_finite}
        lines = non_finite + [
            _describe(e) for e in errors if _key_path(e.absolute_path) not in named
        ]
        raise ConfigError(f"{source} is invalid:\n" + "\n".join(f"  - {line}" for line in lines))
    _fill_defaults(config, schema)

    problems = check_shapes(config) + _check_paths(config)
    protocol = config["protocol"]
    overlap = sorted(set(protocol["tuning_seeds"]) & set(protocol["evaluation_seeds"]))
    if overlap:
        problems.append(
            f"protocol.evaluation_seeds: seeds {overlap} are also tuning seeds; the seeds that "
            "choose a learning rate must not be the seeds that report it"
        )
    for name, seeds in (
        ("tuning", protocol["tuning_seeds"]),
        ("evaluation", protocol["evaluation_seeds"]),
    ):
        shared = sorted(set(protocol["retuning_seeds"]) & set(seeds))
        if shared:
            problems.append(
                f"protocol.retuning_seeds: seeds {shared} are also {name} seeds; a second "
                "tuning must use seeds of its own"
            )
    problems += _sequential_problems(protocol, config["seeds_per_job"])
    grids = [("protocol.lr_grid", protocol["lr_grid"])]
    for name, study in config["studies"].items():
        fixed = study.get("fixed", {})
        for key in sorted(set(fixed) & set(study["factors"])):
            problems.append(f"studies.{name}.fixed.{key}: '{key}' is also a factor of this study")
        for key, values in study["factors"].items():
            problems += _duplicates(f"studies.{name}.factors.{key}", values)
        if "lr_grid" in study:
            grids.append((f"studies.{name}.lr_grid", study["lr_grid"]))
        named = [("fixed.problem", fixed.get("problem"))] + [
            (f"factors.problem[{i}]", p) for i, p in enumerate(study["factors"].get("problem", []))
        ]
        for where, problem in named:
            if problem is not None and problem not in config["problems"]:
                problems.append(_unknown_problem(f"studies.{name}.{where}", problem, config))
    low, high = protocol["lr_limits"]
    if low > high:
        problems.append(
            f"protocol.lr_limits: [{low:g}, {high:g}] must be [lowest, highest]; "
            f"write [{high:g}, {low:g}]"
        )
    for where, grid in grids:
        problems += _duplicates(where, grid)
        if grid and low <= high and not low <= min(grid) <= max(grid) <= high:
            problems.append(
                f"protocol.lr_limits: [{low:g}, {high:g}] must contain every grid, but "
                f"{where} spans [{min(grid):g}, {max(grid):g}]"
            )
    for entry in dataset_entries(config).values():
        problems += entry.generation_problems(config)
    if config["defaults"]["problem"] not in config["problems"]:
        problems.append(_unknown_problem("defaults.problem", config["defaults"]["problem"], config))
    if not problems:
        problems += check_config(config)
    if not problems:
        try:
            all_jobs = jobs(config)
        except ConfigError as exc:
            problems.append(str(exc))
        else:
            total = sum(j.runs for j in all_jobs)
            if total > config["max_runs"]:
                problems.append(
                    f"max_runs: the matrix has {total} runs, more than max_runs="
                    f"{config['max_runs']}; raise max_runs if this is meant"
                )
            problems += _check_sizes(config, all_jobs)
    if problems:
        raise ConfigError(f"{source} is invalid:\n" + "\n".join(f"  - {p}" for p in problems))
    return config


# Memory one process may be asked for: more than a large node holds is a typo, not a plan.
MAX_BYTES = 64 * 10**9


def _train_size_problems(name: str, config: dict, entries) -> list[str]:
    """A line when a problem's `train_size` asks for more rows than its data set's training
    split holds, or for fewer than its classes (a stratified subset needs one of each)."""
    problem = config["problems"][name]
    size, entry = problem.get("train_size"), entries[problem["dataset"]]
    if size is None:
        return []
    rows = training_rows(entry, config)
    if rows is not None and size > rows:
        return [
            f"problems.{name}.train_size: {size:,} is more than the {rows:,} rows of the "
            f"training split of '{entry.name}'"
        ]
    if entry.classes and size < entry.classes:
        return [
            f"problems.{name}.train_size: {size:,} rows cannot hold one of each of the "
            f"{entry.classes} classes of '{entry.name}'"
        ]
    return []


def _check_sizes(config: dict, all_jobs) -> list[str]:
    """What the registries can estimate without loading anything, against MAX_BYTES and the
    longest time limit: the data sets the jobs train on (their stratified split, a generated
    set's size), one run's model with its gradients and optimizer state, and each train
    job's time limit."""
    entries, problems, seen = dataset_entries(config), [], set()
    for dataset in dict.fromkeys(j.cell.settings.dataset for j in all_jobs):
        problems += entries[dataset].size_problems(config, MAX_BYTES)
    for name in dict.fromkeys(j.cell.settings.problem for j in all_jobs):
        problems += _train_size_problems(name, config, entries)
    for job in all_jobs:
        settings = job.cell.settings
        model, entry = MODELS.get(settings["model"]["model"]), entries[settings.dataset]
        shape = entry.shape(entry.generation_args(config))
        if model is None or model.parameters is None or shape is None or not entry.classes:
            continue
        if settings.problem in seen:
            continue
        count = model.parameters(dict(settings["model"]), shape, entry.classes)
        # float32 parameters, their gradients and up to two state tensors each (Adam).
        need = 4 * 4 * count
        if need > MAX_BYTES:
            seen.add(settings.problem)
            problems.append(
                f"problems.{settings.problem}: one run of study '{job.study}' has a "
                f"{settings['model']['model']} of {count:,} parameters "
                f"(hidden {_widths(settings['model'].get('hidden', []))}), about "
                f"{need / 1e9:,.0f} GB with its gradients and optimizer state, more than "
                f"the limit of {MAX_BYTES / 1e9:.0f} GB"
            )
    return problems + runtime_problems(all_jobs, config["problems"])


def _widths(hidden) -> str:
    hidden = list(hidden)
    if len(hidden) > 3 and len(set(hidden)) == 1:
        return f"{len(hidden)} layers of {hidden[0]}"
    return str(hidden)


def _check_paths(config: dict) -> list[str]:
    """Configured paths of the wrong kind (a missing data root is prepare_data's to report:
    with data.download it does not exist before that job), and `extensions_path` folders
    that are missing or files: modules would silently not be found there."""
    problems = []
    root = config["data"]["root"]
    if os.path.exists(root) and not os.path.isdir(root):
        problems.append(
            f"data.root: '{root}' is a file; it must be the folder the data sets lie in"
        )
    for i, folder in enumerate(config["extensions_path"]):
        if os.path.isdir(folder):
            continue
        where = f"extensions_path[{i}]: '{folder}'"
        if os.path.exists(folder):
            problems.append(f"{where} is a file; list the folder that holds the module")
            continue
        parent, base = os.path.split(os.path.normpath(folder))
        names = os.listdir(parent or ".") if os.path.isdir(parent or ".") else []
        close = difflib.get_close_matches(
            base, [n for n in names if os.path.isdir(os.path.join(parent or ".", n))], 1
        )
        hint = f" (did you mean '{os.path.join(parent, close[0])}'?)" if close else ""
        problems.append(
            f"{where} does not exist{hint}; it is relative to the working directory {os.getcwd()}"
        )
    return problems


def _duplicates(where: str, values) -> list[str]:
    labels = [format_value(v) for v in values]
    dupes = sorted({lab for lab in labels if labels.count(lab) > 1})
    return [f"{where}: values {dupes} are equal once formatted"] if dupes else []


def _unknown_problem(where: str, name: str, config: dict) -> str:
    return f"{where}: unknown problem '{name}'; problems: {', '.join(config['problems'])}"


def load_config(path: str) -> dict:
    """Read and validate a config file (for use outside Snakemake)."""
    return validate_config(read_config_file(path), source=str(path))
