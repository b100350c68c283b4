from optreg.logs import log_to

log_to(snakemake.log[0])

from optreg.extend import use_config_path  # noqa: E402
from optreg.train import run_job  # noqa: E402

use_config_path(snakemake.config)  # where the user's optimizers and models are imported from

run_job(
    data_path=snakemake.input.data,
    out_dir=snakemake.output[0],
    device=snakemake.params.device,
    threads=snakemake.threads,
    **snakemake.params.job,
)
