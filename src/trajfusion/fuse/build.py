"""The stage's entry points: a verified table in, the fused rows and their summary out."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from trajfusion.fuse.inputs import FrameTexts, read_verified, validate_verified
from trajfusion.fuse.render import SummaryAccumulator, build_examples, summarize
from trajfusion.fuse.selection import plan_fusion
from trajfusion.fuse.settings import FuseSettings
from trajfusion.io import artifact_metadata, sha256_file, write_json, write_jsonl
from trajfusion.phrases import Phrases, load_phrases

log = logging.getLogger(__name__)

_SETTING_KEYS = ("alpha", "k_max", "strategy", "seed", "certainty_prob", "keep_final", "phrases_sha256")


def fuse_frame(df: pd.DataFrame, settings: FuseSettings, phrases: Phrases | None = None,
               source: str = "<table>") -> tuple[list[dict], dict]:
    """Fuse an in-memory verified table: (rows sorted by problem_id, summary)."""
    phrases = phrases or load_phrases()
    meta = validate_verified(df, source)
    plan, dropped = plan_fusion(meta, settings)
    accumulator = SummaryAccumulator()
    rows = list(accumulator.watch(build_examples(plan, meta, FrameTexts(df, source), settings, phrases, source)))
    return rows, summarize(plan, dropped, accumulator.chars, settings, phrases)


def default_summary_path(output: str | Path) -> Path:
    output = Path(output)
    stem = output.name[:-len(".jsonl")] if output.name.endswith(".jsonl") else output.name
    return output.with_name(f"{stem}.summary.json")


def fuse_file(input_path: str | Path, output: str | Path, settings: FuseSettings,
              phrases_path: str | Path | None = None, summary_path: str | Path | None = None,
              progress: bool = True) -> dict:
    """Build one fused dataset file (JSONL) and its summary JSON; returns the summary."""
    phrases = load_phrases(phrases_path)
    meta, texts = read_verified(input_path)
    plan, dropped = plan_fusion(meta, settings)
    accumulator = SummaryAccumulator()
    rows = build_examples(plan, meta, texts, settings, phrases, str(input_path), progress=progress)
    write_jsonl(accumulator.watch(rows), output)
    summary = summarize(plan, dropped, accumulator.chars, settings, phrases)
    provenance = {"command": "fuse", "settings": {k: summary[k] for k in _SETTING_KEYS},
                  "input_sha256": sha256_file(input_path)}
    write_json({**summary, **artifact_metadata(provenance)}, summary_path or default_summary_path(output))
    log.info("fused %d problems (%d dropped without a correct trajectory), mean #Err %.4f -> %s",
             summary["problems"], dropped, summary["mean_errors"], output)
    return summary
