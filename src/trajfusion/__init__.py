"""TrajFusion: trajectory fusion for scaling mathematical reasoning, as a Snakemake pipeline."""

__version__ = "0.1.0"
