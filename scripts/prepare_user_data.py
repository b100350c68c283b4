from optreg.logs import log_to

log_to(snakemake.log[0])

from optreg.data.user import prepare_user_dataset  # noqa: E402
from optreg.extensions import use_config_path  # noqa: E402

use_config_path(snakemake.config)  # where the user's loader is imported from
# Writes output.data and, beside it, output.meta (the fingerprint train jobs check).
prepare_user_dataset(
    snakemake.wildcards.dataset,
    snakemake.params.loader,
    snakemake.output.data,
    split_seed=snakemake.params.split_seed,
    validation_fraction=snakemake.params.validation_fraction,
    test_fraction=snakemake.params.test_fraction,
)
