"""Configuration: validation against the JSON Schema, and the experiment matrix.

A config declares named studies. Each study crosses its `factors` (lists of
values) into combinations; every combination starts from the config's
`defaults`, then the study's `fixed` settings, then its factor values. All seeds
of a combination are trained in blocks of `seeds_per_job` consecutive seed
values, one job per block, so adding seeds creates jobs only for new blocks.
"""

from __future__ import annotations

import copy
import difflib
import itertools
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

SCHEMA_FILE = "config.schema.yaml"
# Settings that describe a run besides its seed; the order is the order of columns in tables.
SETTING_KEYS = (
    "optimizer",
    "activation",
    "lr",
    "penalty",
    "strength",
    "momentum",
    "epochs",
    "batch_size",
    "hidden",
)


class ConfigError(ValueError):
    """A config that cannot describe a study; the message names the offending key."""


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
    elif "propertyNames" in error.relative_schema_path:
        message = (
            f"study name {error.instance!r} must start with a letter and use only letters, "
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


def validate_config(config: dict, source: str = "config") -> dict:
    """Return a validated copy of `config` with defaults filled in; raise ConfigError otherwise.

    All problems found by the schema are reported at once, then the checks a
    schema cannot express (a setting both fixed and a factor, equal values after
    formatting, a penalty without a strength, a matrix too large to be meant).
    """
    import jsonschema  # deferred: train jobs never validate configs

    if not isinstance(config, dict):
        raise ConfigError(f"{source}: the config must be a mapping, got {type(config).__name__}")
    config = copy.deepcopy(config)
    validator = jsonschema.Draft202012Validator(config_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = "\n".join(f"  - {_describe(e)}" for e in errors)
        raise ConfigError(f"{source} is invalid:\n{lines}")
    _fill_defaults(config, config_schema())

    problems = []
    for name, study in config["studies"].items():
        fixed = study.get("fixed", {})
        for key in sorted(set(fixed) & set(study["factors"])):
            problems.append(f"studies.{name}.fixed.{key}: '{key}' is also a factor of this study")
        for key, values in study["factors"].items():
            labels = [format_value(v) for v in values]
            dupes = sorted({lab for lab in labels if labels.count(lab) > 1})
            if dupes:
                problems.append(
                    f"studies.{name}.factors.{key}: values {dupes} are equal once formatted"
                )
    if not problems:
        try:
            total = sum(len(c.seeds) for c in combinations(config))
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
class Combination:
    """One point of a study's matrix: its factor values, full settings and seeds."""

    study: str
    factors: dict[str, Any]
    settings: dict[str, Any]
    seeds: tuple[int, ...]
    id: str = field(init=False)

    def __post_init__(self):
        label = "_".join(f"{k}-{format_value(v)}" for k, v in self.factors.items())
        object.__setattr__(self, "id", label)


@dataclass(frozen=True)
class Job:
    """One train job: a combination and a block of its seeds."""

    combination: Combination
    block: str
    seeds: tuple[int, ...]

    @property
    def study(self) -> str:
        return self.combination.study


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


def combinations(config: dict) -> list[Combination]:
    """Every distinct combination of every study, in config order."""
    out = []
    for name, study in config["studies"].items():
        base = {k: copy.deepcopy(v) for k, v in config["defaults"].items()}
        base.update(copy.deepcopy(study.get("fixed", {})))
        base.setdefault("strength", 0.0)
        seeds = tuple(study.get("seeds", config["seeds"]))
        # Canonical key order: reordering a study's factors in the config renames nothing.
        keys = [k for k in SETTING_KEYS if k in study["factors"]]
        seen = set()
        for values in itertools.product(*(study["factors"][k] for k in keys)):
            factors = dict(zip(keys, values, strict=True))
            settings = {**base, **factors}
            _normalize(settings, factors, f"studies.{name}")
            settings = {k: settings[k] for k in SETTING_KEYS}
            settings["lr"] = float(settings["lr"])
            settings["strength"] = float(settings["strength"])
            settings["dataset"] = dict(config["dataset"])
            combo = Combination(name, factors, settings, seeds)
            if combo.id not in seen:
                seen.add(combo.id)
                out.append(combo)
    return out


def seed_block(seed: int, size: int) -> str:
    """Label of the block of `size` consecutive seed values that holds `seed`."""
    first = seed // size * size
    return f"{first}-{first + size - 1}"


def jobs(config: dict) -> list[Job]:
    """Every train job: each combination's seeds grouped into blocks of `seeds_per_job`."""
    size = config["seeds_per_job"]
    out = []
    for combo in combinations(config):
        blocks: dict[str, list[int]] = {}
        for seed in sorted(combo.seeds):
            blocks.setdefault(seed_block(seed, size), []).append(seed)
        out.extend(Job(combo, block, tuple(seeds)) for block, seeds in blocks.items())
    return out


def load_config(path: str) -> dict:
    """Read and validate a config file (for use outside Snakemake)."""
    try:
        with open(path) as fh:
            raw = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return validate_config(raw, source=path)
