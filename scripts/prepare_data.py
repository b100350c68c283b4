from optreg.logs import log_to

log_to(snakemake.log[0])

from optreg.data import prepare  # noqa: E402
from optreg.io import write_json  # noqa: E402

meta = prepare(
    snakemake.wildcards.dataset,
    snakemake.output.data,
    split_seed=snakemake.params.split_seed,
    validation_fraction=snakemake.params.validation_fraction,
    test_fraction=snakemake.params.test_fraction,
)
write_json(snakemake.output.meta, meta)
