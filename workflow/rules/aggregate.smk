rule collect_runs:
    input:
        runs=get_study_runs,
        code=code("collect_runs.py"),
    output:
        runs=report(
            f"{RESULTS}/studies/{{study}}/runs.csv",
            caption="../report/runs.rst",
            category="{study}",
            subcategory="Tables",
        ),
        history=f"{RESULTS}/studies/{{study}}/history.csv",
    log:
        "logs/collect_runs/{study}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: config["threads"]["aggregate"]
    params:
        files=get_study_run_files,
    script:
        "../../scripts/collect_runs.py"


rule summarize:
    input:
        runs=f"{RESULTS}/studies/{{study}}/runs.csv",
        history=f"{RESULTS}/studies/{{study}}/history.csv",
        code=code("summarize.py"),
    output:
        tuning=report(
            f"{RESULTS}/studies/{{study}}/tuning.csv",
            caption="../report/tuning.rst",
            category="{study}",
            subcategory="Tables",
        ),
        summary=report(
            f"{RESULTS}/studies/{{study}}/summary.csv",
            caption="../report/summary.rst",
            category="{study}",
            subcategory="Tables",
        ),
        pairs=report(
            f"{RESULTS}/studies/{{study}}/pairs.csv",
            caption="../report/pairs.rst",
            category="{study}",
            subcategory="Tables",
        ),
    log:
        "logs/summarize/{study}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: config["threads"]["aggregate"]
    params:
        factors=get_study_factors,
        target=config["protocol"]["target_val_accuracy"],
    script:
        "../../scripts/summarize.py"


rule plot:
    input:
        unpack(get_figure_tables),
        code=code("plot.py"),
    output:
        png=report(
            f"{RESULTS}/studies/{{study}}/figures/{{figure}}.png",
            caption="../report/figure.rst",
            category="{study}",
            subcategory="Figures",
        ),
        pdf=f"{RESULTS}/studies/{{study}}/figures/{{figure}}.pdf",
    log:
        "logs/plot/{study}/{figure}.log",
    conda:
        "../../envs/analysis.yaml"
    threads: config["threads"]["plot"]
    params:
        factors=get_study_factors,
        caption=get_figure_caption,
    script:
        "../../scripts/plot.py"


rule findings:
    input:
        unpack(get_findings_tables),
        claims="config/claims.yaml",
        code=code("findings.py"),
    output:
        report(
            f"{RESULTS}/findings.csv",
            caption="../report/findings.rst",
            category="Findings",
        ),
    log:
        "logs/findings.log",
    conda:
        "../../envs/analysis.yaml"
    threads: config["threads"]["aggregate"]
    params:
        factors=get_all_factors,
    script:
        "../../scripts/findings.py"


# The report's cost section; `snakemake results/cost.csv` builds it alone.
rule cost:
    input:
        benchmarks=get_cost_benchmarks,
        code=code("cost.py"),
    output:
        f"{RESULTS}/cost.csv",
    log:
        "logs/cost.log",
    conda:
        "../../envs/analysis.yaml"
    threads: config["threads"]["aggregate"]
    params:
        jobs=get_cost_jobs,
    script:
        "../../scripts/cost.py"
