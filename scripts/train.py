from optreg.logs import log_to

log_to(snakemake.log[0])

from optreg.train import run_job  # noqa: E402

run_job(
    data_path=snakemake.input.data,
    out_dir=snakemake.output[0],
    device=snakemake.params.device,
    threads=snakemake.threads,
    **snakemake.params.job,
)
