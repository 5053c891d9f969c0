"""Command line of the sampling stage: ``sample`` (one shard of a pool) and ``merge-samples``.

``sample`` writes its shard atomically, so a killed job leaves no output and Snakemake
simply reruns that shard.
"""

from __future__ import annotations

import argparse
import logging

from trajfusion.io import InputError, artifact_metadata, sha256_file, write_parquet
from trajfusion.sample.backends import BACKEND_NAMES, Completion, derive_seed, load_backend
from trajfusion.sample.backends.options import add_backend_arguments, backend_options
from trajfusion.sample.shards import POOL_COLUMNS, merge_shards, read_pool, shard_frame, shard_rows

log = logging.getLogger(__name__)

_PATH_FLAGS = ("pool", "model", "output")


def register(sub) -> None:
    _register_sample(sub)
    _register_merge(sub)


def _register_sample(sub) -> None:
    p = sub.add_parser("sample", help="sample K teacher completions per problem for one shard of a pool")
    p.add_argument("--pool", required=True, help="problem table (Parquet/JSONL) with problem_id, problem")
    p.add_argument("--model", required=True, help="teacher model directory (safetensors + tokenizer)")
    p.add_argument("--teacher", required=True, help="teacher name recorded in the 'teacher' column")
    p.add_argument("--template", required=True, help="prompt template name (trajfusion.templates)")
    p.add_argument("--backend", choices=BACKEND_NAMES, default="hf")
    p.add_argument("--num-shards", type=int, required=True)
    p.add_argument("--shard", type=int, required=True, help="shard index in [0, num-shards)")
    p.add_argument("--k", type=int, required=True, help="samples per problem")
    p.add_argument("--temperature", type=float, required=True)
    p.add_argument("--top-p", type=float, required=True)
    p.add_argument("--max-new-tokens", type=int, required=True)
    p.add_argument("--seed", type=int, required=True, help="base seed; the shard seed derives from it")
    add_backend_arguments(p)
    p.add_argument("--output", required=True, help="shard Parquet file")
    p.set_defaults(func=run_sample)


def _register_merge(sub) -> None:
    p = sub.add_parser("merge-samples", help="merge sample shards and join the pool's problem and gold answer")
    p.add_argument("--pool", required=True, help="the pool the shards were sampled from")
    p.add_argument("--inputs", nargs="+", required=True, help="shard Parquet files")
    p.add_argument("--k", type=int, required=True, help="samples each problem must have")
    p.add_argument("--output", required=True)
    p.set_defaults(func=run_merge)


# ---------------------------------------------------------------------------- sample


def run_sample(args: argparse.Namespace) -> None:
    if args.num_shards < 1 or not 0 <= args.shard < args.num_shards:
        raise InputError(f"--shard must be in [0, --num-shards); got shard {args.shard} of {args.num_shards}")
    if args.k < 1:
        raise InputError(f"--k must be >= 1, got {args.k}")
    from trajfusion.templates import load_template

    template = load_template(args.template)
    rows = shard_rows(read_pool(args.pool, ["problem_id", "problem"]), args.num_shards, args.shard)
    shard_seed = derive_seed(args.seed, args.shard)
    log.info("shard %d/%d: %d problems x %d samples, seed %d", args.shard, args.num_shards, len(rows),
             args.k, shard_seed)
    groups = _generate(args, template, rows["problem"].tolist(), shard_seed) if len(rows) else []
    frame = shard_frame(rows["problem_id"].tolist(), groups, args.teacher, shard_seed)
    settings = sample_settings(args)
    write_parquet(frame, args.output, metadata={**artifact_metadata(settings), "settings": settings})
    log.info("wrote %d samples to %s", len(frame), args.output)


def _generate(args, template, problems: list[str], shard_seed: int) -> list[list[Completion]]:
    backend = load_backend(args.backend, args.model, **backend_options(args))
    try:
        prompts = [template.render_prompt(problem, backend.tokenizer) for problem in problems]
        return backend.generate(prompts, n=args.k, temperature=args.temperature, top_p=args.top_p,
                                max_new_tokens=args.max_new_tokens, seed=shard_seed)
    finally:
        backend.close()


def sample_settings(args: argparse.Namespace) -> dict:
    """Every flag except file paths (recorded in the artifact metadata and hashed)."""
    return {key: value for key, value in sorted(vars(args).items())
            if key not in _PATH_FLAGS and key not in ("func", "command", "verbose")}


# ---------------------------------------------------------------------------- merge


def run_merge(args: argparse.Namespace) -> None:
    if args.k < 1:
        raise InputError(f"--k must be >= 1, got {args.k}")
    pool = read_pool(args.pool, POOL_COLUMNS)
    merged = merge_shards(pool, args.pool, args.inputs, args.k)
    settings = {"k": args.k, "inputs_sha256": sorted(sha256_file(path) for path in args.inputs)}
    write_parquet(merged, args.output, metadata={**artifact_metadata(settings), "settings": settings})
    log.info("merged %d samples of %d problems into %s", len(merged), len(pool), args.output)
