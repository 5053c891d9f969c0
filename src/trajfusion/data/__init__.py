"""Data stage: dataset registry, training pools and benchmark tables.

Commands: ``build-pool`` (a training pool from a JSON spec) and ``prepare-benchmark``
(one benchmark as a problem table). See data/README.md for the sources. Modules: ``cli``
(the commands), ``registry`` (the sources and benchmarks), ``pools`` (pool building,
decontamination, benchmark tables), ``settings`` (the commands' settings), ``answers``,
``synthetic``, ``table`` (problem rows and frames), ``checksums``.
"""

from trajfusion.data.cli import register
from trajfusion.data.pools import benchmark_table, build_pool
from trajfusion.data.registry import BENCHMARKS, SOURCES, load_source

__all__ = ["BENCHMARKS", "SOURCES", "build_pool", "benchmark_table", "load_source", "register"]
