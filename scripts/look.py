from optreg.logs import log_to

log_to(snakemake.log[0])

from optreg.analysis.findings import look_table  # noqa: E402

look_table(
    claims_path=snakemake.input.claims,
    studies=snakemake.params.studies,
    looks=snakemake.params.looks,
    look=int(snakemake.wildcards.look),
    own=snakemake.params.own,
    out_path=snakemake.output[0],
)
