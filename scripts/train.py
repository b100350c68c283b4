import signal

from optreg.logs import log_to

log_to(snakemake.log[0])

from optreg.process import exit_now, imports_uncollected  # noqa: E402

with imports_uncollected():
    from optreg.extensions import use_config_path
    from optreg.training.checkpoint import Interrupted, checkpoint_path
    from optreg.training.job import run_job

use_config_path(snakemake.config)  # where the user's optimizers and models are imported from

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
    exit_now(128 + stop.signum)
# The job's files are in place and its log is flushed by exit_now: the interpreter's teardown
# (freeing every object torch made) would only cost time. Any other exception ends the job
# the usual way, its traceback in the log.
exit_now(0)
