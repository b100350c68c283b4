from optreg.logs import log_to

log_to(snakemake.log[0])

from optreg.report.pdf import build_report  # noqa: E402

build_report(
    template=snakemake.input.template,
    data_meta=snakemake.input.data_meta,
    findings=snakemake.input.findings,
    interactions=snakemake.input.interactions,
    claims=snakemake.input.claims,
    studies=snakemake.params.studies,
    config=snakemake.params.config,
    cost=snakemake.input.cost,
    convergence=snakemake.input.convergence,
    budgets=snakemake.input.budgets,
    output=snakemake.output.pdf,
    data_output=snakemake.output.data,
)
