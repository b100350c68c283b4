# Each table meant for readers is written as CSV and, for `snakemake --report`, as an HTML page
# (`<name>_html`), by the job that computes it: a job per page would cost a Python start each.
rule collect_runs:
    """Gather a study's per-run metrics files into its runs and history tables."""
    input:
        runs=get_study_runs,
        code=code("collect_runs.py"),
    output:
        runs=report(
            f"{RESULTS}/studies/{{study}}/runs.csv",
            caption="../report/runs.rst",
            category="{study}",
            subcategory="Tables",
            labels={"study": "{study}", "table": "runs", "format": "CSV"},
        ),
        runs_html=report(
            f"{RESULTS}/studies/{{study}}/runs.html",
            caption="../report/table_html.rst",
            category="{study}",
            subcategory="Tables",
            labels={"study": "{study}", "table": "runs", "format": "HTML"},
        ),
        history=f"{RESULTS}/studies/{{study}}/history.csv",
    log:
        "logs/collect_runs/{study}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: config["threads"]["aggregate"]
    params:
        files=get_study_run_files,
        labels=get_study_run_labels,
    script:
        "../../scripts/collect_runs.py"


rule summarize:
    """Choose each cell's rate; summarize the cells over seeds; compare them in pairs."""
    input:
        runs=f"{RESULTS}/studies/{{study}}/runs.csv",
        history=f"{RESULTS}/studies/{{study}}/history.csv",
        data_meta=get_study_data_meta,
        code=code("summarize.py"),
    output:
        tuning=report(
            f"{RESULTS}/studies/{{study}}/tuning.csv",
            caption="../report/tuning.rst",
            category="{study}",
            subcategory="Tables",
            labels={"study": "{study}", "table": "tuning", "format": "CSV"},
        ),
        tuning_html=report(
            f"{RESULTS}/studies/{{study}}/tuning.html",
            caption="../report/table_html.rst",
            category="{study}",
            subcategory="Tables",
            labels={"study": "{study}", "table": "tuning", "format": "HTML"},
        ),
        summary=report(
            f"{RESULTS}/studies/{{study}}/summary.csv",
            caption="../report/summary.rst",
            category="{study}",
            subcategory="Tables",
            labels={"study": "{study}", "table": "summary", "format": "CSV"},
        ),
        summary_html=report(
            f"{RESULTS}/studies/{{study}}/summary.html",
            caption="../report/table_html.rst",
            category="{study}",
            subcategory="Tables",
            labels={"study": "{study}", "table": "summary", "format": "HTML"},
        ),
        pairs=report(
            f"{RESULTS}/studies/{{study}}/pairs.csv",
            caption="../report/pairs.rst",
            category="{study}",
            subcategory="Tables",
            labels={"study": "{study}", "table": "pairs", "format": "CSV"},
        ),
        pairs_html=report(
            f"{RESULTS}/studies/{{study}}/pairs.html",
            caption="../report/table_html.rst",
            category="{study}",
            subcategory="Tables",
            labels={"study": "{study}", "table": "pairs", "format": "HTML"},
        ),
    log:
        "logs/summarize/{study}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: config["threads"]["aggregate"]
    params:
        factors=get_study_factors,
        target=config["protocol"]["target_val_accuracy"],
        study_target=get_study_target,
        datasets=get_study_datasets,
    script:
        "../../scripts/summarize.py"


rule plot:
    """Draw one figure of a study from its tables, as PNG and PDF."""
    input:
        unpack(get_figure_tables),
        code=code("plot.py"),
    output:
        png=report(
            f"{RESULTS}/studies/{{study}}/figures/{{figure}}.png",
            caption="../report/figure.rst",
            category="{study}",
            subcategory="Figures",
            labels=get_figure_labels,
        ),
        pdf=f"{RESULTS}/studies/{{study}}/figures/{{figure}}.pdf",
    log:
        "logs/plot/{study}/{figure}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: config["threads"]["plot"]
    params:
        factors=get_study_factors,
        # Optimizers that set their own step size, marked so in the figures.
        lr_free=get_lr_free_optimizers(),
    script:
        "../../scripts/plot.py"


rule findings:
    """Judge each claim of config/claims.yaml on the studies' evaluation runs."""
    input:
        unpack(get_findings_tables),
        claims=CLAIMS,
        code=code("findings.py"),
    output:
        findings=report(
            f"{RESULTS}/findings.csv",
            caption="../report/findings.rst",
            category="Findings",
            labels={"table": "findings", "format": "CSV"},
        ),
        findings_html=report(
            f"{RESULTS}/findings.html",
            caption="../report/table_html.rst",
            category="Findings",
            labels={"table": "findings", "format": "HTML"},
        ),
        interactions=report(
            f"{RESULTS}/interactions.csv",
            caption="../report/interactions.rst",
            category="Findings",
            labels={"table": "interactions", "format": "CSV"},
        ),
        interactions_html=report(
            f"{RESULTS}/interactions.html",
            caption="../report/table_html.rst",
            category="Findings",
            labels={"table": "interactions", "format": "HTML"},
        ),
    log:
        "logs/findings.log",
    conda:
        "../../envs/analysis.yaml"
    threads: config["threads"]["aggregate"]
    params:
        factors=get_all_factors,
        own=get_own_values,
        looks=LOOKS,
    script:
        "../../scripts/findings.py"


# protocol.sequential: after each look, the cells of claims still open get the next block
# of evaluation seeds; the rules after it read the jobs the looks chose (looked_jobs).
checkpoint look:
    """Judge the claims on the seeds so far: the cells a claim still undecided compares."""
    input:
        runs=get_look_runs,
        claims=CLAIMS,
        code=code("look.py"),
    output:
        f"{RESULTS}/sequential/look-{{look}}.json",
    log:
        "logs/look/{look}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: config["threads"]["aggregate"]
    params:
        studies=get_look_studies,
        looks=LOOKS,
        own=get_own_values,
    script:
        "../../scripts/look.py"


rule budgets:
    """Whether each evaluated cell had converged, and the claims judged at every budget mark."""
    input:
        unpack(get_budget_tables),
        findings=f"{RESULTS}/findings.csv",
        claims=CLAIMS,
        code=code("budgets.py"),
    output:
        convergence=report(
            f"{RESULTS}/convergence.csv",
            caption="../report/convergence.rst",
            category="Findings",
            labels={"table": "convergence", "format": "CSV"},
        ),
        budgets=report(
            f"{RESULTS}/budgets.csv",
            caption="../report/budgets.rst",
            category="Findings",
            labels={"table": "budgets", "format": "CSV"},
        ),
    log:
        "logs/budgets.log",
    conda:
        "../../envs/analysis.yaml"
    threads: config["threads"]["aggregate"]
    params:
        factors=get_all_factors,
        own=get_own_values,
        looks=LOOKS,
    script:
        "../../scripts/budgets.py"


# The report's cost section; `snakemake results/cost.csv` builds it alone.
rule cost:
    """Sum the train jobs' measured time and memory per cell: what each study cost."""
    input:
        benchmarks=get_cost_benchmarks,
        runs=get_cost_run_dirs,
        code=code("cost.py"),
    output:
        cost=report(
            f"{RESULTS}/cost.csv",
            caption="../report/cost.rst",
            category="Cost",
            labels={"table": "cost", "format": "CSV"},
        ),
        cost_html=report(
            f"{RESULTS}/cost.html",
            caption="../report/table_html.rst",
            category="Cost",
            labels={"table": "cost", "format": "HTML"},
        ),
    log:
        "logs/cost.log",
    conda:
        "../../envs/analysis.yaml"
    threads: config["threads"]["aggregate"]
    params:
        jobs=get_cost_jobs,
    script:
        "../../scripts/cost.py"
