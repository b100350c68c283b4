from optreg.logs import log_to

log_to(snakemake.log[0])

from optreg.analysis.budgets import budget_tables  # noqa: E402

budget_tables(
    claims_path=snakemake.input.claims,
    tables=dict(snakemake.input.items()),
    factors=snakemake.params.factors,
    own=snakemake.params.own,
    looks=snakemake.params.looks,
    findings_path=snakemake.input.findings,
    budgets_path=snakemake.output.budgets,
    convergence_path=snakemake.output.convergence,
)
