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
    params:
        files=get_study_run_files,
    script:
        "../../scripts/collect_runs.py"


rule summarize:
    input:
        runs=f"{RESULTS}/studies/{{study}}/runs.csv",
        code=code("summarize.py"),
    output:
        summary=report(
            f"{RESULTS}/studies/{{study}}/summary.csv",
            caption="../report/summary.rst",
            category="{study}",
            subcategory="Tables",
        ),
        selected=report(
            f"{RESULTS}/studies/{{study}}/selected.csv",
            caption="../report/selected.rst",
            category="{study}",
            subcategory="Tables",
        ),
    log:
        "logs/summarize/{study}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        factors=get_study_factors,
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
    params:
        factors=get_study_factors,
        caption=get_figure_caption,
    script:
        "../../scripts/plot.py"


rule findings:
    input:
        unpack(get_findings_tables),
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
    params:
        factors={study: study_factors(study) for study in STUDIES},
    script:
        "../../scripts/findings.py"
