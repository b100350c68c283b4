from optreg.logs import log_to

log_to(snakemake.log[0])

from optreg.findings import findings_table  # noqa: E402

findings_table(dict(snakemake.input.items()), snakemake.params.factors, snakemake.output[0])
