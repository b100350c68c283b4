from optreg.logs import log_to

log_to(snakemake.log[0])

from optreg.tables import summarize_study  # noqa: E402

summarize_study(
    snakemake.input.runs,
    snakemake.params.factors,
    snakemake.output.summary,
    snakemake.output.selected,
)
