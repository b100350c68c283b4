"""optreg: a reproducible study of optimizers, activations and weight penalties.

The package holds all domain code (configuration and experiment matrix, data,
models, optimizers and penalties, the training loop, the metrics schema,
statistics, figures and the report); the Snakemake workflow only calls it.
"""

__version__ = "0.1.0"
