from optreg.logs import log_to

log_to(snakemake.log[0])

from optreg.analysis.tables import collect_runs  # noqa: E402

collect_runs(
    snakemake.params.files,
    snakemake.output.runs,
    snakemake.output.history,
    run_dirs=snakemake.input.runs,
    labels=snakemake.params.labels,
)

from optreg.report.html import html_pages  # noqa: E402

html_pages(dict(snakemake.output.items()), f"Study {snakemake.wildcards.study}")
