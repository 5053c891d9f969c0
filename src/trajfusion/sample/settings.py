"""Settings of ``trajfusion sample`` and ``trajfusion merge-samples``, declared once
(trajfusion.settings): the generation settings shared with evaluation, the teacher, the shard
count and K. The shard index is no setting (it says which part of the work, not how) and
stays a plain flag, as do the paths.
"""

from __future__ import annotations

from dataclasses import dataclass

from trajfusion.sample.backends import PER_REQUEST_SEEDED
from trajfusion.sample.backends.options import BACKEND_DEFAULTS, GenerationSettings
from trajfusion.settings import Settings, at_least, setting


@dataclass(frozen=True, kw_only=True)
class MergeSettings(Settings):
    """What ``merge-samples`` checks the shards against; ``sample`` generates as many."""

    k: int = setting(help="samples per problem", check=at_least(1))


@dataclass(frozen=True, kw_only=True)
class SampleSettings(GenerationSettings, MergeSettings):
    teacher: str = setting(help="teacher name recorded in the 'teacher' column")
    num_shards: int = setting(help="shards the pool is split into", check=at_least(1))

    def shard_block(self) -> int:
        """Problems per block of the shard split (``trajfusion.sample.shards``): one hf batch,
        whose samples depend on the whole batch; 1 for vllm and openai, which seed every request
        themselves."""
        if self.backend in PER_REQUEST_SEEDED:
            return 1
        return self.batch_size or BACKEND_DEFAULTS[self.backend]["batch_size"]
