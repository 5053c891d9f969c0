"""Settings of ``trajfusion sample`` and ``trajfusion merge-samples``, declared once
(trajfusion.settings): the generation settings shared with evaluation, the teacher, the shard
count and K. The shard index is no setting (it says which part of the work, not how) and
stays a plain flag, as do the paths.
"""

from __future__ import annotations

from dataclasses import dataclass

from trajfusion.sample.backends.options import GenerationSettings
from trajfusion.settings import Settings, at_least, setting


@dataclass(frozen=True, kw_only=True)
class MergeSettings(Settings):
    """What ``merge-samples`` checks the shards against; ``sample`` generates as many."""

    k: int = setting(help="samples per problem", check=at_least(1))


@dataclass(frozen=True, kw_only=True)
class SampleSettings(GenerationSettings, MergeSettings):
    teacher: str = setting(help="teacher name recorded in the 'teacher' column")
    num_shards: int = setting(help="shards the pool is split into", check=at_least(1))
