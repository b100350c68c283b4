"""The workflow run the ways Snakemake users run workflows.

From the checkout with the documentation's own commands (a `--configfile` replaces the
default config), from another working directory (`--directory`), as a module of a folder
that holds only a config, and deployed with `snakedeploy`; with typed `--config` overrides.
Also the Workflow Catalog's conventions: rule docstrings, local rules, the rule graph image.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import copy_project, dry_run, job_counts, module_folder, snakemake

from optreg.study.errors import ConfigError
from optreg.study.matrix import jobs
from optreg.study.validate import load_config, validate_config

pytestmark = pytest.mark.workflow

ROOT = Path(__file__).resolve().parents[2]
# Submitted to a cluster: everything else takes seconds and runs where Snakemake runs.
CLUSTER_RULES = {"prepare_data", "prepare_user_data", "train"}


def train_targets(output: str) -> set[str]:
    """The study folders of the train jobs a dry run plans."""
    return set(re.findall(r"output: results/studies/(\w+)/(?:tune|eval|tune-eval)/", output))


# ---------------------------------------------------------------- --configfile replaces


def preset_table() -> list[tuple[str, int, int, int]]:
    """(preset, cells, train jobs, training runs) as docs/datasets.md states them."""
    text = (ROOT / "docs" / "datasets.md").read_text()
    rows = re.findall(
        r"^\| `(config/\w+\.yaml)` \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \|", text, re.M
    )
    assert rows, "docs/datasets.md has no preset table"
    return [(p, *(int(n.replace(",", "")) for n in counts)) for p, *counts in rows]


@pytest.mark.parametrize(("preset", "n_cells", "n_jobs", "n_runs"), preset_table())
def test_preset_command_plans_what_the_docs_state(root, tmp_path, preset, n_cells, n_jobs, n_runs):
    """`snakemake -n --configfile <preset>` from the repository root, as the docs write it."""
    work = copy_project(root, tmp_path)
    proc = snakemake(work, "-n", "--configfile", preset)
    text = proc.stdout + proc.stderr
    assert "is extended by" not in text  # the default config was not merged in
    config = load_config(work / preset)
    assert train_targets(text) == set(config["studies"])
    trained = [j for j in jobs(config) if j.trains]  # a cell two studies share: once
    assert job_counts(text)["train"] == n_jobs == len(trained)
    assert sum(j.runs for j in trained) == n_runs
    assert len({j.cell.id + j.study for j in jobs(config)}) == n_cells


def test_own_configfile_runs_its_one_study_with_documented_defaults(root, tmp_path):
    work = copy_project(root, tmp_path)
    smoke = yaml.safe_load((root / "config" / "smoke.yaml").read_text())
    mine = {key: smoke[key] for key in ("protocol", "problems", "defaults")}
    mine["studies"] = {"mine": {"factors": {"optimizer": ["sgd", "adam"]}}}
    (work / "my_study.yaml").write_text(yaml.safe_dump(mine))

    proc = snakemake(work, "-n", "--configfile", "my_study.yaml")
    assert train_targets(proc.stdout) == {"mine"}
    # Keys left out take the schema's defaults (seeds_per_job 10: one job per cell).
    assert validate_config(mine)["seeds_per_job"] == 10
    assert job_counts(proc.stdout)["train"] == 2

    # --config still overrides single keys of the file: blocks of one seed, more jobs.
    counts = dry_run(work, "--configfile", "my_study.yaml", "--config", "seeds_per_job=1")
    planned = jobs(validate_config({**mine, "seeds_per_job": 1}))
    assert counts["train"] == len([j for j in planned if j.trains]) > 2


# ---------------------------------------------------------------- typed --config values


def test_command_line_strings_become_the_numbers_the_schema_wants():
    from optreg.study.config_files import coerce_command_line

    config = {"threads": {"train": "2"}, "protocol": {"lr_grid": ["0.01", "1e-1"]}}
    overrides = json.loads(json.dumps(config))
    config["data"] = {"root": "2020"}  # a string the schema wants as a string: untouched
    overrides["data"] = {"root": "2020"}
    coerce_command_line(config, overrides)
    assert config["threads"]["train"] == 2 and isinstance(config["threads"]["train"], int)
    assert config["protocol"]["lr_grid"] == [0.01, 0.1]
    assert config["data"]["root"] == "2020"


def test_strings_from_a_config_file_are_not_converted():
    from optreg.study.config_files import coerce_command_line

    config = {"threads": {"train": "2"}}
    coerce_command_line(config, {})
    assert config["threads"]["train"] == "2"  # validation then names it


def test_a_command_line_value_that_is_no_number_shows_the_working_syntax():
    from optreg.study.config_files import coerce_command_line

    with pytest.raises(ConfigError, match=r"threads\.train.*'threads=\{train: 2\}'"):
        coerce_command_line({"threads": {"train": "two"}}, {"threads": {"train": "two"}})


def test_nested_config_override_reaches_the_jobs_typed(root, tmp_path):
    work = copy_project(root, tmp_path)
    args = ("--configfile", "config/smoke.yaml", "--config", "threads={train: 2}")
    proc = snakemake(work, "-n", *args)
    train_jobs = re.findall(r"rule train:\n(?: +\w.*\n)*? +threads: (\d+)", proc.stdout)
    assert train_jobs == ["2"] * 14  # the smoke's 15 cells, one shared by two studies

    bad = snakemake(work, "-n", "--config", "threads={train: two}", check=False)
    assert bad.returncode != 0
    assert "'threads={train: 2}'" in bad.stdout + bad.stderr
    assert not (work / "results").exists()


# ---------------------------------------------------------------- any working directory


def test_two_studies_command_from_another_working_directory(root, tmp_path):
    """The documented `--directory` command, run from the repository root."""
    work = copy_project(root, tmp_path / "optreg")
    counts = dry_run(
        work, "--cores", "4", "--directory", "../study-b", "--configfile", "config/smoke.yaml"
    )
    planned = jobs(load_config(root / "config" / "smoke.yaml"))
    assert counts["train"] == len([j for j in planned if j.trains])
    assert counts["findings"] == 1  # the claims were found from the workflow's location
    assert (tmp_path / "study-b").is_dir() and not (work / "results").exists()


def decoy_environment(tmp_path: Path) -> dict:
    """An environment whose PYTHONPATH offers another `optreg` that fails when imported."""
    decoy = tmp_path / "decoy" / "optreg"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('the decoy optreg was imported')\n")
    return {**os.environ, "PYTHONPATH": str(decoy.parent)}


@pytest.fixture(scope="module")
def module_smoke(tmp_path_factory) -> tuple[Path, Path]:
    """The smoke study run to the PDF by a folder that uses a checkout as a module, with
    another copy of optreg first on PYTHONPATH."""
    base = tmp_path_factory.mktemp("module")
    checkout = copy_project(ROOT, base / "checkout")
    user = module_folder(checkout, base / "user", ROOT / "config" / "smoke.yaml")
    snakemake(user, env=decoy_environment(base))
    return checkout, user


def test_module_runs_the_smoke_study_to_the_pdf_with_its_own_code(module_smoke, smoke):
    checkout, user = module_smoke
    # The folder holds its config, results and logs; nothing of the workflow was copied.
    made = {".snakemake", "logs", "results", "checkpoints", "report.html"}
    assert {p.name for p in user.iterdir()} - made == {"Snakefile", "config"}
    assert (user / "results" / "report.pdf").stat().st_size > 10_000
    # The same runs as the smoke study run from its own checkout: the planned ones and those
    # of any grid extension.
    planned = jobs(load_config(user / "config" / "config.yaml"))
    planned = sum(j.runs for j in planned if j.trains)
    pattern = "*/*/*/seeds-*/*.json"
    records = sorted((user / "results" / "studies").glob(pattern))
    reference = sorted((smoke / "results" / "studies").glob(pattern))
    assert len(records) >= planned
    assert [r.relative_to(user) for r in records] == [r.relative_to(smoke) for r in reference]
    code = json.loads(records[0].read_text())["provenance"]["code"]
    assert code["path"] == str((checkout / "src" / "optreg").resolve())
    assert code["commit"] is None  # the copy is no git checkout; its version is recorded


def test_module_html_report_labels_every_entry_and_shows_tables(module_smoke):
    _, user = module_smoke
    snakemake(user, "--report", "report.html")
    page = (user / "report.html").read_text()
    # Figures by title, tables as pages beside their CSVs, the cost table, captions once.
    assert "Learning curves at the tuned learning rate" in page
    for table in ("runs", "tuning", "summary", "pairs"):
        assert f"results/studies/optimization/{table}.html" in page
    assert "results/cost.csv" in page and "results/cost.html" in page
    assert "caption=" not in page


def test_module_dry_run_from_another_working_directory(module_smoke, tmp_path):
    _, user = module_smoke
    shutil.copytree(user / "config", tmp_path / "config")
    counts = dry_run(tmp_path, "--snakefile", str(user / "Snakefile"))
    assert counts["train"] == 14


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_snakedeploy_deployment_plans_the_default_study(root, tmp_path):
    # A tagged git checkout, as a release would be.
    checkout = copy_project(root, tmp_path / "optreg")
    for name in ("LICENSE", ".snakemake-workflow-catalog.yml", "README.md"):
        shutil.copy(root / name, checkout / name)
    git(checkout, "init", "-q")
    git(checkout, "add", "-A")
    git(checkout, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "release")
    git(checkout, "tag", "v0.1.0")

    dest = tmp_path / "deployed"
    # `snakedeploy deploy-workflow ...`, its console script run by this Python
    snakedeploy = [
        sys.executable,
        "-c",
        "import sys; from snakedeploy.client import main; sys.exit(main())",
    ]
    deploy = [*snakedeploy, "deploy-workflow", str(checkout), str(dest)]
    subprocess.run([*deploy, "--tag", "v0.1.0"], check=True, capture_output=True, text=True)
    assert (dest / "config" / "config.yaml").read_text() == (
        checkout / "config" / "config.yaml"
    ).read_text()
    assert (dest / "LICENSE").exists() and (dest / "profiles" / "default").is_dir()
    snakefile = (dest / "workflow" / "Snakefile").read_text()
    assert "use rule * from optreg" in snakefile
    # snakedeploy's local provider writes the Snakefile's path relative to the repository
    # (and ignores the tag), which Snakemake resolves relative to the deployed Snakefile;
    # from GitHub it writes github(..., tag=...). Point it at the checkout.
    assert '"workflow/Snakefile"' in snakefile
    (dest / "workflow" / "Snakefile").write_text(
        snakefile.replace('"workflow/Snakefile"', f'"{checkout / "workflow" / "Snakefile"}"')
    )
    counts = dry_run(dest, env=decoy_environment(tmp_path))
    planned = jobs(load_config(dest / "config" / "config.yaml"))
    assert counts["train"] == len([j for j in planned if j.trains])

    # The deployment's working directory need not hold the Snakefile either.
    counts = dry_run(
        dest,
        "--snakefile",
        "workflow/Snakefile",
        "--directory",
        str(tmp_path / "elsewhere"),
        "--configfile",
        str(root / "config" / "smoke.yaml"),
    )
    assert counts["train"] == 14


def test_a_module_read_through_the_source_cache_is_refused_with_the_way_out(tmp_path):
    """github() or gitfile() give Snakemake single files: the package in src/ is not there."""
    repo = copy_project(ROOT, tmp_path / "optreg")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "release")
    git(repo, "tag", "v0.1.0")
    user = module_folder(repo, tmp_path / "user", ROOT / "config" / "smoke.yaml")
    snakefile = (user / "Snakefile").read_text()
    source = f'gitfile("{repo}", path="workflow/Snakefile", tag="v0.1.0")'
    (user / "Snakefile").write_text(
        snakefile.replace(f'"{repo / "workflow" / "Snakefile"}"', source)
    )
    proc = snakemake(user, "-n", check=False)
    assert proc.returncode != 0
    assert "point the module's snakefile at <clone>/workflow/Snakefile" in proc.stdout + proc.stderr


# ---------------------------------------------------------------- catalog conventions

PARSE = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
    workflow = api.workflow(
        resource_settings=ResourceSettings(cores=1),
        config_settings=ConfigSettings(configfiles=[Path("config/smoke.yaml")]),
        snakefile=Path("workflow/Snakefile"),
        workdir=Path("."),
    )._workflow
    print(json.dumps({r.name: {"doc": r.docstring, "local": r.name in workflow._localrules}
                      for r in workflow.rules}))
"""


@pytest.fixture(scope="module")
def rules() -> dict:
    """Every rule of the workflow: its docstring and whether it is a local rule."""
    proc = subprocess.run(
        [sys.executable, "-c", PARSE], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_rule_has_a_docstring(rules):
    assert {name for name, rule in rules.items() if not (rule["doc"] or "").strip()} == set()


def test_a_cluster_run_submits_only_data_preparation_and_training(rules):
    assert {name for name, rule in rules.items() if not rule["local"]} == CLUSTER_RULES


def test_rule_graph_image_is_current(rules):
    svg = (ROOT / "docs" / "images" / "rulegraph.svg").read_text()
    drawn = set(re.findall(r"<text[^>]*>([\w]+)</text>", svg))
    # Drawn from the smoke study, which has no data set of the user's own (docs/extending.md)
    # and no sequential seeds (the checkpoint `look`, docs/statistics.md).
    drawn_rules = set(rules) - {"prepare_user_data", "look"}
    assert drawn == drawn_rules, "regenerate it with the command in docs/how-it-works.md"


def test_license_matches_the_package_metadata(root):
    import tomllib

    license_text = (root / "LICENSE").read_text()
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["license"]
    assert declared == {"text": "MIT"} and license_text.startswith("MIT License")
    catalog = yaml.safe_load((root / ".snakemake-workflow-catalog.yml").read_text())
    assert catalog["usage"]["report"] is True


def test_report_figure_captions_are_the_catalogue_captions(root):
    """The HTML report's caption of each figure is its registry caption (the params of a
    job are shown in the report too, so the caption is not one of them: see figure.rst)."""
    import jinja2

    from optreg.report.figures import FIGURES

    template = jinja2.Environment().from_string(
        (root / "workflow" / "report" / "figure.rst").read_text()
    )
    for name, spec in FIGURES.items():
        wildcards = type("W", (), {"figure": name})
        rendered = template.render(snakemake=type("S", (), {"wildcards": wildcards}))
        assert " ".join(rendered.split()) == spec.caption
