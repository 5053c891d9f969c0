"""Command line of the sampling stage: ``sample`` (one shard of a pool) and ``merge-samples``.

The settings come from ``trajfusion.sample.settings`` (flags and ``--settings JSON``); paths
and the shard index are plain flags. ``sample`` writes its shard atomically, so a killed job
leaves no output; its completed batches stay in ``<output>.partial.jsonl``
(``trajfusion.sample.partial``) and the rerun resumes from them.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace

from trajfusion.contracts import MERGED_SAMPLES, SAMPLE_SHARD, write
from trajfusion.io import InputError, artifact_metadata, sha256_file
from trajfusion.sample.backends import Completion, load_backend
from trajfusion.sample.partial import PartialBatches, job_fingerprint
from trajfusion.sample.settings import MergeSettings, SampleSettings
from trajfusion.sample.shards import (
    MERGE_POOL_COLUMNS,
    SAMPLE_POOL_COLUMNS,
    common_sampling_settings,
    merge_shards,
    read_pool,
    shard_frame,
    shard_rows,
)
from trajfusion.trajectory import assistant_turn

log = logging.getLogger(__name__)


def register(sub) -> None:
    _register_sample(sub)
    _register_merge(sub)


def _register_sample(sub) -> None:
    p = sub.add_parser("sample", help="sample K teacher completions per problem for one shard of a pool")
    p.add_argument("--pool", required=True, help="problem table (Parquet/JSONL) with problem_id, problem")
    p.add_argument("--model", required=True, help="teacher model directory (safetensors + tokenizer; for the "
                   "openai backend its tokenizer, and the served model name unless --served-model)")
    p.add_argument("--shard", type=int, required=True, help="shard index in [0, num-shards)")
    p.add_argument("--output", required=True, help="shard Parquet file")
    SampleSettings.add_arguments(p)
    p.set_defaults(func=run_sample)


def _register_merge(sub) -> None:
    p = sub.add_parser("merge-samples", help="merge sample shards and join the pool's problem and gold answer")
    p.add_argument("--pool", required=True, help="the pool the shards were sampled from")
    p.add_argument("--inputs", nargs="+", required=True, help="shard Parquet files")
    p.add_argument("--output", required=True)
    MergeSettings.add_arguments(p)
    p.set_defaults(func=run_merge)


def _metadata(provenance: dict) -> dict:
    return {**artifact_metadata(provenance), "settings": provenance}


# ---------------------------------------------------------------------------- sample


def run_sample(args: argparse.Namespace) -> None:
    settings = SampleSettings.from_args(args)
    if not 0 <= args.shard < settings.num_shards:
        raise InputError(f"--shard must be in [0, --num-shards); got shard {args.shard} of {settings.num_shards}")
    from trajfusion.templates import load_template

    template = load_template(settings.template)
    block = settings.shard_block()
    rows = shard_rows(read_pool(args.pool, SAMPLE_POOL_COLUMNS), settings.num_shards, args.shard, block)
    log.info("shard %d/%d (blocks of %d problems): %d problems x %d samples, seed %d", args.shard,
             settings.num_shards, block, len(rows), settings.k, settings.seed)
    provenance = {**settings.provenance(), "shard": args.shard, "block": block}
    partial = PartialBatches(args.output, job_fingerprint(provenance, [args.pool], args.model))
    groups = _generate(settings, args.model, template, rows, partial) if len(rows) else []
    frame = shard_frame(rows["problem_id"].tolist(), groups, settings.teacher, settings.seed)
    # The shard index and block are recorded beside the settings: merge-samples checks that the
    # shards were sampled alike and names a shard lacking samples by them.
    write(frame, args.output, SAMPLE_SHARD, _metadata(provenance))
    partial.remove()
    log.info("wrote %d samples to %s", len(frame), args.output)


def _generate(settings: SampleSettings, model: str, template, rows, partial: PartialBatches) -> list[list[Completion]]:
    backend = load_backend(settings.backend, model, **settings.backend_options())
    try:
        prompts = [template.render_prompt(problem, backend.tokenizer) for problem in rows["problem"]]
        groups = backend.generate(prompts, n=settings.k, temperature=settings.temperature, top_p=settings.top_p,
                                  max_new_tokens=settings.max_new_tokens, seed=settings.seed,
                                  keys=rows["problem_id"].tolist(), partial=partial)
        # A think block the template opened belongs to the response (trajfusion.trajectory).
        return [[replace(c, text=assistant_turn(prompt, c.text)) for c in group]
                for prompt, group in zip(prompts, groups, strict=True)]
    finally:
        backend.close()


# ---------------------------------------------------------------------------- merge


def run_merge(args: argparse.Namespace) -> None:
    settings = MergeSettings.from_args(args)
    pool = read_pool(args.pool, MERGE_POOL_COLUMNS)
    merged = merge_shards(pool, args.pool, args.inputs, settings.k)
    # Not the shard files' hashes: the merged table is the same however the work was cut.
    provenance = {**settings.provenance(), "sampling": common_sampling_settings(args.inputs),
                  "pool_sha256": sha256_file(args.pool)}
    write(merged, args.output, MERGED_SAMPLES, _metadata(provenance))
    log.info("merged %d samples of %d problems into %s", len(merged), len(pool), args.output)
