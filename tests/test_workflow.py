"""The Snakemake workflow end to end: dry runs, the smoke study to the PDF, reruns, bad input.

Each test works on a copy of the project in a temporary folder, so it never
touches the checkout's results/.
"""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import copy_project, dry_run, snakemake

from optreg.config import combinations, jobs, load_config

pytestmark = pytest.mark.workflow


def test_default_dry_run_has_one_train_job_per_combination(root, tmp_path):
    work = copy_project(root, tmp_path)
    config = load_config(root / "config" / "config.yaml")
    counts = dry_run(work)
    assert counts["train"] == len(jobs(config)) == len(combinations(config)) == 93
    assert counts["prepare_data"] == 1 and counts["report"] == 1


def test_smoke_study_writes_runs_tables_figures_and_report(smoke):
    config = load_config(smoke / "config" / "config.yaml")
    expected_runs = sum(len(c.seeds) for c in combinations(config))
    run_files = sorted((smoke / "results" / "studies").glob("*/runs/*/seeds-*/seed-*.json"))
    assert len(run_files) == expected_runs == 26
    record = json.loads(run_files[0].read_text())
    assert record["schema_version"] == 1

    import pandas as pd

    for study, n_combos in (("optimization", 8), ("regularization", 5)):
        base = smoke / "results" / "studies" / study
        runs = pd.read_csv(base / "runs.csv")
        assert len(runs) == 2 * n_combos
        history = pd.read_csv(base / "history.csv")
        assert len(history) == 3 * len(runs)  # 3 epochs each, none diverged at lr <= 0.1
        assert len(pd.read_csv(base / "selected.csv")) == (
            4 if study == "optimization" else n_combos
        )
        for png in (base / "figures").glob("*.png"):
            assert png.stat().st_size > 10_000
        assert (
            len(list((base / "figures").glob("*.pdf")))
            == len(list((base / "figures").glob("*.png")))
            > 0
        )
    findings = pd.read_csv(smoke / "results" / "findings.csv")
    assert len(findings) == 4

    from pypdf import PdfReader

    pdf = PdfReader(smoke / "results" / "report.pdf")
    assert len(pdf.pages) >= 4
    text = "".join(page.extract_text() for page in pdf.pages)
    assert "Sigmoid+Momentum" in text and "Study optimization" in text
    assert list((smoke / "logs").rglob("*.log"))


def test_second_run_has_nothing_to_do(smoke):
    assert dry_run(smoke) == {}


def test_changed_factor_value_reruns_only_its_combinations(smoke):
    config = yaml.safe_load((smoke / "config" / "config.yaml").read_text())
    config["studies"]["optimization"]["factors"]["lr"] = [0.01, 0.3]
    (smoke / "config" / "changed.yaml").write_text(yaml.safe_dump(config))
    counts = dry_run(smoke, "--configfile", "config/changed.yaml")
    assert counts["train"] == 4  # 2 optimizers x 2 activations at lr 0.3
    assert "prepare_data" not in counts


def test_new_seeds_create_jobs_only_for_new_runs(smoke):
    config = yaml.safe_load((smoke / "config" / "config.yaml").read_text())
    config["seeds"] = [0, 1, 2, 3]  # seeds_per_job 2: block 2-3 is new
    (smoke / "config" / "more_seeds.yaml").write_text(yaml.safe_dump(config))
    counts = dry_run(smoke, "--configfile", "config/more_seeds.yaml")
    assert counts["train"] == 13  # one new block for each of the 13 combinations


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (
            lambda c: c["studies"]["optimization"]["factors"].update(optimizer=["adamw"]),
            "studies.optimization.factors.optimizer[0]",
        ),
        (
            lambda c: c["studies"]["optimization"]["factors"].update(lr=[-0.1]),
            "studies.optimization.factors.lr[0]",
        ),
        (lambda c: c["defaults"].update(epochz=3), "unknown key 'epochz'"),
    ],
)
def test_bad_config_fails_before_any_job(root, tmp_path, edit, needle):
    work = copy_project(root, tmp_path)
    config = yaml.safe_load((root / "config" / "smoke.yaml").read_text())
    edit(config)
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, check=False)
    assert proc.returncode != 0
    assert needle in proc.stdout + proc.stderr
    assert not (work / "results").exists()
