"""Settings of ``trajfusion report``: declared once (trajfusion.settings), read by the CLI and the rule."""

from __future__ import annotations

import json
from dataclasses import dataclass

from trajfusion.settings import Settings, at_least, setting


def gpu_patterns(value) -> tuple[tuple[str, int], ...] | None:
    """``--gpus-per-job``: a JSON list of [path pattern, GPUs per job] pairs (text or parsed)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"malformed JSON ({exc.msg} at column {exc.colno})") from None
    well_formed = isinstance(value, (list, tuple)) and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], str)
        and isinstance(p[1], int) and not isinstance(p[1], bool) and p[1] >= 0 for p in value)
    if not well_formed:
        raise ValueError(f"expected a JSON list of [path pattern, GPUs per job] pairs, got {json.dumps(value)!r}")
    return tuple((pattern, gpus) for pattern, gpus in value)


@dataclass(frozen=True)
class ReportSettings(Settings):
    bootstrap_samples: int = setting(2000, help="bootstrap resamples for intervals and tests", check=at_least(1))
    seed: int = setting(0, help="bootstrap seed")
    gpus_per_job: tuple | None = setting(None, help='[path pattern under --cost-dir, GPUs per job] pairs as JSON, '
                                         'e.g. [["train/*", 8]]', parse=gpu_patterns)
    figure1_teacher: str | None = setting(None, help="teacher whose sampling statistics Figure 1 shows "
                                          "(default: every teacher in the manifest)")
    figure1_pool: str | None = setting(None, help="pool whose sampling statistics Figure 1 shows "
                                       "(default: every pool in the manifest)")
    figure1_sources: tuple[str, ...] = setting((), help="comma-separated pool sources whose problems Figure 1 "
                                               "shows, e.g. deepmath_103k (default: all; each must be a source of the "
                                               "statistics shown)")
