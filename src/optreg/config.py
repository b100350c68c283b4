"""Configuration: validation against the JSON Schema, and the experiment matrix.

A config declares named studies. Each study crosses its `factors` (lists of
values) into cells; every cell starts from the config's `defaults`, then the
study's `fixed` settings, then its factor values. The learning rate is not a
factor: each cell is tuned over the protocol's learning-rate grid on the
tuning seeds (one `tune` job per block of tuning seeds, all rates trained
together), then evaluated on the evaluation seeds at the chosen rate and at
the optimizer's customary default rate (one `eval` job per block).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import itertools
import json
import math
import os
import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

SCHEMA_FILE = "config.schema.yaml"
# Settings that describe a cell; the order is the order of columns in tables and of the
# parts of a cell's id. A run adds a learning rate and a seed.
SETTING_KEYS = (
    "problem",
    "optimizer",
    "activation",
    "penalty",
    "strength",
    "momentum",
    "epochs",
    "batch_size",
)
# Factors that shape a problem's MLP instead of being settings of their own: `depth` hidden
# layers of `width` units each replace the problem's `hidden`. A run's settings keep only the
# resulting `model.hidden`, so a cell named by depth and the same network named by its
# problem are one and the same run.
MODEL_FACTORS = ("depth", "width")
# The canonical order of factors in a cell's id and in tables.
FACTOR_KEYS = (*SETTING_KEYS[:3], *MODEL_FACTORS, *SETTING_KEYS[3:])
PHASES = ("tune", "eval")
# A job that tunes a cell and then evaluates its first block of evaluation seeds, in one
# process: a train job's start (importing torch) costs more than a small cell's training.
FUSED = "tune-eval"


class ConfigError(ValueError):
    """A config that cannot describe a study; the message names the offending key."""


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML keeps the last)."""


def _construct_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if not isinstance(key, Hashable):
            break  # construct_mapping refuses it, naming the place
        if key in seen:
            raise ConfigError(
                f"{key_node.start_mark.name}: key '{key}' is given twice, on lines "
                f"{seen[key]} and {line}; keep one"
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_config_file(path: str | os.PathLike) -> Any:
    """Parse a YAML config file, rejecting duplicate keys (ConfigError names key and lines)."""
    try:
        with open(path) as fh:
            return yaml.load(fh, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from exc


def check_config_files(paths) -> None:
    """Re-read the files Snakemake loaded for duplicate keys, which its own loader accepts."""
    for path in paths:
        read_config_file(path)


@cache
def config_schema() -> dict:
    """The config JSON Schema shipped in workflow/schemas/."""
    text = resources.files("optreg").joinpath("schemas", SCHEMA_FILE).read_text()
    return yaml.safe_load(text)


def _key_path(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _ecma_pattern(validator, pattern, instance, schema):
    """JSON Schema's `pattern` with ECMA-262 anchors: `$` ends the string. (Python's `$`
    also matches before a final newline, so 'name\\n' would pass '^[a-z]+$'.)"""
    if isinstance(instance, str) and not re.search(re.sub(r"(?<!\\)\$", r"\\Z", pattern), instance):
        from jsonschema import ValidationError

        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _is_integer(checker, instance) -> bool:
    # JSON Schema counts 3.0 as an integer; Python code then gets a float where it indexes or
    # counts. Config integers must be written as integers.
    return isinstance(instance, int) and not isinstance(instance, bool)


@cache
def _validator_class():
    import jsonschema  # deferred: train jobs never validate configs

    base = jsonschema.Draft202012Validator
    return jsonschema.validators.extend(
        base,
        validators={"pattern": _ecma_pattern},
        type_checker=base.TYPE_CHECKER.redefine("integer", _is_integer),
    )


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


def _describe(error) -> str:
    """One line naming the key and the problem, with a suggestion for a misspelled key."""
    where = _key_path(error.absolute_path)
    message = error.message
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unexpected = sorted(set(error.instance) - set(allowed))
        hints = []
        for key in unexpected:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"unknown key '{key}'" + (f" (did you mean '{close[0]}'?)" if close else "")
            hints.append(hint)
        message = "; ".join(hints) + f"; allowed keys: {', '.join(allowed)}"
        where = _key_path([*error.absolute_path, unexpected[0]]) if unexpected else where
    elif error.validator == "uniqueItems":
        message = f"duplicate values in {error.instance}"
    elif error.validator == "minItems" and error.instance == []:
        message = "empty list; give at least one value"
    elif error.validator == "type" and error.schema.get("type") == "integer":
        if isinstance(error.instance, float) and error.instance.is_integer():
            message += f" (write {int(error.instance)})"
    elif error.validator == "pattern" and "module:attribute" in error.schema.get("description", ""):
        message = (
            f"{error.instance!r} is not an import path 'module:attribute': a module name "
            "(no folder, no '.py'; list folders in extensions_path), a colon, then the class "
            "or function, for example 'my_optim:Lion'"
        )
    elif "propertyNames" in error.relative_schema_path:
        message = (
            f"name {error.instance!r} must start with a letter and use only letters, "
            "digits and '_' (it becomes part of file paths)"
        )
    return f"{where}: {message}"


def _fill_defaults(instance: Any, schema: dict) -> None:
    """Insert the schema's `default` values for missing keys of nested objects, in place."""
    if not isinstance(instance, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in schema.get("properties", {}):
                _fill_defaults(value, extra)


def validate_config(config: dict, source: str = "config") -> dict:
    """Return a validated copy of `config` with defaults filled in; raise ConfigError otherwise.

    All problems found by the schema are reported at once, then the checks a
    schema cannot express (a setting both fixed and a factor, equal values after
    formatting, a penalty without a strength, a matrix too large to be meant).
    """
    if not isinstance(config, dict):
        raise ConfigError(f"{source}: the config must be a mapping, got {type(config).__name__}")
    config = copy.deepcopy(config)
    from .extend import check_config, extend_schema  # user optimizers, models, datasets

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

    problems = _check_shapes(config) + _check_paths(config)
    protocol = config["protocol"]
    overlap = sorted(set(protocol["tuning_seeds"]) & set(protocol["evaluation_seeds"]))
    if overlap:
        problems.append(
            f"protocol.evaluation_seeds: seeds {overlap} are also tuning seeds; the seeds that "
            "choose a learning rate must not be the seeds that report it"
        )
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
    for where, grid in grids:
        problems += _duplicates(where, grid)
        if grid and not low <= min(grid) <= max(grid) <= high:
            problems.append(
                f"protocol.lr_limits: [{low:g}, {high:g}] must contain every grid, but "
                f"{where} spans [{min(grid):g}, {max(grid):g}]"
            )
    padding = config["data"]["mnist1d"]["padding"]
    if padding[0] > padding[1]:
        problems.append(f"data.mnist1d.padding: {padding} must be [low, high] with low <= high")
    if config["defaults"]["problem"] not in config["problems"]:
        problems.append(_unknown_problem("defaults.problem", config["defaults"]["problem"], config))
    if not problems:
        problems += check_config(config)
    if not problems:
        try:
            total = sum(j.runs for j in jobs(config))
        except ConfigError as exc:
            problems.append(str(exc))
        else:
            if total > config["max_runs"]:
                problems.append(
                    f"max_runs: the matrix has {total} runs, more than max_runs="
                    f"{config['max_runs']}; raise max_runs if this is meant"
                )
    if problems:
        raise ConfigError(f"{source} is invalid:\n" + "\n".join(f"  - {p}" for p in problems))
    return config


def _check_shapes(config: dict) -> list[str]:
    """Each CNN problem against its data set's image size, known without loading the data."""
    from .shapes import conv1d_length, input_shape

    problems = []
    for name, problem in config["problems"].items():
        if problem["model"] != "cnn":
            continue
        shape = input_shape(problem["dataset"], config)
        if shape is None:
            continue  # a data set the table does not describe: its model checks itself in the job
        if len(shape) == 2:  # signals [channels, length]: stride-2 convolutions
            n = len(problem["channels"])
            kernels = [*(problem.get("kernel") or []), *[3] * n][:n]
            if conv1d_length(shape[1], kernels) < 1:
                problems.append(
                    f"problems.{name}.channels: {n} stride-2 convolutions with kernels "
                    f"{kernels} shrink the length-{shape[1]} signals of '{problem['dataset']}' "
                    "below one sample; use fewer convolutions or a longer signal "
                    "(data.mnist1d.final_seq_length)"
                )
            continue
        if len(shape) != 3:
            problems.append(
                f"problems.{name}.model: a CNN needs images; data set '{problem['dataset']}' "
                f"has {shape[0]} features per sample"
            )
            continue
        _, h, w = shape
        fit = 0
        while min(h, w) >= 2:
            fit, h, w = fit + 1, h // 2, w // 2
        if len(problem["channels"]) > fit:
            problems.append(
                f"problems.{name}.channels: {len(problem['channels'])} convolution blocks "
                f"(each pools 2x2) do not fit the {'x'.join(map(str, shape))} images of "
                f"'{problem['dataset']}'; at most {fit}"
            )
    return problems


def _check_paths(config: dict) -> list[str]:
    """Configured paths of the wrong kind (a missing data root is prepare_data's to report:
    with data.download it does not exist before that job)."""
    root = config["data"]["root"]
    if os.path.exists(root) and not os.path.isdir(root):
        return [f"data.root: '{root}' is a file; it must be the folder the data sets lie in"]
    return []


def _duplicates(where: str, values) -> list[str]:
    labels = [format_value(v) for v in values]
    dupes = sorted({lab for lab in labels if labels.count(lab) > 1})
    return [f"{where}: values {dupes} are equal once formatted"] if dupes else []


def _unknown_problem(where: str, name: str, config: dict) -> str:
    return f"{where}: unknown problem '{name}'; problems: {', '.join(config['problems'])}"


def format_value(value: Any) -> str:
    """The label of a factor value in file names and tables (0.001 -> '0.001', 1e-05 -> '1e-05')."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "x".join(format_value(v) for v in value) or "none"
    return str(value)


@dataclass(frozen=True)
class Cell:
    """One point of a study's matrix: its factor values, full settings and learning-rate grid."""

    study: str
    factors: dict[str, Any]
    settings: dict[str, Any]
    lr_grid: tuple[float, ...]
    default_lr: float
    id: str = field(init=False)

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
        """Training runs in this job: every grid rate per tuning seed, two protocols per
        evaluation seed."""
        grid = len(self.cell.lr_grid)
        if self.phase == "tune":
            return grid * len(self.seeds)
        return grid * len(self.tuning_seeds) + 2 * len(self.seeds)


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
    from .extend import cell_specs

    out = []
    protocol = config["protocol"]
    for name, study in config["studies"].items():
        base = {k: copy.deepcopy(v) for k, v in config["defaults"].items()}
        base.update(copy.deepcopy(study.get("fixed", {})))
        base.setdefault("strength", 0.0)
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
            problem = config["problems"][settings["problem"]]
            # Only the model's own sizes: a CNN setting never reruns an MLP cell.
            # (`dense` only when given, so that CNN cells without one keep their settings.)
            sizes = ("hidden",) if problem["model"] == "mlp" else ("channels", "dense", "kernel")
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
                depth = shape.get("depth", len(hidden))
                settings["model"]["hidden"] = [shape.get("width", hidden[0])] * depth
            # Where the raw files lie and whether they may be downloaded is not part of a run.
            split = {
                k: v for k, v in config["data"].items() if k not in ("root", "download", "mnist1d")
            }
            settings["data"] = {"dataset": problem["dataset"], **split}
            # A generated set's arguments are part of its runs; no other set's runs see them.
            if problem["dataset"] == "mnist1d":
                settings["data"]["mnist1d"] = copy.deepcopy(config["data"]["mnist1d"])
            cell_specs(settings, config)
            default_lr = float(protocol["default_lr"][settings["optimizer"]])
            cell = Cell(name, factors, settings, grid, default_lr)
            if cell.id not in seen:
                seen.add(cell.id)
                out.append(cell)
    return out


def seed_block(seed: int, size: int) -> str:
    """Label of the block of `size` consecutive seed values that holds `seed`."""
    first = seed // size * size
    return f"{first}-{first + size - 1}"


def _blocks(seeds, size: int) -> dict[str, list[int]]:
    blocks: dict[str, list[int]] = {}
    for seed in sorted(seeds):
        blocks.setdefault(seed_block(seed, size), []).append(seed)
    return blocks


def jobs(config: dict) -> list[Job]:
    """Every study's train jobs: each cell's tuning and evaluation seeds in blocks of
    `seeds_per_job`; a job equal to an earlier study's reads that one's runs (`share_runs`).

    When a cell's tuning seeds fill one block, one `tune-eval` job tunes the cell and
    evaluates its first evaluation block, and the further blocks are `eval` jobs that read
    its tuning runs; with several tuning blocks, every block is a job of its own. Either
    way, adding evaluation seeds in a new block adds only jobs for that block.
    """
    size = config["seeds_per_job"]
    tune_blocks = _blocks(config["protocol"]["tuning_seeds"], size)
    eval_blocks = list(_blocks(config["protocol"]["evaluation_seeds"], size).items())
    out = []
    for cell in cells(config):
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
    return share_runs(out)


def training_key(job: Job) -> str:
    """Everything that decides a job's runs, and nothing that only names them: the cell's
    settings (model, data and its split included), grid and default rate, the job's phase,
    seed block and seeds. Two jobs with equal keys train bit-identical runs, whatever their
    study, cell id or factors."""
    return json.dumps(
        {
            "settings": job.cell.settings,
            "lr_grid": job.cell.lr_grid,
            "default_lr": job.cell.default_lr,
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


def load_config(path: str) -> dict:
    """Read and validate a config file (for use outside Snakemake)."""
    return validate_config(read_config_file(path), source=str(path))


# A train job may run this much longer than its estimate before its time limit stops it.
RUNTIME_MARGIN = 1.5


def train_runtime(job: Job, problems: dict) -> int:
    """Minutes a train job may run (Snakemake's `runtime`, SLURM's `--time`): its run-epochs
    times its problem's `run_epoch_s`, with RUNTIME_MARGIN; at least one minute. A job that
    still hits the limit is resubmitted and resumes from its checkpoint."""
    settings = job.cell.settings
    seconds = job.runs * settings["epochs"] * problems[settings["problem"]]["run_epoch_s"]
    return max(1, math.ceil(RUNTIME_MARGIN * seconds / 60))


_INTEGER = re.compile(r"[+-]?\d+")
_BOOLEANS = {"true": True, "false": False}


def _from_command_line(text: str, wanted) -> Any:
    """`text` as the first of the schema's `wanted` types it reads as; ValueError otherwise."""
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    if "integer" in wanted and _INTEGER.fullmatch(text.strip()):
        return int(text)
    if "number" in wanted:
        value = int(text) if _INTEGER.fullmatch(text.strip()) else float(text)
        if math.isfinite(value):
            return value
    if "boolean" in wanted and text.lower() in _BOOLEANS:
        return _BOOLEANS[text.lower()]
    raise ValueError(text)


def coerce_command_line(config: dict, overrides: Mapping) -> None:
    """Give the strings Snakemake makes of nested `--config` values the types the schema wants.

    Snakemake reads the value of `--config 'threads={train: 2}'` with YAML's base loader, so
    the 2 arrives as '2'. Only values given in `overrides` (the command line's `--config`)
    are converted, in `config` in place; a string in a config file stays an error. A value
    that is no number raises ConfigError showing the syntax that works.
    """
    import jsonschema  # deferred, as in validate_config

    validator = jsonschema.Draft202012Validator(config_schema())
    problems = []
    while True:
        changed = False
        for error in validator.iter_errors(config):
            path = list(error.absolute_path)
            if error.validator != "type" or not isinstance(error.instance, str):
                continue
            given = overrides
            for part in path:
                try:
                    given = given[part]
                except (KeyError, IndexError, TypeError):
                    given = None
                    break
            if given != error.instance:
                continue  # not from the command line
            *parents, last = path
            target = config
            for part in parents:
                target = target[part]
            try:
                target[last] = _from_command_line(error.instance, error.validator_value)
                changed = True
            except ValueError:
                problem = (
                    f"{_key_path(path)}: --config gave {error.instance!r}, which is not of type "
                    f"{error.validator_value!r}; numbers go unquoted, e.g. "
                    "--config seeds_per_job=5 'threads={train: 2}' "
                    "'protocol={lr_grid: [0.01, 0.1]}'"
                )
                if problem not in problems:
                    problems.append(problem)
        if not changed:
            break
    if problems:
        raise ConfigError("command line is invalid:\n" + "\n".join(f"  - {p}" for p in problems))
