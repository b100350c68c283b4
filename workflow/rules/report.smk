rule report:
    """Write the PDF report: setup, findings, tables, figures and cost."""
    input:
        unpack(get_report_inputs),
        template=REPORT_TEMPLATE,
        claims=CLAIMS,
        code=code("report.py"),
    output:
        pdf=report(
            f"{RESULTS}/report.pdf",
            caption="../report/report_pdf.rst",
            category="Report",
            labels={"report": "the full write-up", "format": "PDF"},
        ),
        data=f"{RESULTS}/report.json",
    log:
        "logs/report.log",
    conda:
        "../../envs/report.yaml"
    threads: config["threads"]["report"]
    params:
        studies=get_report_studies,
        config=config,
    script:
        "../../scripts/report.py"
