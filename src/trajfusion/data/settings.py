"""Settings of ``build-pool`` (``PoolSettings``) and ``prepare-benchmark`` (``BenchmarkSettings``),
declared once (trajfusion.settings). The data directory, the benchmark's name and the outputs
are inputs and outputs, not settings: they stay plain flags."""

from __future__ import annotations

from dataclasses import dataclass

from trajfusion.data.pools import SELECTIONS
from trajfusion.io import InputError
from trajfusion.settings import Settings, positive, setting


@dataclass(frozen=True)
class PoolSettings(Settings):
    # The spec's own keys are checked where the pool is built (trajfusion.data.pools.build_pool).
    spec: dict = setting(help='pool spec as JSON: {"sources": [{"name", "n", "select", "options"}], "size", '
                         '"decontaminate_against"}')
    seed: int = setting(help="seed of the per-source and pool-size subsampling")
    datasets: dict | None = setting(None, help="declared datasets the sources name, as JSON {name: spec} "
                                    "(config `datasets:`)")
    own_benchmarks: dict | None = setting(None, help="benchmarks of one's own to decontaminate against, as JSON "
                                          "{benchmark: dataset spec}")


@dataclass(frozen=True)
class BenchmarkSettings(Settings):
    limit: int | None = setting(None, help="keep only N problems", check=positive)
    select: str | None = setting(None, help="how --limit picks problems (default: random with --limit, else all)",
                                 choices=SELECTIONS)
    seed: int = setting(0, help="seed for --select random")
    keep_pictures: bool = setting(False, help="theoremqa: keep the questions that need a picture "
                                  "(dropped by default)")
    dataset: dict | None = setting(None, help="a benchmark of one's own: its declared dataset spec as JSON "
                                   "(config `datasets:`); unset: a built-in benchmark")

    def __post_init__(self):
        super().__post_init__()
        if self.selection == "all" and self.limit is not None:
            raise InputError(f"--select all cannot be combined with --limit {self.limit}; use random or shortest")

    @property
    def selection(self) -> str:
        """``select``, or its default: random with a limit, else all."""
        return self.select or ("all" if self.limit is None else "random")
