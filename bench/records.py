"""Checking metrics records: `optreg.records.validate_record` (the schema compiled by
fastjsonschema; jsonschema only to name a rejected record's problems) against jsonschema
alone, as every record was checked before, side by side.

Usage: python bench/records.py [--results results] [--repeats 15]

The records are a finished study's (`--results`, every `*.json` under its `studies/*/`
run folders, at most 500), or where there is none, those of one digits job trained here at
the default study's 40 epochs. Each repetition checks every record both ways, in an order
rotated each repetition; CPU time of this process. A study checks each record twice: when
its train job writes it and when the summaries read it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import common
from common import ROOT, interleaved, paired_ratio, row, table


def study_records(results: Path, limit: int = 500) -> list[dict]:
    paths = sorted((results / "studies").glob("*/*/*/*/*.json"))[:limit]
    return [json.loads(p.read_text()) for p in paths]


def trained_records(tmp: Path) -> list[dict]:
    """The records of the default study's digits MLP cell, trained here for 40 epochs."""
    from optreg.training.job import run_job

    config = common.study_config("config/config.yaml")
    job = common.default_digits_job(config)
    data = common.prepared_digits(tmp)
    settings = {**job.cell.settings, "epochs": 40}
    kwargs = common.job_kwargs(job, data_path=data, out_dir=tmp / "out", settings=settings)
    files = run_job(device="cpu", threads=1, **kwargs)
    return [json.loads(Path(f).read_text()) for f in files]


def rows(args: argparse.Namespace) -> None:
    from optreg.records import _validator, validate_record

    with tempfile.TemporaryDirectory(prefix="optreg-records-") as tmp:
        records = study_records(Path(args.results)) or trained_records(Path(tmp))
    epochs = sorted({len(r["history"]) for r in records})

    def jsonschema_alone() -> float:
        start = time.process_time()
        for record in records:
            if any(True for _ in _validator().iter_errors(record)):
                raise SystemExit("a record the schema rejects")
        return time.process_time() - start

    def compiled() -> float:
        start = time.process_time()
        for record in records:
            validate_record(record)
        return time.process_time() - start

    compiled()  # compile and warm both before timing
    jsonschema_alone()
    times = interleaved({"jsonschema": jsonschema_alone, "compiled": compiled}, args.repeats)
    per = {name: 1e3 * min(t) / len(records) for name, t in times.items()}
    ratio = paired_ratio(times["jsonschema"], times["compiled"])
    row(
        f"checking a metrics record ({len(records)} records, {epochs[0]}-{epochs[-1]} epochs)",
        f"{per['compiled']:.2f} ms (validate_record)",
        f"{per['jsonschema']:.2f} ms (jsonschema alone)",
        f"{ratio:.2f}x faster",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(ROOT / "results"))
    parser.add_argument("--repeats", type=int, default=15)
    table(parser, rows)


if __name__ == "__main__":
    main()
