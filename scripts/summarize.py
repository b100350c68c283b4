from optreg.logs import log_to

log_to(snakemake.log[0])

from optreg.analysis.tables import summarize_study  # noqa: E402

summarize_study(
    runs_path=snakemake.input.runs,
    history_path=snakemake.input.history,
    factors=snakemake.params.factors,
    target=snakemake.params.target,
    study_target=snakemake.params.study_target,
    datasets=snakemake.params.datasets,
    data_meta=snakemake.input.data_meta,
    tuning_path=snakemake.output.tuning,
    summary_path=snakemake.output.summary,
    pairs_path=snakemake.output.pairs,
)

from optreg.report.html import html_pages  # noqa: E402

html_pages(dict(snakemake.output.items()), f"Study {snakemake.wildcards.study}")
