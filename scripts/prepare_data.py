from optreg.logs import log_to

log_to(snakemake.log[0])

from optreg.data import prepare  # noqa: E402
from optreg.extend import prepare_user_dataset, use_config_path  # noqa: E402
from optreg.io import write_json  # noqa: E402

# Where the raw files lie (data.root) and whether torchvision may download them
# (data.download) are read from the config, not passed as params: neither changes what is
# prepared (the metadata records each raw file's checksum), and a changed param would rerun
# this job and, through its new output, every train job.
data = snakemake.config["data"]
if hasattr(snakemake.params, "loader"):  # rule prepare_user_data: a set of the user's own
    use_config_path(snakemake.config)
    meta = prepare_user_dataset(
        snakemake.wildcards.dataset,
        snakemake.params.loader,
        snakemake.output.data,
        split_seed=snakemake.params.split_seed,
        validation_fraction=snakemake.params.validation_fraction,
        test_fraction=snakemake.params.test_fraction,
    )
else:
    meta = prepare(
        snakemake.wildcards.dataset,
        snakemake.output.data,
        split_seed=snakemake.params.split_seed,
        validation_fraction=snakemake.params.validation_fraction,
        test_fraction=snakemake.params.test_fraction,
        root=data["root"],
        download=data["download"],
    )
write_json(snakemake.output.meta, meta)
