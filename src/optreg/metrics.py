"""The metrics record of one run: built by training, validated when written and when read."""

from __future__ import annotations

import json
import os
from functools import cache
from importlib import resources

from .io import write_json

SCHEMA_FILE = "metrics.schema.json"
SCHEMA_VERSION = 1
# Weights with |w| below this count as near zero in the recorded weight statistics.
NEAR_ZERO = 1e-3


class MetricsError(ValueError):
    """A metrics file that is missing, unreadable or does not match the schema."""


@cache
def _validator():
    import jsonschema

    schema = json.loads(resources.files("optreg").joinpath("schemas", SCHEMA_FILE).read_text())
    return jsonschema.Draft202012Validator(schema)


def validate_record(record: dict, source: str = "metrics record") -> None:
    """Raise MetricsError naming `source` and the first offending field."""
    errors = sorted(_validator().iter_errors(record), key=lambda e: list(map(str, e.path)))
    if errors:
        first = errors[0]
        where = "/".join(map(str, first.absolute_path)) or "<top level>"
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise MetricsError(f"{source}: {where}: {first.message}{more}")


def write_run(path: str | os.PathLike, record: dict) -> None:
    """Validate `record` and write it atomically as JSON."""
    validate_record(record, source=str(path))
    write_json(path, record)


def read_run(path: str | os.PathLike) -> dict:
    """Read and validate one metrics file; every failure names the file."""
    try:
        with open(path) as fh:
            record = json.load(fh)
    except FileNotFoundError as exc:
        raise MetricsError(f"{path}: metrics file is missing") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise MetricsError(f"{path}: not a readable JSON metrics file: {exc}") from exc
    validate_record(record, source=str(path))
    return record
