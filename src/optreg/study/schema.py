"""The config's JSON Schema: loading it, validating against it, and one-line messages
that name the key."""

from __future__ import annotations

import copy
import difflib
import re
from functools import cache
from importlib import resources
from typing import Any

import yaml

from optreg.data.registry import dataset_entries
from optreg.training.registry import MODELS, OPTIMIZERS
from optreg.training.schedules import SCHEDULES

SCHEMA_FILE = "config.schema.yaml"
# The keys of a problem (`problems.<name>`): not settings, so neither factors nor fixed.
PROBLEM_KEYS = ("dataset", "model", "hidden", "channels", "dense", "kernel", "run_epoch_s")


@cache
def config_schema() -> dict:
    """The config JSON Schema shipped in workflow/schemas/, with what the registries know:
    the optimizer, model and data set names, each optimizer's default rate, and the data
    sets a CNN can take."""
    text = resources.files("optreg").joinpath("schemas", SCHEMA_FILE).read_text()
    schema = yaml.safe_load(text)
    schema["$defs"]["optimizer"]["enum"] = list(OPTIMIZERS)
    schema["$defs"]["schedule"]["enum"] = list(SCHEDULES)
    default_lr = schema["properties"]["protocol"]["properties"]["default_lr"]
    default_lr["properties"] = {
        name: {"$ref": "#/$defs/lr", "default": entry.default_lr}
        for name, entry in OPTIMIZERS.items()
    }
    problem = schema["properties"]["problems"]["additionalProperties"]["properties"]
    problem["model"]["enum"] = list(MODELS)
    datasets = dataset_entries()
    problem["dataset"]["enum"] = list(datasets)
    cnn = schema["properties"]["problems"]["additionalProperties"]["then"]["properties"]
    cnn["dataset"]["enum"] = [name for name, entry in datasets.items() if entry.cnn]
    return schema


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
        problem_keys = sorted(set(unexpected) & set(PROBLEM_KEYS))
        if problem_keys and error.absolute_path and error.absolute_path[-1] in ("factors", "fixed"):
            message += (
                f" ({', '.join(map(repr, problem_keys))} is a key of a problem, not a setting: "
                "define one problem per value under `problems` and vary `problem`)"
            )
        where = _key_path([*error.absolute_path, unexpected[0]]) if unexpected else where
    elif error.validator == "uniqueItems":
        message = f"duplicate values in {error.instance}"
    elif error.validator == "minItems" and error.instance == []:
        message = "empty list; give at least one value"
    elif (
        error.validator == "maximum"
        and error.schema.get("maximum") == 1
        and str(where).endswith("accuracy")
        and isinstance(error.instance, int | float)
        and 1 < error.instance <= 100
    ):
        message += (
            f" (an accuracy is a fraction: {error.instance:g}% is written {error.instance / 100:g})"
        )
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
