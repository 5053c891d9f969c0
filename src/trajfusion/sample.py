"""Teacher sampling (paper Section 4.1, Appendix A.1): K completions per pool problem.

``sample`` handles one shard of a pool (rows whose position, after sorting by problem_id,
is congruent to the shard index modulo the shard count) and writes it atomically, so a
killed job leaves no output and Snakemake simply reruns that shard. ``merge-samples``
concatenates the shards, joins the pool's problem, gold answer and source, and checks
that every problem has exactly K samples.
"""

from __future__ import annotations

import argparse
import logging

import pandas as pd

from trajfusion.generation import BACKEND_NAMES, FINISH_REASONS, Completion, derive_seed, load_backend
from trajfusion.io import (InputError, artifact_metadata, read_parquet_metadata, read_table, sha256_file,
                           write_parquet)

log = logging.getLogger(__name__)

SHARD_COLUMNS = ["problem_id", "sample_idx", "response", "n_tokens", "finish_reason", "teacher", "seed"]
MERGED_COLUMNS = ["problem_id", "sample_idx", "problem", "gold", "answer_type", "source", "response", "n_tokens",
                  "finish_reason", "teacher", "seed"]
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
    p.add_argument("--batch-size", type=int, default=None,
                   help="prompts per generate call (hf default 8; vllm default: the whole shard)")
    p.add_argument("--dtype", default=None, help="float32, bfloat16, float16 or auto (backend default if unset)")
    p.add_argument("--device", default=None, help="hf only: torch device (default cuda if available, else cpu)")
    p.add_argument("--threads", type=int, default=None,
                   help="hf on CPU: torch threads (pass the job's core allotment; default: torch's choice)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow model code from the model directory")
    p.add_argument("--tensor-parallel-size", type=int, default=None, help="vllm only")
    p.add_argument("--max-model-len", type=int, default=None, help="vllm only")
    p.add_argument("--gpu-memory-utilization", type=float, default=None, help="vllm only")
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


_BACKEND_FLAGS = {
    "hf": ("batch_size", "dtype", "device", "threads"),
    "vllm": ("batch_size", "dtype", "tensor_parallel_size", "max_model_len", "gpu_memory_utilization"),
}


def backend_options(args: argparse.Namespace) -> dict:
    """The flags that apply to the chosen backend, leaving unset ones at the backend's default."""
    used = _BACKEND_FLAGS[args.backend]
    options = {name: getattr(args, name) for name in used if getattr(args, name) is not None}
    other_flags = sorted({name for names in _BACKEND_FLAGS.values() for name in names} - set(used))
    ignored = [name for name in other_flags if getattr(args, name) is not None]
    if ignored:
        log.warning("backend %s ignores option(s) %s", args.backend, ignored)
    if args.backend == "vllm":
        options["seed"] = args.seed
    options["trust_remote_code"] = args.trust_remote_code
    return options


def sample_settings(args: argparse.Namespace) -> dict:
    """Every flag except file paths (recorded in the artifact metadata and hashed)."""
    return {key: value for key, value in sorted(vars(args).items())
            if key not in _PATH_FLAGS and key not in ("func", "command", "verbose")}


def read_pool(path: str, required: list[str]) -> pd.DataFrame:
    """The pool sorted by problem_id, with ids and ``required`` text fields checked."""
    pool = read_table(path, required=required)
    if pool.empty:
        raise InputError(f"{path}: the pool has no problems")
    for column in required:
        _check_text_column(pool, path, column)
    duplicated = pool["problem_id"].duplicated()
    if duplicated.any():
        row = int(duplicated.to_numpy().nonzero()[0][0])
        raise InputError(f"{path}: row {row}: field 'problem_id' repeats {pool['problem_id'].iloc[row]!r}")
    return pool.sort_values("problem_id", kind="stable").reset_index(drop=True)


def _check_text_column(table: pd.DataFrame, path: str, column: str) -> None:
    for row, value in enumerate(table[column].tolist()):
        if not isinstance(value, str) or (column == "problem_id" and not value):
            raise InputError(f"{path}: row {row}: field {column!r} must be a non-empty string, got {value!r}")


def shard_rows(pool: pd.DataFrame, num_shards: int, shard: int) -> pd.DataFrame:
    return pool.iloc[shard::num_shards].reset_index(drop=True)


def shard_frame(problem_ids: list[str], groups: list[list[Completion]], teacher: str, seed: int) -> pd.DataFrame:
    records = [(pid, idx, c.text, c.n_tokens, c.finish_reason)
               for pid, group in zip(problem_ids, groups, strict=True) for idx, c in enumerate(group)]
    frame = pd.DataFrame(records, columns=SHARD_COLUMNS[:5])
    frame["teacher"] = teacher
    frame["seed"] = seed
    return frame.astype({"problem_id": "str", "sample_idx": "int64", "response": "str", "n_tokens": "int64",
                         "finish_reason": "str", "teacher": "str", "seed": "int64"})


# ---------------------------------------------------------------------------- merge


def run_merge(args: argparse.Namespace) -> None:
    if args.k < 1:
        raise InputError(f"--k must be >= 1, got {args.k}")
    pool = read_pool(args.pool, ["problem_id", "problem", "answer", "source"])
    samples = pd.concat([read_shard(path, args.k) for path in args.inputs], ignore_index=True)
    _check_teacher(samples)
    _check_duplicates(samples)
    _check_known_problems(samples, pool, args.pool)
    _check_complete(samples, pool, args)
    # answer_type lets the verifier read typed golds (e.g. TheoremQA lists) correctly.
    if "answer_type" not in pool.columns:
        pool = pool.assign(answer_type=None)
    gold = pool[["problem_id", "problem", "answer", "answer_type", "source"]].rename(columns={"answer": "gold"})
    merged = samples.drop(columns="file").merge(gold, on="problem_id", how="left", validate="many_to_one")
    merged = merged.sort_values(["problem_id", "sample_idx"], kind="stable").reset_index(drop=True)
    settings = {"k": args.k, "inputs_sha256": sorted(sha256_file(path) for path in args.inputs)}
    write_parquet(merged[MERGED_COLUMNS], args.output, metadata={**artifact_metadata(settings), "settings": settings})
    log.info("merged %d samples of %d problems into %s", len(merged), len(pool), args.output)


def read_shard(path: str, k: int) -> pd.DataFrame:
    """A shard table with its contract fields checked and a 'file' column naming it."""
    shard = read_table(path, required=SHARD_COLUMNS)[SHARD_COLUMNS]
    _check_text_column(shard, path, "problem_id")
    _check_text_column(shard, path, "response")
    for row, (idx, reason) in enumerate(zip(shard["sample_idx"].tolist(), shard["finish_reason"].tolist())):
        if not isinstance(idx, int) or not 0 <= idx < k:
            raise InputError(f"{path}: row {row}: field 'sample_idx' must be an integer in [0, {k}), got {idx!r}")
        if reason not in FINISH_REASONS:
            raise InputError(f"{path}: row {row}: field 'finish_reason' must be one of "
                             f"{list(FINISH_REASONS)}, got {reason!r}")
    shard["file"] = str(path)
    return shard


def _check_teacher(samples: pd.DataFrame) -> None:
    teachers = samples.drop_duplicates("teacher")
    if len(teachers) > 1:
        first, other = teachers.iloc[0], teachers.iloc[1]
        raise InputError(f"{other['file']}: field 'teacher' is {other['teacher']!r} but {first['file']} "
                         f"has {first['teacher']!r}; shards of one merge must share a teacher")


def _check_duplicates(samples: pd.DataFrame) -> None:
    repeated = samples[samples.duplicated(["problem_id", "sample_idx"], keep=False)]
    if repeated.empty:
        return
    key = repeated.iloc[0]
    same = repeated[(repeated["problem_id"] == key["problem_id"]) & (repeated["sample_idx"] == key["sample_idx"])]
    files = sorted(set(same["file"]))
    where = f"{files[0]}: appears {len(same)} times" if len(files) == 1 else f"appears in {', '.join(files)}"
    raise InputError(f"duplicate sample (problem_id={key['problem_id']!r}, sample_idx={key['sample_idx']}) {where}")


def _check_known_problems(samples: pd.DataFrame, pool: pd.DataFrame, pool_path: str) -> None:
    unknown = samples[~samples["problem_id"].isin(pool["problem_id"])]
    if len(unknown):
        row = unknown.iloc[0]
        raise InputError(f"{row['file']}: problem_id {row['problem_id']!r} is not in the pool {pool_path}")


def _check_complete(samples: pd.DataFrame, pool: pd.DataFrame, args: argparse.Namespace) -> None:
    counts = samples.groupby("problem_id").size().reindex(pool["problem_id"], fill_value=0)
    short = counts[counts != args.k]
    if short.empty:
        return
    problem_id, count = short.index[0], int(short.iloc[0])
    position = int(pool.index[pool["problem_id"] == problem_id][0])
    raise InputError(f"{len(short)} of {len(pool)} pool problems do not have K={args.k} samples, e.g. "
                     f"{problem_id!r} has {count}; {_expected_shard(position, args.inputs)}")


def _expected_shard(position: int, inputs: list[str]) -> str:
    """Name the shard file that should hold the pool row at ``position`` (from shard metadata)."""
    layout = {}
    for path in inputs:
        settings = read_parquet_metadata(path).get("settings", {})
        if "num_shards" in settings and "shard" in settings:
            layout[path] = (settings["num_shards"], settings["shard"])
    shard_counts = {num for num, _ in layout.values()}
    if len(layout) != len(inputs) or len(shard_counts) != 1:
        return f"inputs: {', '.join(inputs)}"
    num_shards = shard_counts.pop()
    shard = position % num_shards
    holders = [path for path, (_, index) in layout.items() if index == shard]
    if holders:
        return f"it belongs to shard {shard} of {num_shards} ({holders[0]}), which lacks samples for it"
    return f"it belongs to shard {shard} of {num_shards}, which is missing from --inputs"
