import signal
import sys

from optreg.logs import log_to

log_to(snakemake.log[0])

from optreg.checkpoint import Interrupted, checkpoint_path  # noqa: E402
from optreg.train import run_job  # noqa: E402

try:
    run_job(
        data_path=snakemake.input.data,
        out_dir=snakemake.output[0],
        device=snakemake.params.device,
        threads=snakemake.threads,
        checkpoint=checkpoint_path(snakemake.output[0]),
        checkpoint_minutes=snakemake.config["checkpoint"]["every_minutes"],
        **snakemake.params.job,
    )
except Interrupted as stop:
    # On its way out: a second signal (Snakemake passing SLURM's on) must not cut that short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The shell's convention for "killed by signal N": Snakemake and SLURM see a failed job.
    sys.exit(128 + stop.signum)
