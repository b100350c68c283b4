"""Reading config files: YAML with duplicate keys refused, and `--config` values given the
types the schema wants."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Hashable, Mapping
from typing import Any

import yaml

from optreg.study.errors import ConfigError
from optreg.study.schema import _key_path, config_schema

# Bounds on a config file, far above any study's (config/config.yaml: 3 kB, a few hundred
# values, 5 levels): YAML aliases repeat a value without repeating its text, so a file of
# a few lines can stand for 10^9 values ("billion laughs"), which every check that walks
# the config would then visit.
MAX_BYTES = 1_000_000
MAX_VALUES = 100_000
MAX_DEPTH = 32
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML keeps the last),
    and a document larger than the bounds above once its aliases are expanded."""

    def get_single_data(self):
        node = self.get_single_node()
        if node is None:
            return None
        _check_bounds(node, {}, [])
        return self.construct_document(node)


def _check_bounds(node, sizes: dict, path: list, keys: tuple = ()) -> int:
    """The number of values `node` (at key `keys`) stands for, its aliases expanded
    (`sizes`: those of the nodes already counted; `path`: the nodes above it); ConfigError
    past the bounds, naming the key."""
    if id(node) in sizes:
        return sizes[id(node)]
    where = f"{node.start_mark.name}, line {node.start_mark.line + 1}, {_key_path(keys)}"
    if any(node is above for above in path):
        raise ConfigError(f"{where}: an alias (*name) refers to a value that contains it (a loop)")
    if len(path) >= MAX_DEPTH:
        raise ConfigError(f"{where}: values nest more than {MAX_DEPTH} levels deep")
    if isinstance(node, yaml.SequenceNode):
        children = [(child, (*keys, i)) for i, child in enumerate(node.value)]
    elif isinstance(node, yaml.MappingNode):
        children = []
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else "?"
            children += [(key, keys), (value, (*keys, name))]
    else:
        children = []
    path.append(node)
    total = 1 + sum(_check_bounds(child, sizes, path, at) for child, at in children)
    path.pop()
    if total > MAX_VALUES:
        raise ConfigError(
            f"{where}: holds more than {MAX_VALUES:,} values once its aliases (*name) are "
            "expanded; a config holds a few hundred (are aliases nested in aliases?)"
        )
    sizes[id(node)] = total
    return total


def _construct_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue  # `<<: *anchor`: the keys it merges in yield to those given here
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
    """Parse a YAML config file, rejecting duplicate keys (ConfigError names key and lines)
    and a file past the bounds (MAX_BYTES, MAX_VALUES with aliases expanded, MAX_DEPTH)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            size = os.path.getsize(path)
            raise ConfigError(
                f"{path}: {size:,} bytes, more than a config's limit of {MAX_BYTES:,}; a "
                "config names its values (a grid of a few rates), it does not list data"
            )
        loader = _StrictLoader(data.decode())
        loader.name = str(path)  # what the marks of its messages name
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except RecursionError:
        raise ConfigError(
            f"{path}: values nest more than {MAX_DEPTH} levels deep (too deep to read)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from exc


def check_config_files(paths) -> None:
    """Re-read the files Snakemake loaded for duplicate keys, which its own loader accepts."""
    for path in paths:
        read_config_file(path)


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
