from optreg.logs import log_to

log_to(snakemake.log[0])

from optreg.html import table_html  # noqa: E402

table_html(snakemake.input.table, snakemake.output[0], snakemake.params.title)
