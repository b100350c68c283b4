from optreg.logs import log_to

log_to(snakemake.log[0])

from optreg.data.prepare import prepare  # noqa: E402

# Where the raw files lie (data.root) and whether torchvision may download them
# (data.download) are read from the config, not passed as params: neither changes what is
# prepared (the metadata records each raw file's checksum), and a changed param would rerun
# this job and, through its new output, every train job.
data = snakemake.config["data"]
# Writes output.data and, beside it, output.meta (the fingerprint train jobs check).
prepare(
    snakemake.wildcards.dataset,
    snakemake.output.data,
    split_seed=snakemake.params.split_seed,
    validation_fraction=snakemake.params.validation_fraction,
    test_fraction=snakemake.params.test_fraction,
    root=data["root"],
    download=data["download"],
    generation=snakemake.params.generation,
)
