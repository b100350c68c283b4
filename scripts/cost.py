from optreg.logs import log_to

log_to(snakemake.log[0])

from optreg.analysis.cost import write_cost  # noqa: E402

write_cost(snakemake.params.jobs, snakemake.output[0])

from optreg.report.html import html_pages  # noqa: E402

html_pages(dict(snakemake.output.items()), "")
