"""Bad input through the real entry points (issue 9, item 4).

Every case is one `trajfusion` command run on a small broken input. Each must exit with code
2, print one error line naming the file, the line/record/row and the field (no traceback),
and write nothing: the outputs of a case all live under its ``out/`` directory, which must
not exist afterwards. All cases run in-process through ``trajfusion.cli.main`` (the console
script's entry point); those in ``SUBPROCESS`` also run as ``python -m trajfusion.cli``.
Config errors: every case goes through the config schema, and a representative few (schema
and cross-reference errors) through ``snakemake -n`` with the bad ``--configfile``, which must
fail before any job, naming the key.
"""

from __future__ import annotations

import concurrent.futures
import copy
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, local_snakemake_env, make_data_dir
from trajfusion import cli
from trajfusion.io import write_parquet

DATA_DIR = REPO / "data"
SUBPROCESS_TIMEOUT = 120


# --------------------------------------------------------------------------- helpers


def raw_lines(relative: str, n: int = 3) -> list[bytes]:
    """The first ``n`` lines of a bundled data file."""
    with open(DATA_DIR / relative, "rb") as fh:
        return [fh.readline() for _ in range(n)]


def record(relative: str, index: int = 0) -> dict:
    return json.loads(raw_lines(relative, index + 1)[index])


def jsonl(*records: dict) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def edited(relative: str, index: int, **changes) -> bytes:
    """The first three records of a bundled JSONL file, record ``index`` changed
    (a value of ``...`` deletes the field)."""
    records = [json.loads(line) for line in raw_lines(relative)]
    for key, value in changes.items():
        if value is ...:
            del records[index][key]
        else:
            records[index][key] = value
    return jsonl(*records)


def theoremqa(**changes) -> bytes:
    """A pretty-printed TheoremQA file of one record, as the bundled one is formatted."""
    rec = {"Question": "How many?", "Answer": 12, "Answer_type": "integer", "Picture": None,
           "source": "x", "id": "t/one.json", "field": "Math", "subfield": "Combinatorics"}
    rec.update(changes)
    return json.dumps([rec], indent=4).encode()


def benchmark(name: str, relative: str, content: bytes) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        make_data_dir(d / "data", {relative: content})
        return ["prepare-benchmark", "--name", name, "--data-dir", d / "data", "--output", d / "out/b.parquet"]
    return build


def pool(spec: dict | str, files: dict[str, bytes] | None = None) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        data_dir = make_data_dir(d / "data", files) if files else DATA_DIR
        text = spec if isinstance(spec, str) else json.dumps(spec)
        return ["build-pool", "--spec", text, "--data-dir", data_dir, "--seed", "0",
                "--output", d / "out/pool.parquet", "--report", d / "out/report.json"]
    return build


def tampered_checksum(d: Path) -> list[str]:
    content = (DATA_DIR / "eval/aime25_test.jsonl").read_bytes()
    make_data_dir(d / "data", {"eval/aime25_test.jsonl": content})
    (d / "data/eval/aime25_test.jsonl").write_bytes(content.replace(b"Find", b"Fund", 1))
    return ["prepare-benchmark", "--name", "aime25", "--data-dir", d / "data", "--output", d / "out/b.parquet"]


def unlisted_file(d: Path) -> list[str]:
    make_data_dir(d / "data", {"eval/other.jsonl": b"{}\n"})
    (d / "data/eval/aime25_test.jsonl").write_bytes(b"".join(raw_lines("eval/aime25_test.jsonl")))
    return ["prepare-benchmark", "--name", "aime25", "--data-dir", d / "data", "--output", d / "out/b.parquet"]


def no_checksum_list(d: Path) -> list[str]:
    (d / "data/eval").mkdir(parents=True)
    (d / "data/eval/aime25_test.jsonl").write_bytes(b"".join(raw_lines("eval/aime25_test.jsonl")))
    return ["prepare-benchmark", "--name", "aime25", "--data-dir", d / "data", "--output", d / "out/b.parquet"]


GSM8K_TEST_QUESTION = record("eval/gsm8k_test.jsonl")["question"]


# A pool, shards, verified tables and fused datasets small enough to write by hand.

def pool_frame(n: int = 2) -> pd.DataFrame:
    return pd.DataFrame({"problem_id": [f"toy/{i}" for i in range(n)], "problem": [f"{i} + {i}?" for i in range(n)],
                         "answer": [str(2 * i) for i in range(n)], "source": "toy"})


def sample_cmd(pool_table: pd.DataFrame, k: int = 2, template: str = "chat") -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        pool_table.to_parquet(d / "pool.parquet", index=False)
        # The model directory is never opened: every case fails before generation starts.
        return ["sample", "--pool", d / "pool.parquet", "--model", d / "no-model", "--teacher", "t",
                "--template", template, "--num-shards", "1", "--shard", "0", "--k", str(k),
                "--temperature", "0.7", "--top-p", "0.95", "--max-new-tokens", "8", "--seed", "0",
                "--output", d / "out/shard.parquet"]
    return build


def shard_frame(n: int = 2, k: int = 2) -> pd.DataFrame:
    rows = [{"problem_id": f"toy/{i}", "sample_idx": j, "response": f"\\boxed{{{2 * i}}}", "n_tokens": 5,
             "finish_reason": "stop", "teacher": "t", "seed": 0} for i in range(n) for j in range(k)]
    return pd.DataFrame(rows)


def merge_cmd(shard: pd.DataFrame, k: int = 2) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        pool_frame().to_parquet(d / "pool.parquet", index=False)
        shard.to_parquet(d / "shard-0.parquet", index=False)
        return ["merge-samples", "--pool", d / "pool.parquet", "--inputs", d / "shard-0.parquet", "--k", str(k),
                "--output", d / "out/merged.parquet"]
    return build


def samples_frame() -> pd.DataFrame:
    return pd.DataFrame({"problem_id": ["p", "p"], "sample_idx": [0, 1], "gold": ["4", "4"],
                         "response": ["\\boxed{4}", "\\boxed{5}"], "finish_reason": ["stop", "stop"]})


def verify_cmd(content: pd.DataFrame | bytes, *flags: str, parquet: bool = False) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        path = d / ("samples.parquet" if parquet else "samples.jsonl")
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif parquet:
            content.to_parquet(path, index=False)
        else:
            content.to_json(path, orient="records", lines=True)
        return ["verify", "--input", path, "--output", d / "out/verified.parquet", "--workers", "1", *flags]
    return build


def stats_cmd(table: pd.DataFrame) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        write_parquet(table, d / "verified.parquet")
        return ["stats", "--input", d / "verified.parquet", "--output", d / "out/stats.parquet"]
    return build


def verified_frame() -> pd.DataFrame:
    rows = [("p", 0, "4", True, "ok", None), ("p", 1, "5", False, "ok", "5"), ("p", 2, "6", False, "ok", "6"),
            ("q", 0, "1", True, "ok", None), ("q", 1, None, False, "filtered:no_answer", None)]
    return pd.DataFrame([{"problem_id": p, "sample_idx": i, "problem": f"Problem {p}", "gold": "g",
                          "response": f"{p}{i} \\boxed{{{a}}}", "n_tokens": 10 + i, "finish_reason": "stop",
                          "answer": a, "correct": c, "status": s, "answer_group": g}
                         for p, i, a, c, s, g in rows])


def with_row(frame: pd.DataFrame, index: int, **changes) -> pd.DataFrame:
    frame = frame.astype(object)
    for key, value in changes.items():
        frame.at[index, key] = value
    return frame


def fuse_cmd(table: pd.DataFrame | None, *flags, command: str = "fuse") -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        write_parquet(verified_frame() if table is None else table, d / "verified.parquet")
        (d / "alpha-bad.json").write_text('{"alpha": 0.5,}')
        (d / "alpha-zero.json").write_text('{"alpha": 0}')
        argv = [command, "--input", d / "verified.parquet",
                *(str(f).replace("{d}", str(d)) for f in flags)]
        if command == "fuse":
            return argv + ["--seed", "0", "--output", d / "out/fused.jsonl", "--summary", d / "out/s.json"]
        return argv + ["--output", d / "out/alpha.json"]
    return build


def reflect_cmd(*flags: str) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        write_parquet(verified_frame(), d / "verified.parquet")
        return ["reflect", "--input", d / "verified.parquet", "--output", d / "out/tapo.jsonl",
                "--summary", d / "out/summary.json", *flags]
    return build


def pool_run_cmd(command: str, *flags: str) -> Callable[[Path], list[str]]:
    """grpo or distill on a one-problem pool (their settings are checked before any model loads)."""
    def build(d: Path) -> list[str]:
        (d / "pool.jsonl").write_text('{"problem_id": "a", "problem": "1+1?", "gold": "2"}\n')
        models = ["--model", d / "no-model"] if command == "grpo" else \
            ["--student", d / "no-model", "--teacher", d / "no-model"]
        return [command, *models, "--pool", d / "pool.jsonl", "--output-dir", d / "out/run", "--template", "chat",
                "--seed", "0", *flags]
    return build


def fused_line(user="What is 2+2?", assistant="<think>\n4\n</think>\nThe answer is \\boxed{4}.",
               user_role="user") -> dict:
    return {"problem_id": "p", "messages": [{"role": user_role, "content": user},
                                            {"role": "assistant", "content": assistant}]}


def train_cmd(content: bytes, *flags: str) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        (d / "fused.jsonl").write_bytes(content)
        return ["train", "--model", d / "no-model", "--dataset", d / "fused.jsonl", "--template", "chat",
                "--output-dir", d / "out/run", "--epochs", "1", "--learning-rate", "1e-4",
                "--per-device-batch-size", "1", "--grad-accum", "1", "--max-length", "64", "--precision", "fp32",
                "--seed", "0", "--num-gpus", "0", *flags]
    return build


def fused_row(**changes) -> dict:
    """A whole fused-dataset record (the contract's columns), vanilla RFT."""
    return {**fused_line(), "n_errors": 0, "error_indices": [], "correct_index": 0, "alpha": None, "k_max": 0,
            "strategy": "highdiv", "seed": 0, "error_spans": [], "success_span": None, **changes}


def export_cmd(content: bytes, *flags: str) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        (d / "fused.jsonl").write_bytes(content)
        return ["export", "--input", d / "fused.jsonl", "--output", d / "out/train.jsonl", *flags]
    return build


def evaluate_cmd(bench: pd.DataFrame, samples: str = "1") -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        bench.to_parquet(d / "bench.parquet", index=False)
        return ["evaluate", "--model", d / "no-model", "--benchmark", d / "bench.parquet",
                "--template", "chat", "--samples", samples, "--temperature", "0", "--top-p", "1",
                "--max-new-tokens", "8", "--seed", "0", "--workers", "0", "--output", d / "out/eval.parquet"]
    return build


def bench_frame() -> pd.DataFrame:
    return pd.DataFrame({"problem_id": ["b/0", "b/1"], "problem": ["1+1?", "2+2?"], "answer": ["2", "4"]})


def report_cmd(manifest: str, *flags: str) -> Callable[[Path], list[str]]:
    def build(d: Path) -> list[str]:
        (d / "manifest.json").write_text(manifest)
        return ["report", "--manifest", d / "manifest.json", "--out-dir", d / "out/report", *flags]
    return build


def model_cmd(spec: str) -> Callable[[Path], list[str]]:
    return lambda d: ["prepare-model", "--spec", spec, "--output", d / "out/model"]


# --------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Path], list]  # writes the inputs into a directory; returns the argv
    expected: tuple[str, ...]  # fragments of the error message ("{d}" is the case directory)


AIME24, AIME25 = "eval/aime24_test.jsonl", "eval/aime25_test.jsonl"
MATH500, GSM8K, MATH = "eval/math500_test.jsonl", "eval/gsm8k_test.jsonl", "eval/math_test.jsonl"
TQA, OLYMPIAD = "eval/theoremqa_test.json", "eval/olympiadbench_test.jsonl"
NO_DECONTAMINATION: list[str] = []

CASES = [
    # --- bundled data: encoding, syntax, checksums ---------------------------------------
    Case("jsonl-malformed-line", benchmark("aime24", AIME24, b"".join(raw_lines(AIME24)[:2]) + b'{"id": 62, "pro\n'),
         ("{d}/data/eval/aime24_test.jsonl:3:", "malformed JSON")),
    Case("jsonl-not-utf8", benchmark("aime24", AIME24, raw_lines(AIME24)[0] + b'{"id": 61, "problem": "\xff\xfe"}\n'),
         ("aime24_test.jsonl:2:", "not valid UTF-8")),
    Case("jsonl-line-not-object", benchmark("aime24", AIME24, raw_lines(AIME24)[0] + b"[61, 62]\n"),
         ("aime24_test.jsonl:2:", "expected a JSON object, got list")),
    Case("json-array-malformed", benchmark("theoremqa", TQA, theoremqa().replace(b'"Answer": 12', b'"Answer": 12 12')),
         ("{d}/data/eval/theoremqa_test.json:4:", "malformed JSON")),
    Case("json-array-not-utf8", benchmark("theoremqa", TQA, theoremqa().replace(b"How many", b"How m\xe4ny")),
         ("theoremqa_test.json:3:", "not valid UTF-8")),
    Case("csv-not-utf8", pool({"sources": [{"name": "aime_1983_2023"}], "decontaminate_against": []},
                              {"train/aime_1983_2024.csv": b"ID,Year,Problem Number,Question,Answer,Part\n"
                               b"1983-1,1983,1,What?,60,\n1983-2,1983,2,Wh\xe9t?,15,\n"}),
         ("aime_1983_2024.csv:3:", "not valid UTF-8")),
    Case("empty-data-file", benchmark("aime25", AIME25, b""), ("{d}/data/eval/aime25_test.jsonl:", "no records")),
    Case("checksum-mismatch", tampered_checksum, ("{d}/data/eval/aime25_test.jsonl:", "SHA-256 mismatch")),
    Case("file-not-in-checksum-list", unlisted_file, ("aime25_test.jsonl:", "no entry for 'eval/aime25_test.jsonl'")),
    Case("no-checksum-list", no_checksum_list, ("{d}/data/SHA256SUMS:", "checksum list not found")),
    # --- gold answers ---------------------------------------------------------------------
    Case("gold-field-missing", benchmark("aime25", AIME25, edited(AIME25, 1, answer=...)),
         ("aime25_test.jsonl: record 2:", "missing field 'answer'")),
    Case("gold-empty", benchmark("aime25", AIME25, edited(AIME25, 1, answer="  ")),
         ("aime25_test.jsonl: record 2:", "no gold answer in field 'answer'")),
    Case("gold-null", benchmark("math500", MATH500, edited(MATH500, 0, answer=None)),
         ("math500_test.jsonl: record 1:", "no gold answer in field 'answer'")),
    Case("gold-rationale-without-marker", benchmark("gsm8k", GSM8K, edited(
        GSM8K, 1, answer="She pays 16 dollars.\nThe answer is 16")),
        ("gsm8k_test.jsonl: record 2:", "no gold answer in field 'answer'")),
    Case("gold-solution-without-box", benchmark("math", MATH, edited(MATH, 0, solution="It is 2.")),
         ("math_test.jsonl: record 1:", "no gold answer in field 'solution'")),
    Case("gold-not-an-integer", benchmark("aime24", AIME24, edited(AIME24, 0, answer="twelve")),
         ("aime24_test.jsonl: record 1:", "field 'answer' is not an integer")),
    Case("duplicate-problem-id", benchmark("aime25", AIME25, b"".join(raw_lines(AIME25)[:2] + raw_lines(AIME25)[:1])),
         ("aime25_test.jsonl: record 3 (problem_id='aime25/00'): duplicate key (problem_id), also record 1",)),
    # --- TheoremQA answers of another type than their declared answer_type ------------------
    Case("theoremqa-integer-is-text", benchmark("theoremqa", TQA, theoremqa(Answer="twelve")),
         ("theoremqa_test.json: record 1:", "field 'Answer' must be an integer", "'integer'", "'twelve'")),
    Case("theoremqa-integer-is-fraction", benchmark("theoremqa", TQA, theoremqa(Answer=2.5)),
         ("record 1:", "field 'Answer' must be an integer", "got number 2.5")),
    Case("theoremqa-list-is-number", benchmark("theoremqa", TQA, theoremqa(Answer=3, Answer_type="list of integer")),
         ("record 1:", "field 'Answer' must be a non-empty list of integers")),
    Case("theoremqa-bool-is-text", benchmark("theoremqa", TQA, theoremqa(Answer="maybe", Answer_type="bool")),
         ("record 1:", "field 'Answer' must be true or false")),
    Case("theoremqa-option-is-number", benchmark("theoremqa", TQA, theoremqa(Answer=2, Answer_type="option")),
         ("record 1:", "field 'Answer' must be an option")),
    Case("theoremqa-float-is-bool", benchmark("theoremqa", TQA, theoremqa(Answer=True, Answer_type="float")),
         ("record 1:", "field 'Answer' must be a number", "got boolean True")),
    Case("theoremqa-unknown-answer-type", benchmark("theoremqa", TQA, theoremqa(Answer_type="complex")),
         ("record 1:", "unknown Answer_type 'complex'")),
    # --- fields of the wrong JSON type ------------------------------------------------------
    Case("problem-is-a-number", benchmark("math500", MATH500, edited(MATH500, 0, problem=42)),
         ("math500_test.jsonl: record 1:", "field 'problem' must be a string, got number 42")),
    Case("rationale-is-an-object", benchmark("gsm8k", GSM8K, edited(GSM8K, 0, answer={"final": 18})),
         ("gsm8k_test.jsonl: record 1:", "field 'answer' must be a string, got object")),
    Case("gold-is-a-list", benchmark("math500", MATH500, edited(MATH500, 1, answer=[1, 2])),
         ("math500_test.jsonl: record 2:", "field 'answer' must be a string or a number", "got array")),
    Case("id-is-not-an-integer", benchmark("aime24", AIME24, edited(AIME24, 0, id="sixty")),
         ("aime24_test.jsonl: record 1:", "field 'id' must be an integer", "'sixty'")),
    Case("tolerance-is-not-a-number", benchmark("olympiadbench", OLYMPIAD, edited(OLYMPIAD, 0, error="1e-2 or so")),
         ("olympiadbench_test.jsonl: record 1:", "field 'error' must be a number")),
    Case("topic-is-a-list", benchmark("olympiadbench", OLYMPIAD, edited(OLYMPIAD, 1, subfield=["a"])),
         ("olympiadbench_test.jsonl: record 2:", "field 'subfield' must be a string or null")),
    # --- pools --------------------------------------------------------------------------------
    Case("empty-pool", pool({"sources": [{"name": "gsm8k_train"}], "decontaminate_against": ["gsm8k"]},
                            {"train/gsm8k_train.jsonl": jsonl({"question": GSM8K_TEST_QUESTION,
                                                                "answer": "Copied.\n#### 18"}),
                             GSM8K: (DATA_DIR / GSM8K).read_bytes()}),
         ("pool spec: the pool is empty", "gsm8k_train: 1 loaded, 1 removed as benchmark duplicates")),
    Case("pool-unknown-dataset", pool({"sources": [{"name": "gsm9k_train"}]}),
         ("pool spec: sources[0]:", "'name' must be a built-in source", "'gsm9k_train'")),
    Case("pool-count-out-of-range", pool({"sources": [{"name": "aime_1983_2023", "n": 0, "select": "random"}]}),
         ("pool spec: sources[0] (aime_1983_2023): 'n'", "must be a positive integer")),
    Case("pool-spec-malformed", pool("{sources: [}"), ("--spec: malformed JSON",)),
    # --- sampling -----------------------------------------------------------------------------
    Case("sample-k-zero", sample_cmd(pool_frame(), k=0), ("--k: must be at least 1, got 0",)),
    Case("sample-empty-pool", sample_cmd(pool_frame().iloc[:0]), ("{d}/pool.parquet: the table has no rows",)),
    Case("sample-problem-null", sample_cmd(with_row(pool_frame(), 1, problem=None)),
         ("{d}/pool.parquet: record 2 (problem_id='toy/1'): field 'problem' is null",)),
    Case("sample-duplicate-id", sample_cmd(with_row(pool_frame(3), 2, problem_id="toy/0")),
         ("{d}/pool.parquet: record 3 (problem_id='toy/0'): duplicate key (problem_id), also record 1",)),
    Case("sample-unknown-template", sample_cmd(pool_frame(), template="qwen9"), ("unknown template 'qwen9'",)),
    Case("sample-model-does-not-exist", sample_cmd(pool_frame()),
         ("{d}/no-model: model directory does not exist",)),
    Case("merge-bad-finish-reason", merge_cmd(with_row(shard_frame(), 1, finish_reason="oops")),
         ("{d}/shard-0.parquet: record 2 (problem_id='toy/0', sample_idx=1): field 'finish_reason' must be one of",
          "'oops'")),
    Case("merge-missing-column", merge_cmd(shard_frame().drop(columns="teacher")),
         ("{d}/shard-0.parquet: missing required column(s) ['teacher']",)),
    Case("merge-sample-idx-out-of-range", merge_cmd(with_row(shard_frame(), 3, sample_idx=7)),
         ("{d}/shard-0.parquet: record 3 (problem_id='toy/1', sample_idx=0): field 'sample_idx' breaks rule "
          "'samples-0-to-n-1'",)),
    Case("merge-k-mismatch", merge_cmd(shard_frame(k=2), k=3),
         ("do not have K=3 samples", "'toy/0' has 2")),
    # --- verification -------------------------------------------------------------------------
    Case("verify-malformed-line", verify_cmd(b'{"problem_id": "p", "gold": "4", "response": "4"}\n{"problem_id": \n'),
         ("{d}/samples.jsonl:2:", "malformed JSON")),
    Case("verify-not-utf8", verify_cmd(b'{"problem_id": "p", "gold": "4", "response": "4"}\n'
                                       b'{"problem_id": "p", "gold": "4", "response": "\xc3\x28"}\n'),
         ("{d}/samples.jsonl:2:", "not valid UTF-8")),
    Case("verify-gold-null", verify_cmd(with_row(samples_frame(), 1, gold=None)),
         ("{d}/samples.jsonl: record 2 (problem_id='p', sample_idx=1): field 'gold' is null",)),
    Case("verify-response-not-text", verify_cmd(with_row(samples_frame(), 0, response=4)),
         ("{d}/samples.jsonl: record 1 (problem_id='p', sample_idx=0): field 'response' must be a string, "
          "got 4",)),
    Case("verify-missing-column", verify_cmd(samples_frame().drop(columns="response")),
         ("{d}/samples.jsonl: missing required column(s) ['response']",)),
    Case("verify-no-rows", verify_cmd(samples_frame().iloc[:0], parquet=True),
         ("{d}/samples.parquet: the table has no rows",)),
    Case("verify-timeout-zero", verify_cmd(samples_frame(), "--timeout", "0"), ("--timeout: must be positive",)),
    Case("verify-unknown-filter", verify_cmd(samples_frame(), "--filters", '{"ngram": 3}'),
         ("--filters: unknown filter setting 'ngram'",)),
    Case("stats-unknown-status", stats_cmd(with_row(verified_frame(), 1, status="maybe")),
         ("{d}/verified.parquet: record 2 (problem_id='p', sample_idx=1): field 'status' must be one of",
          "got 'maybe'")),
    # --- fusion: k_max, alpha, K and the verified table -----------------------------------------
    Case("fuse-k-max-negative", fuse_cmd(None, "--k-max", "-1", "--alpha", "1"),
         ("--k-max: must be a non-negative integer, got -1",)),
    Case("fuse-alpha-zero", fuse_cmd(None, "--k-max", "2", "--alpha", "0"), ("--alpha: alpha must be > 0, got 0",)),
    Case("fuse-alpha-negative", fuse_cmd(None, "--k-max", "2", "--alpha", "-0.5"), ("--alpha: alpha must be > 0",)),
    Case("fuse-alpha-not-a-number", fuse_cmd(None, "--k-max", "2", "--alpha", "nan"),
         ("--alpha: alpha 'nan' is not a finite decimal or fraction",)),
    Case("fuse-alpha-missing", fuse_cmd(None, "--k-max", "2"), ("--alpha: required when --k-max > 0",)),
    Case("fuse-certainty-out-of-range", fuse_cmd(None, "--k-max", "0", "--certainty-prob", "1.5"),
         ("--certainty-prob: must be within [0, 1], got 1.5",)),
    Case("fuse-alpha-file-malformed", fuse_cmd(None, "--k-max", "2", "--alpha-file", "{d}/alpha-bad.json"),
         ("{d}/alpha-bad.json: malformed JSON",)),
    Case("fuse-alpha-file-zero", fuse_cmd(None, "--k-max", "2", "--alpha-file", "{d}/alpha-zero.json"),
         ("{d}/alpha-zero.json: field 'alpha': alpha must be > 0",)),
    Case("fuse-correct-but-not-ok", fuse_cmd(with_row(verified_frame(), 4, correct=True), "--k-max", "0"),
         ("{d}/verified.parquet: record 5 (problem_id='q', sample_idx=1): field 'correct'",
          "breaks rule 'correct-only-if-ok'")),
    Case("fuse-sample-idx-not-integer", fuse_cmd(verified_frame().assign(sample_idx=[0, 1, 1.5, 0, 1]), "--k-max", "0"),
         ("{d}/verified.parquet: record 3 (problem_id='p', sample_idx=1.5): field 'sample_idx' must be an integer, "
          "got 1.5",)),
    Case("fuse-answer-missing-for-ok", fuse_cmd(with_row(verified_frame(), 1, answer=None), "--k-max", "0"),
         ("{d}/verified.parquet: record 2 (problem_id='p', sample_idx=1): field 'answer' breaks rule "
          "'ok-has-answer'",)),
    Case("fuse-no-rows", fuse_cmd(verified_frame().iloc[:0], "--k-max", "0"),
         ("{d}/verified.parquet: the table has no rows",)),
    Case("calibrate-target-zero", fuse_cmd(None, "--k-max", "2", "--target-errors", "0", command="calibrate-alpha"),
         ("--target-errors: ", "must be > 0, got 0")),
    Case("calibrate-target-unattainable", fuse_cmd(None, "--k-max", "1", "--target-errors", "5",
                                                   command="calibrate-alpha"),
         ("{d}/verified.parquet: target mean #Err 5 is unattainable with k_max=1",)),
    Case("reflect-band-inverted", reflect_cmd("--band-low", "0.9", "--band-high", "0.1"),
         ("--band-low 0.9 is above --band-high 0.1",)),
    # --- training and evaluation ---------------------------------------------------------------
    Case("grpo-batch-not-whole-groups", pool_run_cmd("grpo", "--num-generations", "4", "--per-device-batch-size", "6"),
         ("--per-device-batch-size 6 must be a multiple of --num-generations 4",)),
    Case("distill-window-zero", pool_run_cmd("distill", "--window", "0"), ("--window: must be positive, got 0",)),
    Case("train-wrong-role", train_cmd(jsonl(fused_line(), fused_line(user_role="system"))),
         ("{d}/fused.jsonl: record 2 (problem_id='p'): field 'messages[0].role' 'user' was expected",)),
    Case("train-empty-content", train_cmd(jsonl(fused_line(user=" "))),
         ("{d}/fused.jsonl: record 1 (problem_id='p'): field 'messages[0].content' ' ' does not match",)),
    Case("train-malformed-line", train_cmd(jsonl(fused_line()) + b"{\n"), ("{d}/fused.jsonl:2:", "malformed JSON")),
    Case("train-empty-dataset", train_cmd(b"\n"), ("{d}/fused.jsonl: the table has no rows",)),
    Case("train-epochs-zero", train_cmd(jsonl(fused_line()), "--epochs", "0"),
         ("--epochs: must be positive, got 0.0",)),
    Case("train-bad-checkpoints", train_cmd(jsonl(fused_line()), "--checkpoints", "8,x"),
         ("--checkpoints: 'x' is not a positive integer",)),
    Case("train-model-does-not-exist", train_cmd(jsonl(fused_line())),
         ("--model: cannot load a tokenizer from", "no-model")),
    Case("evaluate-samples-zero", evaluate_cmd(bench_frame(), samples="0"), ("--samples: must be at least 1, got 0",)),
    Case("evaluate-empty-answer", evaluate_cmd(with_row(bench_frame(), 1, answer="")),
         ("{d}/bench.parquet: record 2 (problem_id='b/1'): field 'answer' must not be blank, got ''",)),
    Case("evaluate-duplicate-id", evaluate_cmd(with_row(bench_frame(), 1, problem_id="b/0")),
         ("{d}/bench.parquet: record 2 (problem_id='b/0'): duplicate key (problem_id), also record 1",)),
    Case("evaluate-model-does-not-exist", evaluate_cmd(bench_frame()),
         ("{d}/no-model: model directory does not exist",)),
    Case("export-malformed-line", export_cmd(jsonl(fused_row()) + b"{\n", "--format", "sharegpt", "--template", "chat"),
         ("{d}/fused.jsonl:2:", "malformed JSON")),
    Case("export-not-fused", export_cmd(jsonl(fused_line()), "--format", "messages", "--template", "chat"),
         ("{d}/fused.jsonl: record 1 (problem_id='p'):", "'n_errors' is a required property")),
    Case("export-unknown-template", export_cmd(jsonl(fused_row()), "--format", "alpaca", "--template", "nope"),
         ("unknown template 'nope'",)),
    Case("export-no-system-prompt", export_cmd(jsonl(fused_row()), "--format", "alpaca"),
         ("--template, --system: give exactly one",)),
    # --- report and model preparation -----------------------------------------------------------
    Case("report-manifest-malformed", report_cmd('{"evals": [}'), ("{d}/manifest.json: malformed JSON",)),
    Case("report-manifest-wrong-field", report_cmd('{"smoke_test": true, "evals": 3}'),
         ("{d}/manifest.json: evals: 3 is not of type 'array'",)),
    Case("report-gpus-malformed", report_cmd('{"evals": []}', "--gpus-per-job", "[[train, 8]]"),
         ("--gpus-per-job: malformed JSON",)),
    Case("model-spec-malformed", model_cmd("{source: tiny}"), ("--spec: malformed JSON",)),
    Case("model-spec-unknown-source", model_cmd('{"source": "ftp"}'), ("--spec: field 'source' must be one of",)),
    Case("model-spec-missing-field", model_cmd('{"source": "hub"}'), ("--spec: field 'hub_id'", "required")),
]

# One case per subcommand also runs as its own process, the way Snakemake runs it.
SUBPROCESS = ("jsonl-malformed-line", "sample-empty-pool", "fuse-alpha-zero", "train-wrong-role")
BY_ID = {case.id: case for case in CASES}


def prepare(case: Case, root: Path) -> tuple[Path, list[str]]:
    d = root / case.id
    d.mkdir(parents=True)
    return d, [str(a) for a in case.build(d)]


def check_failure(case: Case, d: Path, command: str, returncode: int, stderr: str) -> None:
    assert returncode == 2, f"{case.id}: exit code {returncode}\n{stderr[-3000:]}"
    assert "Traceback" not in stderr, stderr[-3000:]
    message = stderr.strip().splitlines()[-1]
    assert message.startswith(f"trajfusion {command}: error: "), message
    for fragment in case.expected:
        assert fragment.replace("{d}", str(d)) in message, f"{case.id}: {fragment!r} not in {message!r}"
    assert not (d / "out").exists(), f"{case.id}: wrote {sorted((d / 'out').rglob('*'))}"
    assert not list(d.rglob("*.tmp")), f"{case.id}: left a temporary file"


def test_the_table_covers_every_subcommand(tmp_path):
    subcommands = set(cli.build_parser()._subparsers._group_actions[0].choices)
    assert {prepare(case, tmp_path)[1][0] for case in CASES} == subcommands
    assert len(BY_ID) == len(CASES) and set(SUBPROCESS) <= set(BY_ID)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_with_file_record_and_field(case, tmp_path, capsys):
    d, argv = prepare(case, tmp_path)
    returncode = cli.main(argv)
    check_failure(case, d, argv[0], returncode, capsys.readouterr().err)


def test_bad_input_in_a_separate_process(tmp_path):
    """The console-level behaviour: process exit code 2, the message on stderr, no traceback."""
    prepared = {case_id: prepare(BY_ID[case_id], tmp_path) for case_id in SUBPROCESS}

    def run(argv):
        return subprocess.run([sys.executable, "-m", "trajfusion.cli", *argv], capture_output=True, text=True,
                              timeout=SUBPROCESS_TIMEOUT, cwd=tmp_path)

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool_:
        results = dict(zip(prepared, pool_.map(run, [argv for _, argv in prepared.values()])))
    for case_id, (d, argv) in prepared.items():
        check_failure(BY_ID[case_id], d, argv[0], results[case_id].returncode, results[case_id].stderr)


# --------------------------------------------------------------------------- config errors


def dry_runs(configs: dict[str, dict], root: Path, *flags: str) -> dict[str, subprocess.CompletedProcess]:
    """``snakemake -n`` on each config (in its own directory), a few at a time."""
    env = local_snakemake_env()  # no 10 s wait for a SLURM controller at Snakemake's start

    def run(name: str) -> subprocess.CompletedProcess:
        workdir = root / name
        workdir.mkdir()
        (workdir / "config.yaml").write_text(yaml.safe_dump(configs[name]))
        return subprocess.run([sys.executable, "-m", "snakemake", "-n", *flags, "--snakefile", str(REPO / "Snakefile"),
                               "--directory", str(workdir), "--configfile", str(workdir / "config.yaml")],
                              capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, env=env)

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool_:
        return dict(zip(configs, pool_.map(run, configs)))


def embedded_config(mutate: Callable[[dict], object]) -> dict:
    config = copy.deepcopy(yaml.safe_load((REPO / "config/config.yaml").read_text()))
    mutate(config)
    return config


# (mutation of the embedded default, the offending key, fragments of the error)
CONFIG_CASES = {
    "teacher-model-does-not-exist": (
        lambda c: c["teachers"]["smollm2-135m"].__setitem__("model", "smollm2-1b"), None,
        ("config error at 'teachers.smollm2-135m.model'", "unknown model 'smollm2-1b'")),
    "variant-does-not-exist": (
        lambda c: c["experiments"]["table1"]["variants"].append("tf_k9"), None,
        ("config error at 'experiments.table1.variants[2]'", "unknown name 'tf_k9'")),
    "dataset-does-not-exist": (
        # names are free (a `datasets:` entry may be one): the cross-reference check names it
        lambda c: c["pools"]["embedded"]["sources"][0].__setitem__("name", "gsm9k_train"), None,
        ("config error at 'pools.embedded.sources[0].name'", "unknown source 'gsm9k_train'")),
    "benchmark-does-not-exist": (
        lambda c: c["experiments"]["table2"]["benchmarks"].append("mathh"), None,
        ("config error at 'experiments.table2.benchmarks[2]'", "unknown name 'mathh'")),
    "k-max-out-of-range": (
        lambda c: c["fusion"]["variants"]["tf"].__setitem__("k_max", 65),
        ["fusion", "variants", "tf", "k_max"], ("65 is greater than the maximum of 64",)),
    "k-max-negative": (
        lambda c: c["fusion"]["variants"]["rft"].__setitem__("k_max", -1),
        ["fusion", "variants", "rft", "k_max"], ("-1 is less than the minimum of 0",)),
    "alpha-out-of-range": (
        lambda c: c["fusion"]["variants"]["tf"].__setitem__("alpha", -0.5),
        ["fusion", "variants", "tf", "alpha"], ("-0.5 is less than or equal to the minimum of 0",)),
    "k-out-of-range": (
        lambda c: c["sampling"].__setitem__("k", 0), ["sampling", "k"], ("0 is less than the minimum of 1",)),
    "k-wrong-type": (
        lambda c: c["sampling"].__setitem__("k", "16"), ["sampling", "k"], ("'16' is not of type 'integer'",)),
    "filter-setting-unknown": (
        lambda c: c["verify"].__setitem__("filters", {"ngram": 3}), ["verify", "filters"],
        ("Additional properties are not allowed ('ngram' was unexpected)",)),
    "filter-share-out-of-range": (
        lambda c: c["verify"].__setitem__("filters", {"ngram_repeat_share": 1.5}),
        ["verify", "filters", "ngram_repeat_share"], ("1.5 is greater than the maximum of 1",)),
}
# Each dry run costs seconds of Snakemake start-up: the schema cases run through the schema
# in-process, and a few representative cases (both kinds) through `snakemake -n`.
DRY_RUN_CASES = ("teacher-model-does-not-exist", "variant-does-not-exist", "dataset-does-not-exist",
                 "benchmark-does-not-exist", "alpha-out-of-range")


def schema_error(config: dict):
    import jsonschema

    schema = yaml.safe_load((REPO / "config/schema.yaml").read_text())
    return jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))


@pytest.fixture(scope="module")
def config_dry_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("config-errors")
    configs = {name: embedded_config(CONFIG_CASES[name][0]) for name in DRY_RUN_CASES}
    return root, dry_runs(configs, root)


def test_the_embedded_default_passes_the_schema():
    assert schema_error(embedded_config(lambda c: None)) is None


def test_schema_filter_settings_match_the_filters_module():
    from trajfusion.verify.filters import DEFAULT_FILTERS

    schema = yaml.safe_load((REPO / "config/schema.yaml").read_text())
    assert set(schema["properties"]["verify"]["properties"]["filters"]["properties"]) == set(DEFAULT_FILTERS)


@pytest.mark.parametrize("name", [n for n, case in CONFIG_CASES.items() if case[1] is not None])
def test_schema_rejects_the_bad_value_at_its_key(name):
    mutate, key, fragments = CONFIG_CASES[name]
    error = schema_error(embedded_config(mutate))
    assert error is not None and list(error.absolute_path) == key
    for fragment in fragments:
        assert fragment in error.message


@pytest.mark.parametrize("name", DRY_RUN_CASES)
def test_bad_config_fails_before_any_job_naming_the_key(config_dry_runs, name):
    root, results = config_dry_runs
    result = results[name]
    output = result.stdout + result.stderr
    _, key, fragments = CONFIG_CASES[name]
    assert result.returncode != 0, output[-3000:]
    where = "instance" + "".join(f"[{part!r}]" for part in key) if key else ""
    for fragment in (*fragments, where):
        assert fragment in output, f"{fragment!r} not in:\n{output[-3000:]}"
    assert "Job stats" not in output and "Traceback" not in output, output[-3000:]
    assert not (root / name / "results").exists()
