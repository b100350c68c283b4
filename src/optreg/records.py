"""The metrics record of one run: built by training, validated when written and when read."""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from importlib import resources
from pathlib import Path

from optreg.io import write_json, write_text

SCHEMA_FILE = "metrics.schema.json"


SCHEMA_VERSION = 1


# Weights with |w| below this count as near zero in the recorded weight statistics.
NEAR_ZERO = 1e-3


# Written by each train job beside its metrics files, in `sha256sum` format (so
# `sha256sum -c SHA256SUMS` checks a folder by hand); every reader verifies against it.
MANIFEST = "SHA256SUMS"


class MetricsError(ValueError):
    """A metrics file that is missing, unreadable or does not match the schema."""


@cache
def _schema() -> dict:
    return json.loads(resources.files("optreg").joinpath("schemas", SCHEMA_FILE).read_text())


@cache
def _check():
    """The schema compiled to Python by fastjsonschema: a 40-epoch record checked in 1.3 ms
    against jsonschema's 5.7 (bench/records.py; a study checks each record when its train job
    writes it and again when it is read). fastjsonschema knows drafts up to 7 and reads this
    schema as draft 7: it uses no keyword whose meaning differs between 7 and 2020-12 (no
    `$ref` beside other keywords, no `prefixItems`, no `$dynamicRef`), and
    tests/unit/training/test_loop.py checks the two validators agree on broken records."""
    import fastjsonschema

    return fastjsonschema.compile(_schema())


@cache
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(_schema())


def validate_record(record: dict, source: str = "metrics record") -> None:
    """Raise MetricsError naming `source` and the first offending field.

    The compiled check decides; jsonschema, run only on a record it rejects, names the
    problems (every one, sorted by field), as it names a config's."""
    import fastjsonschema

    try:
        _check()(record)
        return
    except fastjsonschema.JsonSchemaException as exc:
        rejected = exc.message
    errors = sorted(_validator().iter_errors(record), key=lambda e: list(map(str, e.path)))
    if not errors:  # the two disagree (the tests say they do not): the compiled check's words
        raise MetricsError(f"{source}: {rejected}")
    first = errors[0]
    where = "/".join(map(str, first.absolute_path)) or "<top level>"
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    raise MetricsError(f"{source}: {where}: {first.message}{more}")


def write_run(path: str | os.PathLike, record: dict) -> None:
    """Validate `record` and write it atomically as JSON."""
    validate_record(record, source=str(path))
    write_json(path, record)


def write_manifest(folder: str | os.PathLike, names) -> None:
    """Record the SHA-256 of the files `names` in `folder` (the train job that wrote them)."""
    folder = Path(folder)
    lines = [f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n" for n in names]
    write_text(folder / MANIFEST, "".join(lines))


def _recorded_sha256(path: Path) -> str:
    manifest = path.parent / MANIFEST
    try:
        lines = manifest.read_text().splitlines()
    except FileNotFoundError as exc:
        raise MetricsError(
            f"{path}: no {MANIFEST} beside it, so it cannot be checked; "
            f"rerun its train job: snakemake --forcerun {path.parent}"
        ) from exc
    recorded = dict(reversed(line.split("  ", 1)) for line in lines if "  " in line)
    if path.name not in recorded:
        raise MetricsError(
            f"{path}: not listed in {manifest}; rerun its train job: "
            f"snakemake --forcerun {path.parent}"
        )
    return recorded[path.name]


def read_run(path: str | os.PathLike) -> dict:
    """Read and validate one metrics file, checked against the SHA-256 its train job
    recorded; every failure names the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise MetricsError(
            f"{path}: metrics file is missing; rerun its train job: "
            f"snakemake --forcerun {path.parent}"
        ) from exc
    except OSError as exc:
        raise MetricsError(f"{path}: not a readable metrics file: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != _recorded_sha256(path):
        raise MetricsError(
            f"{path} changed after its train job wrote it (SHA-256 differs from "
            f"{path.parent / MANIFEST}); restore the file, or rerun its train job: "
            f"snakemake --forcerun {path.parent}"
        )
    try:
        record = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MetricsError(f"{path}: not a readable JSON metrics file: {exc}") from exc
    validate_record(record, source=str(path))
    return record
