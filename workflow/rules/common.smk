import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.sourcecache import LocalSourceFile

# Everything the workflow ships (scripts, package source, schemas, report template, claims)
# is found from this file, never from the working directory or workflow.basedir (which, in a
# module, is the including Snakefile's folder). Only results/, logs/, checkpoints/ and
# data.root are relative to the working directory.
if not isinstance(workflow.current_basedir, LocalSourceFile):
    raise WorkflowError(
        "optreg runs from a checkout on this machine (its jobs import the package in its "
        f"src/), but {workflow.current_basedir.get_path_or_uri(secret_free=True)} is read "
        "through Snakemake's source cache (github(), gitfile(), a URL). Clone the repository, "
        "check out the version you want and point the module's snakefile at "
        "<clone>/workflow/Snakefile."
    )
CHECKOUT = Path(workflow.current_basedir.get_path_or_uri(secret_free=False)).parents[1]
SRC = str(CHECKOUT / "src")

# Jobs import optreg from this checkout (also inside --sdm conda envs, which do not install
# it), ahead of any other copy installed in the environment.
sys.path.insert(0, SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
)

import optreg

if Path(optreg.__file__).resolve().parent != (CHECKOUT / "src" / "optreg").resolve():
    raise WorkflowError(
        f"optreg was imported from {Path(optreg.__file__).parent}, not from this workflow's "
        f"checkout {SRC}: another copy was imported first."
    )

from optreg.data.registry import dataset_entries
from optreg.study.errors import ConfigError
from optreg.study.claims import load_claims
from optreg.study.config_files import check_config_files, coerce_command_line
from optreg.naming import RUN_DIR
from optreg.study.flops import train_priorities
from optreg.study.matrix import jobs, plan_looks, rate_traits, train_runtime
from optreg.study.validate import validate_config
from optreg.deps import source_dependencies, user_dependencies
from optreg.study.extensions import extension_warnings, unused_entries
from optreg.extensions import (
    cell_modules,
    cell_packages,
    module_packages,
    search_path,
    split_target,
)
from optreg.report.figures import FIGURES, figures_for

try:
    # Snakemake's own YAML loader keeps the last of two equal keys without a word.
    check_config_files(workflow.configfiles)
    # Nested --config values reach the workflow as strings ('threads={train: 2}').
    coerce_command_line(config, workflow.config_settings.config)
    config.update(validate_config(config))
except ConfigError as error:
    raise WorkflowError(str(error)) from None


RESULTS = "results"
# Shipped files, as paths relative to the working directory (a moved checkout and working
# directory together then do not look changed).
REPORT_TEMPLATE = os.path.relpath(CHECKOUT / "workflow" / "report" / "report.typ")
CLAIMS = os.path.relpath(CHECKOUT / "config" / "claims.yaml")
try:
    load_claims(CLAIMS)  # a malformed claims file stops here, before any job
except ValueError as error:
    raise WorkflowError(str(error)) from None
# Every study's jobs; a job equal to an earlier study's reads that one's runs (its
# `trained_by`), so a run is trained once whatever studies share it.
STUDY_JOBS = jobs(config)
# The evaluation seeds of each look of the sequential design (protocol.sequential): one
# look, all of them, unless it is set.
LOOKS = plan_looks(config["protocol"])
# (study, phase, cell id, seed block) -> optreg.study.matrix.Job: the jobs that train.
JOBS = {(j.study, j.phase, j.cell.id, j.block): j for j in STUDY_JOBS if j.trains}
DATASETS = sorted({j.cell.settings.dataset for j in JOBS.values()})
# An optimizer, model or data set of the user's that no study uses is a forgotten step.
for _line in unused_entries(config, [j.cell.settings for j in JOBS.values()]):
    logger.warning(f"Warning: {_line}")
# A keyword a **kwargs optimizer may swallow unused, where that cannot be told.
for _line in extension_warnings(config):
    logger.warning(f"Warning: {_line}")
STUDIES = list(config["studies"])
# What each study does with the learning rate: which of its figures say something.
STUDY_RATE_TRAITS = rate_traits(j.cell for j in STUDY_JOBS)


wildcard_constraints:
    study="|".join(STUDIES),
    combination="[^/]+",
    block=r"\d+-\d+(_\d+-\d+)?",
    phase="tune|eval|tune-eval",
    look=r"\d+",
    figure="|".join(FIGURES),
    dataset="|".join(DATASETS),


def code(script):
    """The optreg source files `scripts/<script>` runs: inputs, so that editing them reruns."""
    path = CHECKOUT / "scripts" / script
    # Relative to the working directory, so a moved checkout does not look changed.
    return [os.path.relpath(p) for p in source_dependencies(str(path), SRC)]


def generation_args(wildcards):
    """A generated dataset's arguments (its registry entry's, MNIST-1D's); none for the
    others, so that changing them reruns only the set they generate."""
    return dataset_entries(config)[wildcards.dataset].generation_args(config)


# Rule prepare_data makes the built-in sets, prepare_user_data the user's own.
USER_DATASETS = [d for d in DATASETS if d in config["datasets"]] or ["(?!)"]
BUILTIN_DATASETS = [d for d in DATASETS if d not in config["datasets"]] or ["(?!)"]
# Folders the user's modules (config: optimizers, models, datasets) are imported from.
EXTENSIONS_PATH = search_path(config["extensions_path"])


def user_code(modules):
    """The user's files that importing `modules` runs: inputs, so that editing one reruns
    exactly the jobs that import it."""
    files = user_dependencies(tuple(modules), tuple(EXTENSIONS_PATH), SRC)
    return [os.path.relpath(f) for f in files]


def get_dataset_code(wildcards):
    """A user data set's module files and the files its loader reads."""
    entry = config["datasets"][wildcards.dataset]
    return user_code([split_target(entry["loader"])[0]]) + entry["files"]


def get_dataset_loader(wildcards):
    """A user data set's loader and arguments."""
    entry = config["datasets"][wildcards.dataset]
    return {"loader": entry["loader"], "kwargs": entry["kwargs"]}


def study_factors(study):
    return list(config["studies"][study]["factors"])


def study_figure_names(study):
    """The catalogue's figures this study draws: by its factors and its rate traits."""
    return figures_for(study_factors(study), STUDY_RATE_TRAITS.get(study, frozenset()))


def run_dir(job):
    """The folder of a job's runs: that of the job which trains them (see STUDY_JOBS)."""
    return f"{RESULTS}/{job.folder}"


def tuning_files(job):
    """The metrics files of a job's tuning runs (none for an `eval` job)."""
    return [f"{run_dir(job)}/{name}" for name in job.tuning_files]


def job_files(job):
    """The metrics files a job writes, one per run."""
    return [f"{run_dir(job)}/{name}" for name in job.files]


# (study, cell id) -> the cell's tuning jobs: found at once, not by a scan per eval job.
TUNING_JOBS = {}
for _job in JOBS.values():
    if _job.tunes:
        TUNING_JOBS.setdefault((_job.study, _job.cell.id), []).append(_job)


def cell_tuning_jobs(job):
    return TUNING_JOBS[(job.study, job.cell.id)]


def wildcard_job(wildcards):
    return JOBS[
        (wildcards.study, wildcards.phase, wildcards.combination, wildcards.block)
    ]


def get_train_inputs(wildcards):
    """The cell's prepared dataset; for evaluation, also the cell's tuning runs."""
    job = wildcard_job(wildcards)
    inputs = {"data": f"{RESULTS}/data/{job.cell.settings.dataset}.pt"}
    if job.phase == "eval":
        inputs["tuning"] = [run_dir(j) for j in cell_tuning_jobs(job)]
    modules = cell_modules(job.cell.settings)
    if modules:
        inputs["user_code"] = user_code(modules)
    return inputs


def get_lr_free_optimizers():
    """The config's optimizers that set their own step size (`lr_free`), for the figures."""
    return [
        name for name, entry in config["optimizers"].items() if entry.get("lr_free")
    ]


def get_train_packages(wildcards):
    """The installed packages (name -> version) the cell's own optimizer, model or data set
    come from; empty for built-ins."""
    settings = wildcard_job(wildcards).cell.settings
    return module_packages(
        cell_packages(settings), search_path(config.get("extensions_path", ()))
    )


def get_train_job(wildcards):
    """Everything one train job needs to know: the cell, its phase, seeds and grid."""
    job = wildcard_job(wildcards)
    return {
        "study": job.study,
        "combination": job.cell.id,
        "factors": job.cell.factors,
        "settings": job.cell.settings.to_dict(),
        "phase": job.phase,
        "seeds": list(job.seeds),
        "tuning_seeds": list(job.tuning_seeds),
        "retuning_seeds": list(job.cell.retuning_seeds),
        "lr_grid": list(job.cell.lr_grid),
        "default_lr": job.cell.default_lr,
        "lr_limits": config["protocol"]["lr_limits"],
        "tuning_files": (
            [f for j in cell_tuning_jobs(job) for f in tuning_files(j)]
            if job.phase == "eval"
            else []
        ),
    }


def opened(look):
    """Each study's cells that look `look` of the sequential design found a claim still
    open for: its checkpoint's output."""
    with open(checkpoints.look.get(look=str(look)).output[0]) as f:
        return json.load(f)["open"]


def looked_jobs(upto=len(LOOKS)):
    """The jobs of looks 1 to `upto`: every job of look 1, and at each later look those of
    the cells the look before found open (Snakemake's checkpoints grow the DAG so)."""
    chosen = [j for j in STUDY_JOBS if j.look == 1]
    for look in range(2, upto + 1):
        found = opened(look - 1)
        chosen += [
            j
            for j in STUDY_JOBS
            if j.look == look and j.cell.id in found.get(j.study, ())
        ]
    return chosen


def run_labels(jobs):
    """The folders of the jobs' runs that another study trains, each with the study, cell
    id and factors its records are read under in the jobs' study's tables."""
    return {
        run_dir(j): {
            "study": j.study,
            "combination": j.cell.id,
            "factors": j.cell.factors,
        }
        for j in jobs
        if not j.trains
    }


def get_study_runs(wildcards):
    return [run_dir(j) for j in looked_jobs() if j.study == wildcards.study]


def get_study_run_files(wildcards):
    """Every metrics file the study must have: aggregation fails naming any that is missing."""
    return [
        f for j in looked_jobs() if j.study == wildcards.study for f in job_files(j)
    ]


def get_study_run_labels(wildcards):
    return run_labels(j for j in looked_jobs() if j.study == wildcards.study)


def get_look_runs(wildcards):
    return sorted({run_dir(j) for j in looked_jobs(int(wildcards.look))})


def get_look_studies(wildcards):
    """What look `look` reads of each study: the metrics files and folders of its runs so
    far (tables.read_records), and its factors."""
    chosen = looked_jobs(int(wildcards.look))
    out = {}
    for study in STUDIES:
        mine = [j for j in chosen if j.study == study]
        out[study] = {
            "files": [f for j in mine for f in job_files(j)],
            "run_dirs": [run_dir(j) for j in mine],
            "labels": run_labels(mine),
            "factors": study_factors(study),
        }
    return out


def get_study_factors(wildcards):
    return study_factors(wildcards.study)


def get_study_datasets(wildcards):
    """Each problem of the study -> the data set it trains on."""
    return {
        j.cell.settings.problem: j.cell.settings.dataset
        for j in STUDY_JOBS
        if j.study == wildcards.study
    }


def get_study_target(wildcards):
    """The study's own target validation accuracy, or None (the protocol's applies)."""
    return config["studies"][wildcards.study].get("target_val_accuracy")


def get_study_data_meta(wildcards):
    """The metadata of the study's data sets: their class counts set each problem's target."""
    datasets = sorted(set(get_study_datasets(wildcards).values()))
    return [f"{RESULTS}/data/{d}.json" for d in datasets]


def study_tables(study):
    base = f"{RESULTS}/studies/{study}"
    return {
        name: f"{base}/{name}.csv"
        for name in ("runs", "history", "tuning", "summary", "pairs")
    }


def get_figure_tables(wildcards):
    tables = study_tables(wildcards.study)
    return {name: tables[name] for name in FIGURES[wildcards.figure].inputs}


def get_figure_labels(wildcards):
    """The figure's entry in the HTML report: its study and title."""
    return {"study": wildcards.study, "figure": FIGURES[wildcards.figure].title}


def study_figures(study):
    return [
        f"{RESULTS}/studies/{study}/figures/{name}.{ext}"
        for name in study_figure_names(study)
        for ext in ("png", "pdf")
    ]


def get_report_inputs(wildcards):
    return {
        "data_meta": [f"{RESULTS}/data/{d}.json" for d in DATASETS],
        "tables": [t for s in STUDIES for t in study_tables(s).values()],
        "figures": [f for s in STUDIES for f in study_figures(s) if f.endswith(".png")],
        "findings": f"{RESULTS}/findings.csv",
        "interactions": f"{RESULTS}/interactions.csv",
        "convergence": f"{RESULTS}/convergence.csv",
        "budgets": f"{RESULTS}/budgets.csv",
        "cost": f"{RESULTS}/cost.csv",
    }


def get_report_studies(wildcards):
    """What the report needs to know of each study: its factors, tables and figures."""
    return {
        study: {
            "description": config["studies"][study].get("description", ""),
            "factors": config["studies"][study]["factors"],
            "fixed": config["studies"][study].get("fixed", {}),
            "lr_grid": config["studies"][study].get(
                "lr_grid", config["protocol"]["lr_grid"]
            ),
            "own_target": "target_val_accuracy" in config["studies"][study],
            "tables": study_tables(study),
            # The report's figures, with their title and caption from the figure registry.
            "figures": {
                name: {
                    "path": f"{RESULTS}/studies/{study}/figures/{name}.png",
                    "title": FIGURES[name].title,
                    "caption": FIGURES[name].caption,
                }
                for name in study_figure_names(study)
            },
        }
        for study in STUDIES
    }


def get_findings_tables(wildcards):
    return {
        f"{study}_{name}": path
        for study in STUDIES
        for name, path in study_tables(study).items()
        if name in ("runs", "tuning")
    }


def get_budget_tables(wildcards):
    return {
        f"{study}_{name}": path
        for study in STUDIES
        for name, path in study_tables(study).items()
        if name in ("runs", "history")
    }


def get_all_factors(wildcards):
    return {study: study_factors(study) for study in STUDIES}


def get_own_values(wildcards):
    """Factor values naming the config's own entries: its optimizers, and the problems
    built on its models or data sets (what enlarges a claim's family, the report says).
    """
    models, datasets = config.get("models", {}), config.get("datasets", {})
    return {
        "optimizer": sorted(config.get("optimizers", {})),
        "problem": sorted(
            name
            for name, spec in config["problems"].items()
            if spec.get("model") in models or spec.get("dataset") in datasets
        ),
    }


def get_final_output():
    """Every product, the intermediate ones included: Snakemake (since 7.7) does not redo a
    job whose output is missing while the outputs after it are present, so after a failed
    run (whose failed jobs' outputs are removed) the next run would report old results.
    """
    outputs = [f"{RESULTS}/report.pdf", f"{RESULTS}/findings.csv"]
    outputs += [f"{RESULTS}/convergence.csv", f"{RESULTS}/budgets.csv"]
    outputs += [f"{RESULTS}/data/{d}.{ext}" for d in DATASETS for ext in ("pt", "json")]
    outputs += [run_dir(j) for j in JOBS.values() if j.look == 1]
    outputs += [f"{RESULTS}/sequential/look-{k}.json" for k in range(1, len(LOOKS))]
    for study in STUDIES:
        outputs += list(study_tables(study).values())
        outputs += study_figures(study)
    return outputs


# ---- execution resources (issue 4) ----
# What jobs ask of the machine: threads and GPUs from the config, the train jobs' benchmark
# files for the cost table. Where jobs run (cores, partition, account, runtime, memory) is
# the profile's business: profiles/default (local), profiles/slurm.

from snakemake.io import apply_wildcards

from optreg.training.gpus import missing_gpu, train_uses_gpu

# Decided once per Snakemake call, without importing torch.
TRAIN_ON_GPU = train_uses_gpu(config["device"])


def jobs_run_here():
    """Whether this `snakemake` call runs its jobs on this machine (no dry run, the local
    executor), from its command line and profiles: Snakemake tells its executor only after
    the workflow is read. None where that cannot be told (Snakemake called from Python).
    """
    import contextlib
    import io

    if "snakemake" not in sys.argv[0]:
        return None
    try:
        from snakemake.cli import parse_args

        with contextlib.redirect_stderr(
            io.StringIO()
        ):  # its profile line, said already
            args = parse_args(sys.argv[1:])[1]
    except (Exception, SystemExit):
        return None
    return args.executor in (None, "local") and not args.dryrun


# device: cuda where no GPU is: refused when the jobs would run here; a dry run (which may
# plan a cluster submission from a login node) or a submission only warns.
_missing_gpu = missing_gpu(config["device"])
if _missing_gpu and workflow.is_main_process and "SLURM_JOB_ID" not in os.environ:
    if jobs_run_here():
        raise WorkflowError(_missing_gpu)
    logger.warning(f"Warning: {_missing_gpu}")


def get_train_runtime(wildcards, attempt):
    """Minutes the train job may run, from its size (optreg.study.matrix.train_runtime): SLURM's
    `--time`. A job that hits it resumes from its checkpoint when resubmitted (`retries`),
    with that much more time each attempt, so a low estimate costs one resubmission."""
    return attempt * train_runtime(wildcard_job(wildcards), config["problems"])


# Train jobs start largest first (their training FLOPs), so that the last to run are short.
TRAIN_PRIORITIES = train_priorities(JOBS.values(), config)


def get_train_priority(wildcards):
    """The train job's priority: its FLOPs over the largest job's (optreg.study.flops)."""
    return TRAIN_PRIORITIES[
        (wildcards.study, wildcards.phase, wildcards.combination, wildcards.block)
    ]


def get_train_resources():
    """A train job's `runtime` (get_train_runtime), and Snakemake's standard GPU resources:
    `gpu=1` (and `gpu_model`) on CUDA.

    `snakemake --resources gpu=N` then runs at most N train jobs at a time; the SLURM
    executor turns them into `--gpus=[model:]1`.
    """
    if not TRAIN_ON_GPU:
        return {"runtime": get_train_runtime, "gpu": 0}
    if config["gpu_model"]:
        return {
            "runtime": get_train_runtime,
            "gpu": 1,
            "gpu_model": config["gpu_model"],
        }
    return {"runtime": get_train_runtime, "gpu": 1}


def remove_finished_checkpoints():
    from optreg.training.checkpoint import remove_finished

    remove_finished("checkpoints", RESULTS)


def get_cost_jobs(wildcards):
    """Every train job that trains (once, whatever studies share it): its benchmark file,
    its own `usage.tsv` (getrusage at its end) and its wildcards.

    Read from rule train's own output and benchmark patterns, so that the cost table
    follows them; optreg.analysis.cost sums a cell's jobs (its seed blocks and phases).
    """
    train = rules.train.rule
    jobs = []
    # The jobs that train (of the looks taken): a job several studies share costs once,
    # under its first study.
    trained = {}
    for job in looked_jobs():
        source = job.trained_by
        trained[(source.study, source.phase, source.cell.id, source.block)] = source
    for job in trained.values():
        job_wildcards = train.get_wildcards(run_dir(job))
        jobs.append(
            {
                "benchmark": apply_wildcards(train.benchmark, job_wildcards),
                "usage": f"{run_dir(job)}/usage.tsv",
                "wildcards": dict(job_wildcards),
            }
        )
    return jobs


def get_cost_benchmarks(wildcards):
    return [job["benchmark"] for job in get_cost_jobs(wildcards)]


def get_cost_run_dirs(wildcards):
    """The train jobs' folders: their `usage.tsv` files are in them."""
    return sorted({os.path.dirname(job["usage"]) for job in get_cost_jobs(wildcards)})
