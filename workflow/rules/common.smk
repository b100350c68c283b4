import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# Jobs import optreg from this checkout (also inside --sdm conda envs, which do not
# install it), so the code that runs is the code in the working tree.
SRC = str(Path(workflow.basedir).parent / "src")
sys.path.insert(0, SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
)

from optreg.config import ConfigError, jobs, validate_config
from optreg.deps import source_dependencies
from optreg.figures import FIGURES, figures_for

try:
    config.update(validate_config(config))
except ConfigError as error:
    raise WorkflowError(str(error)) from None


RESULTS = "results"
# Files shipped with the workflow, relative to the working directory (which may be elsewhere).
REPORT_TEMPLATE = os.path.relpath(Path(workflow.basedir) / "report" / "report.typ")
DATASET = config["dataset"]["name"]
# (study, combination id, seed block) -> optreg.config.Job
JOBS = {(j.study, j.combination.id, j.block): j for j in jobs(config)}
STUDIES = list(config["studies"])


wildcard_constraints:
    study="|".join(STUDIES),
    combination="[^/]+",
    block=r"\d+-\d+",
    figure="|".join(FIGURES),
    dataset=r"[a-z0-9_]+",


def code(script):
    """The optreg source files `scripts/<script>` runs: inputs, so that editing them reruns."""
    path = Path(workflow.basedir).parent / "scripts" / script
    # Relative to the working directory, so a moved checkout does not look changed.
    return [os.path.relpath(p) for p in source_dependencies(str(path), SRC)]


def study_factors(study):
    return list(config["studies"][study]["factors"])


def run_dir(job):
    return f"{RESULTS}/studies/{job.study}/runs/{job.combination.id}/seeds-{job.block}"


def get_train_job(wildcards):
    """The combination and seeds one train job covers."""
    job = JOBS[(wildcards.study, wildcards.combination, wildcards.block)]
    return {
        "study": job.study,
        "combination": job.combination.id,
        "factors": job.combination.factors,
        "settings": job.combination.settings,
        "seeds": list(job.seeds),
    }


def get_study_runs(wildcards):
    return [run_dir(j) for j in JOBS.values() if j.study == wildcards.study]


def get_study_run_files(wildcards):
    """Every metrics file the study must have: aggregation fails naming any that is missing."""
    return [
        f"{run_dir(j)}/seed-{seed}.json"
        for j in JOBS.values()
        if j.study == wildcards.study
        for seed in j.seeds
    ]


def get_study_factors(wildcards):
    return study_factors(wildcards.study)


def study_tables(study):
    base = f"{RESULTS}/studies/{study}"
    return {
        "runs": f"{base}/runs.csv",
        "history": f"{base}/history.csv",
        "summary": f"{base}/summary.csv",
        "selected": f"{base}/selected.csv",
    }


def get_figure_tables(wildcards):
    tables = study_tables(wildcards.study)
    return {name: tables[name] for name in FIGURES[wildcards.figure].inputs}


def get_figure_caption(wildcards):
    return FIGURES[wildcards.figure].caption


def study_figures(study):
    return [
        f"{RESULTS}/studies/{study}/figures/{name}.{ext}"
        for name in figures_for(study_factors(study))
        for ext in ("png", "pdf")
    ]


def get_report_inputs(wildcards):
    return {
        "data_meta": f"{RESULTS}/data/{DATASET}.json",
        "tables": [t for s in STUDIES for t in study_tables(s).values()],
        "figures": [f for s in STUDIES for f in study_figures(s) if f.endswith(".png")],
        "findings": f"{RESULTS}/findings.csv",
    }


def get_report_studies(wildcards):
    """What the report needs to know of each study: its factors, seeds, runs and figures."""
    return {
        study: {
            "description": config["studies"][study].get("description", ""),
            "factors": config["studies"][study]["factors"],
            "fixed": config["studies"][study].get("fixed", {}),
            "seeds": config["studies"][study].get("seeds", config["seeds"]),
            "tables": study_tables(study),
            "figures": {
                name: f"{RESULTS}/studies/{study}/figures/{name}.png"
                for name in figures_for(study_factors(study))
            },
        }
        for study in STUDIES
    }


def get_findings_tables(wildcards):
    return {
        f"{study}_{name}": path
        for study in STUDIES
        for name, path in study_tables(study).items()
        if name == "selected"
    }


def get_final_output():
    outputs = [f"{RESULTS}/report.pdf", f"{RESULTS}/findings.csv"]
    for study in STUDIES:
        outputs += list(study_tables(study).values())
        outputs += study_figures(study)
    return outputs
