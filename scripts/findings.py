from optreg.logs import log_to

log_to(snakemake.log[0])

from optreg.analysis.findings import findings_table  # noqa: E402

findings_table(
    claims_path=snakemake.input.claims,
    tables=dict(snakemake.input.items()),
    factors=snakemake.params.factors,
    own=snakemake.params.own,
    looks=snakemake.params.looks,
    out_path=snakemake.output.findings,
    interactions_path=snakemake.output.interactions,
)

from optreg.report.html import html_pages  # noqa: E402

html_pages(dict(snakemake.output.items()), "")
