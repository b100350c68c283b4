from optreg.logs import log_to

log_to(snakemake.log[0])

from optreg.report.plots import plot_figure  # noqa: E402

plot_figure(
    snakemake.wildcards.figure,
    dict(snakemake.input.items()),
    snakemake.params.factors,
    snakemake.output.png,
    snakemake.output.pdf,
    lr_free=snakemake.params.lr_free,
)
