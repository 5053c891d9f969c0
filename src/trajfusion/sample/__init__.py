"""Sampling stage (paper Section 4.1, Appendix A.1): K teacher completions per pool problem.

Commands: ``sample`` (one shard of a pool, written atomically) and ``merge-samples`` (the
shards concatenated, joined with the pool's problem, gold answer and source, and checked to
hold exactly K samples per problem). Modules: ``cli`` (the commands), ``settings`` (their
settings, declared once), ``shards`` (shard rows, shard tables, the merge), ``backends`` (the
hf, vllm and openai generation backends and the generation settings, also used by evaluation),
``partial`` (completed batches of a killed job, resumed from).
"""

from trajfusion.sample.cli import register
from trajfusion.sample.shards import MERGED_COLUMNS, SHARD_COLUMNS

__all__ = ["MERGED_COLUMNS", "SHARD_COLUMNS", "register"]
