"""The Snakemake workflow end to end: dry runs, the smoke study to the PDF, reruns, bad input.

Each test works on a copy of the project in a temporary folder, so it never
touches the checkout's results/.
"""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import copy_project, dry_run, snakemake

from optreg.analysis.claims import INTERACTION_COLUMNS, VERDICTS
from optreg.study.matrix import cells, jobs
from optreg.study.validate import load_config

pytestmark = pytest.mark.workflow


def test_default_dry_run_has_a_tuning_and_an_evaluation_job_per_cell(root, tmp_path):
    work = copy_project(root, tmp_path)
    config = load_config(root / "config" / "config.yaml")
    counts = dry_run(work)
    # 16 optimization cells (4 optimizers x 2 activations x 2 depths), 25 regularization and
    # 25 regularization_underfit (none + 4 penalties x 6 strengths), 12 problems (3 problems
    # x 4 optimizers): one job each. No cell is another study's: the regularization studies
    # train at one rate (a grid of their own), on their own problem or grid.
    assert len(jobs(config)) == len(cells(config)) == 16 + 25 + 25 + 12
    assert all(j.trains for j in jobs(config))
    assert counts["train"] == 16 + 25 + 25 + 12
    # MNIST-1D, digits and breast_cancer.
    assert counts["prepare_data"] == 3 and counts["report"] == 1


def test_smoke_study_writes_runs_tables_figures_and_report(smoke):
    config = load_config(smoke / "config" / "config.yaml")
    expected_runs = sum(j.runs for j in jobs(config) if j.trains)
    run_files = sorted((smoke / "results" / "studies").glob("*/*/*/seeds-*/*.json"))
    records = [json.loads(f.read_text()) for f in run_files]
    assert records[0]["schema_version"] == 1
    # Past the planned 112 runs (120, less the 8 of regularization's `none` cell, which
    # optimization's adam+relu cell trains), each rate a cell's grid was extended by (its best
    # rate lay on the edge of the 2-rate grid) adds one tuning run per tuning seed.
    tuned = [r for r in records if r["protocol"] == "tuned" and r["seed"] == 10]
    added = {r["combination"]: len(r["selection"]["extended"]) for r in tuned}
    assert expected_runs == 112 and any(added.values())
    assert len(run_files) == expected_runs + 2 * sum(added.values())
    added["penalty-none_strength-0"] = added["optimizer-adam_activation-relu"]

    import pandas as pd

    for study, n_cells in (("optimization", 6), ("regularization", 5), ("problems", 4)):
        base = smoke / "results" / "studies" / study
        runs = pd.read_csv(base / "runs.csv")
        extra = sum(added[c] for c in runs["combination"].unique())
        # 2 rates x 2 tuning seeds + 2 protocols x 2 seeds, and 2 tuning seeds per added rate
        assert len(runs) == 8 * n_cells + 2 * extra
        history = pd.read_csv(base / "history.csv")
        assert len(history) == 3 * (len(runs) - runs["diverged"].sum())  # 3 epochs each
        assert len(pd.read_csv(base / "summary.csv")) == 2 * n_cells
        tuning = pd.read_csv(base / "tuning.csv")
        assert len(tuning) == 2 * n_cells + extra and tuning["extension"].sum() == extra
        pngs = list((base / "figures").glob("*.png"))
        assert pngs and all(png.stat().st_size > 10_000 for png in pngs)
        assert len(list((base / "figures").glob("*.pdf"))) == len(pngs)
    findings = pd.read_csv(smoke / "results" / "findings.csv")
    # Every claim under both protocols (no depth in the smoke); the smoke has no
    # regularization_underfit study, so its two claims are one "not tested" row each.
    underfit = findings["id"].str.endswith("_underfit")
    assert len(findings) == 7 * 2 + 2 and underfit.sum() == 2
    assert (findings[underfit]["verdict"] == "not tested").all()
    findings = findings[~underfit]
    # The smoke's optimization study has no plain SGD: the one claim about it is not tested.
    # Nor is "L2 helps" at Adam's default rate (0.001), which is off the smoke's grid: its
    # strength could only be chosen on evaluation seeds there, which never choose.
    untested = findings[findings["verdict"] == "not tested"]
    assert set(zip(untested["id"], untested["protocol"], strict=True)) <= {
        ("sigmoid_sgd_lower", "tuned"),
        ("sigmoid_sgd_lower", "oneshot"),
        ("l2_helps", "oneshot"),
    }
    assert (
        untested[untested["id"] == "l2_helps"]["evidence"]
        .str.contains("evaluation seeds never choose")
        .all()
    )
    assert set(findings["verdict"]) <= set(VERDICTS)
    interactions = pd.read_csv(smoke / "results" / "interactions.csv")
    assert list(interactions.columns) == INTERACTION_COLUMNS  # no depth: no rows
    # Budgets: every evaluated cell's convergence; each claim of a study it runs at the mark
    # (2 epochs, config/smoke.yaml) and at the whole budget (3).
    convergence = pd.read_csv(smoke / "results" / "convergence.csv")
    assert len(convergence) == 2 * (6 + 5 + 4) and convergence["epochs"].eq(3).all()
    budgets = pd.read_csv(smoke / "results" / "budgets.csv")
    assert len(budgets) == 2 * len(findings) and set(budgets["budget"]) == {2, 3}

    from pypdf import PdfReader

    pdf = PdfReader(smoke / "results" / "report.pdf")
    assert len(pdf.pages) >= 4
    text = "".join(page.extract_text() for page in pdf.pages)
    assert "Sigmoid+Momentum" in text and "Study optimization" in text
    assert "What it cost" in text and (smoke / "results" / "cost.csv").exists()
    assert "Had training converged?" in text and "at a shorter budget?" in text
    # Across problems: interquartile means with intervals, not a mean rank.
    assert "interquartile mean" in text and "Average rank" not in text
    assert list((smoke / "logs").rglob("*.log"))


def test_a_cell_two_studies_share_is_trained_once_and_read_under_each_study(smoke):
    import pandas as pd

    studies = smoke / "results" / "studies"
    # Optimization's adam+relu cell trains it; regularization has no train job of its own.
    assert list(studies.glob("optimization/*/optimizer-adam_activation-relu/seeds-*"))
    assert not list(studies.glob("regularization/*/penalty-none_strength-0"))
    key = ["phase", "protocol", "seed", "lr"]
    shared = {}
    for study, cell in (("optimization", "optimizer-adam_activation-relu"),) + (
        ("regularization", "penalty-none_strength-0"),
    ):
        # As written: read as numbers, a column's type would follow the whole study's table.
        runs = pd.read_csv(studies / study / "runs.csv", dtype=str, keep_default_na=False)
        rows = runs[runs["combination"] == cell]
        assert len(rows) >= 8 and set(rows["study"]) == {study}
        shared[study] = rows.drop(columns=["study", "combination"]).sort_values(key)
    pd.testing.assert_frame_equal(
        shared["optimization"].reset_index(drop=True),
        shared["regularization"].reset_index(drop=True),
    )
    summary = pd.read_csv(studies / "regularization" / "summary.csv")
    none = summary[summary["combination"] == "penalty-none_strength-0"]
    assert len(none) == 2 and set(none["penalty"]) == {"none"}
    # The cost of a shared job is counted once, under the study that trains it.
    cost = pd.read_csv(smoke / "results" / "cost.csv")
    assert len(cost) == 14 and "penalty-none_strength-0" not in set(cost["combination"])


def test_every_train_job_ends_with_its_log_complete_and_its_benchmark(smoke):
    """Train jobs end with os._exit (optreg.process.exit_now): Snakemake still sees them
    succeed, and their last log line, written just before, is in the file."""
    logs = sorted((smoke / "logs" / "train").rglob("*.log"))
    assert len(logs) == 14
    for log in logs:
        assert " done: " in log.read_text().rstrip().splitlines()[-1], log
    assert len(list((smoke / "results" / "benchmarks" / "train").rglob("*.tsv"))) == 14


def test_second_run_has_nothing_to_do(smoke):
    assert dry_run(smoke) == {}


def test_changed_factor_value_reruns_only_its_cells(smoke):
    config = yaml.safe_load((smoke / "config" / "config.yaml").read_text())
    config["studies"]["optimization"]["factors"]["activation"] = ["relu", "tanh"]
    (smoke / "config" / "changed.yaml").write_text(yaml.safe_dump(config))
    counts = dry_run(smoke, "--configfile", "config/changed.yaml")
    assert counts["train"] == 3  # 3 optimizers with tanh, each tuned and evaluated in one job
    assert "prepare_data" not in counts


def test_new_evaluation_seeds_create_jobs_only_for_new_runs(smoke):
    config = yaml.safe_load((smoke / "config" / "config.yaml").read_text())
    config["protocol"]["evaluation_seeds"] = [10, 11, 12, 13]  # seeds_per_job 2: 12-13 is new
    (smoke / "config" / "more_seeds.yaml").write_text(yaml.safe_dump(config))
    counts = dry_run(smoke, "--configfile", "config/more_seeds.yaml")
    # one new evaluation block for each of the 15 cells, one of them shared by two studies
    assert counts["train"] == 14


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (
            lambda c: c["studies"]["optimization"]["factors"].update(optimizer=["adamw"]),
            "studies.optimization.factors.optimizer[0]",
        ),
        (
            lambda c: c["protocol"].update(lr_grid=[-0.1]),
            "protocol.lr_grid[0]",
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


def test_a_study_retuned_on_other_seeds_runs_to_the_report_and_reruns_nothing(root, tmp_path):
    """The small-grid and retuned protocols through Snakemake: every file a job declares is
    written, the report judges each claim under each protocol, and a second run is empty."""
    import pandas as pd
    from pypdf import PdfReader

    work = copy_project(root, tmp_path / "retuned")
    config = yaml.safe_load((root / "config" / "smoke.yaml").read_text())
    # Four rates: the small grid (the default and its neighbours) is smaller than the grid.
    config["protocol"].update(lr_grid=[0.001, 0.01, 0.1, 1.0], tuning_seeds=[0], retuning_seeds=[1])
    study = config["studies"]["optimization"]
    study["factors"] = {"optimizer": ["momentum", "adam"], "activation": ["relu", "sigmoid"]}
    config["studies"] = {"optimization": study}
    (work / "config" / "retuned.yaml").write_text(yaml.safe_dump(config))
    snakemake(work, "--configfile", "config/retuned.yaml")
    runs = pd.read_csv(work / "results" / "studies" / "optimization" / "runs.csv")
    evals = runs[runs["phase"] == "eval"]
    assert set(evals["protocol"]) == {"tuned", "oneshot", "small", "retuned"}
    chose = evals[evals["protocol"] != "oneshot"]  # the default rate is chosen on no seeds
    seeds = {p: int(float(v)) for p, v in chose.groupby("protocol")["tuning_seeds"].first().items()}
    assert (seeds["tuned"], seeds["small"], seeds["retuned"]) == (0, 0, 1)
    tuning = pd.read_csv(work / "results" / "studies" / "optimization" / "tuning.csv")
    assert set(tuning["protocol"]) == {"tuned", "retuned"}
    findings = pd.read_csv(work / "results" / "findings.csv")
    assert set(findings["protocol"].dropna()) == {"tuned", "oneshot", "small", "retuned"}
    text = "".join(p.extract_text() for p in PdfReader(work / "results" / "report.pdf").pages)
    assert "Does the verdict depend on the tuning?" in text and "Fragile" in text
    assert dry_run(work, "--configfile", "config/retuned.yaml") == {}


def test_a_sequential_study_gives_further_seeds_only_to_open_cells_and_reruns_nothing(
    root, tmp_path
):
    """protocol.sequential through Snakemake's checkpoints: after each look, exactly the
    cells its JSON names open get the next block of seeds; the findings say at which look
    each verdict was reached; a second run is empty."""
    import pandas as pd

    work = copy_project(root, tmp_path / "sequential")
    config = yaml.safe_load((root / "config" / "smoke.yaml").read_text())
    config["protocol"]["sequential"] = {"seeds": [20, 21, 22, 23], "block": 2}
    config["studies"] = {"optimization": config["studies"]["optimization"]}
    (work / "config" / "sequential.yaml").write_text(yaml.safe_dump(config))
    snakemake(work, "--configfile", "config/sequential.yaml")
    looks = [
        json.loads((work / "results" / "sequential" / f"look-{k}.json").read_text()) for k in (1, 2)
    ]
    assert [look["seeds"] for look in looks] == [[10, 11], [10, 11, 20, 21]]
    runs = pd.read_csv(work / "results" / "studies" / "optimization" / "runs.csv")
    seeds = runs[runs["phase"] == "eval"].groupby("combination")["seed"].agg(set)
    for cell, got in seeds.items():
        want = {10, 11}
        want |= {20, 21} if cell in looks[0]["open"].get("optimization", []) else set()
        want |= {22, 23} if cell in looks[1]["open"].get("optimization", []) else set()
        assert got == want, cell
    findings = pd.read_csv(work / "results" / "findings.csv")
    judged = findings[findings["verdict"] != "not tested"]
    assert judged["look"].between(1, 3).all()
    decided = judged[judged["verdict"] != "undecided"]
    assert decided["note"].str.contains("decided at look").all()
    assert dry_run(work, "--configfile", "config/sequential.yaml") == {}
