"""Table contracts: the real stage outputs pass, each kind of violation gives its one-line error,
writing through a contract keeps the bytes, and docs/architecture.md shows the contracts."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trajfusion import contracts
from trajfusion.contracts import (
    FUSED_EXAMPLE,
    MANIFEST_SCHEMA,
    MERGED_SAMPLES,
    PROBLEMS,
    SAMPLE_SHARD,
    STATISTICS,
    VERDICTS,
    VERIFIED,
    check_document,
    check_records,
    read,
    write,
    write_records,
)
from trajfusion.data import benchmark_table, build_pool
from trajfusion.data.settings import BenchmarkSettings
from trajfusion.evaluate import judge
from trajfusion.fuse import FuseSettings, fuse_frame
from trajfusion.io import InputError, write_jsonl, write_parquet
from trajfusion.sample.backends import Completion
from trajfusion.sample.cli import run_merge
from trajfusion.sample.shards import shard_frame
from trajfusion.verify import compute_stats, verify_frame

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "data"
K = 5


def _completions(gold: str) -> list[Completion]:
    return [Completion(f"Adding up, \\boxed{{{gold}}}", 7, "stop"), Completion("So \\boxed{7}", 4, "stop"),
            Completion("So \\boxed{8}", 5, "stop"), Completion("I give up.", 3, "stop"),
            Completion("So \\boxed{9} and", 9, "length")]


@pytest.fixture(scope="module")
def stage_tables(tmp_path_factory) -> dict:
    """Every table of the sampling/verification/fusion chain, built by the stage code."""
    root = tmp_path_factory.mktemp("contracts")
    pool, _ = build_pool({"sources": [{"name": "synthetic_arith", "options": {"n": 4}}],
                          "decontaminate_against": []}, DATA_DIR, seed=0)
    write_parquet(pool, root / "pool.parquet")
    shard = shard_frame(pool["problem_id"].tolist(), [_completions(g) for g in pool["answer"]], "tiny", 11)
    write_parquet(shard, root / "shard-0.parquet")
    run_merge(argparse.Namespace(pool=str(root / "pool.parquet"), inputs=[str(root / "shard-0.parquet")], k=K,
                                 output=str(root / "merged.parquet")))
    merged = pd.read_parquet(root / "merged.parquet")
    verified = verify_frame(merged, workers=0)
    rows, _ = fuse_frame(verified, FuseSettings(k_max=2, alpha="1", seed=3))
    samples = merged[["problem_id", "sample_idx", "response", "n_tokens", "finish_reason", "gold", "answer_type"]]
    return {"root": root, "pool": pool, "shard": shard, "merged": merged, "verified": verified,
            "stats": compute_stats(verified), "fused": rows, "verdicts": judge(samples, ("Wait",), 0, 5.0)}


def _error(call) -> str:
    with pytest.raises(InputError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------ real outputs


def test_the_chain_of_stage_tables_passes_exactly(stage_tables):
    for contract, name in ((PROBLEMS, "pool"), (SAMPLE_SHARD, "shard"), (MERGED_SAMPLES, "merged"),
                           (VERIFIED, "verified"), (STATISTICS, "stats"), (VERDICTS, "verdicts")):
        frame = stage_tables[name]
        assert contract.check(frame, name, exact=True) is frame
        assert list(frame.columns)[:len(contract.names)] == contract.names
    assert stage_tables["stats"]["n_incorrect"].gt(0).all()  # the json column holds real groups
    assert len(list(check_records(stage_tables["fused"], FUSED_EXAMPLE, "fused"))) == 4


@pytest.mark.parametrize("name", ["college_math", "olympiadbench", "theoremqa", "aime24"])
def test_benchmarks_pass_with_their_extra_columns(name):
    table, _ = benchmark_table(name, DATA_DIR, BenchmarkSettings(limit=20, seed=0))
    PROBLEMS.check(table, name, exact=True)


def test_empty_shard_and_stats_without_source_pass(stage_tables):
    SAMPLE_SHARD.check(shard_frame([], [], "tiny", 1), "empty shard", exact=True)
    no_source = compute_stats(stage_tables["verified"].drop(columns="source"))
    assert no_source["source"].dtype == object
    STATISTICS.check(no_source, "stats", exact=True)


def test_writing_through_a_contract_keeps_the_bytes(stage_tables, tmp_path):
    meta = {"config_hash": "0123456789abcdef"}
    for contract, name in ((PROBLEMS, "pool"), (SAMPLE_SHARD, "shard"), (MERGED_SAMPLES, "merged"),
                           (VERIFIED, "verified"), (STATISTICS, "stats"), (VERDICTS, "verdicts")):
        write_parquet(stage_tables[name], tmp_path / f"{name}-direct.parquet", metadata=meta)
        write(stage_tables[name], tmp_path / f"{name}.parquet", contract, metadata=meta)
        assert (tmp_path / f"{name}.parquet").read_bytes() == (tmp_path / f"{name}-direct.parquet").read_bytes()
        read(tmp_path / f"{name}.parquet", contract)
    write_jsonl(stage_tables["fused"], tmp_path / "direct.jsonl")
    assert write_records(iter(stage_tables["fused"]), tmp_path / "fused.jsonl", FUSED_EXAMPLE) == 4
    assert (tmp_path / "fused.jsonl").read_bytes() == (tmp_path / "direct.jsonl").read_bytes()
    assert read(tmp_path / "fused.jsonl", FUSED_EXAMPLE)["n_errors"].tolist() == \
        [row["n_errors"] for row in stage_tables["fused"]]


def test_write_puts_contract_columns_first(stage_tables, tmp_path):
    shuffled = stage_tables["verified"].assign(extra=1)[["extra", *reversed(VERIFIED.names)]]
    write(shuffled, tmp_path / "v.parquet", VERIFIED)
    assert list(pd.read_parquet(tmp_path / "v.parquet").columns) == [*VERIFIED.names, "extra"]


def test_write_of_a_partial_table_checks_the_columns_it_has(stage_tables, tmp_path):
    """``verify`` of bare samples: a verified table with only some of the contract's columns."""
    bare = stage_tables["verified"][["problem_id", "sample_idx", "gold", "response", *VERIFIED.names[-4:]]]
    present = [name for name in VERIFIED.names if name in bare.columns]
    write(bare, tmp_path / "v.parquet", VERIFIED, columns=present)
    write_parquet(bare, tmp_path / "direct.parquet")
    assert (tmp_path / "v.parquet").read_bytes() == (tmp_path / "direct.parquet").read_bytes()
    assert "missing required column(s) ['problem'" in _error(lambda: write(bare, tmp_path / "w.parquet", VERIFIED))
    wrong = bare.assign(status=bare["status"].where(bare.index != 2, "maybe"))
    assert _error(lambda: write(wrong, tmp_path / "w.parquet", VERIFIED, columns=present)).endswith(
        "record 3 (problem_id='synthetic_arith/00000', sample_idx=2): field 'status' must be one of "
        f"{list(contracts.STATUSES)}, got 'maybe'")
    assert not (tmp_path / "w.parquet").exists()


def test_read_checks_only_the_columns_a_reader_uses(stage_tables):
    path = stage_tables["root"] / "merged.parquet"
    frame = read(path, MERGED_SAMPLES, columns=["problem_id", "sample_idx", "n_tokens"])
    assert list(frame.columns) == ["problem_id", "sample_idx", "n_tokens"]
    assert "missing required column(s) ['answer']" in _error(lambda: read(path, VERIFIED, columns=["answer"]))


def test_jsonl_tables_are_read_by_value(stage_tables, tmp_path):
    """A hand-made JSONL table may hold 3.0 for 3 and an object column of strings and
    nulls; the values decide."""
    rows = stage_tables["verified"].astype(object).where(stage_tables["verified"].notna(), None)
    rows["n_tokens"] = rows["n_tokens"].astype(float)
    write_jsonl(rows.to_dict("records"), tmp_path / "v.jsonl")
    frame = read(tmp_path / "v.jsonl", VERIFIED)
    assert frame["n_tokens"].dtype == "float64"
    objects = frame.astype({"answer": object, "correct": object})
    VERIFIED.check(objects, "v.jsonl")
    typed = VERIFIED.conform(objects)
    VERIFIED.check(typed, "v.jsonl", exact=True)
    assert typed["n_tokens"].tolist() == stage_tables["verified"]["n_tokens"].tolist()
    assert VERIFIED.conform(stage_tables["verified"]) is stage_tables["verified"]


# -------------------------------------------------------------------------- violations


def test_missing_and_unexpected_columns(stage_tables):
    shard = stage_tables["shard"]
    assert _error(lambda: SAMPLE_SHARD.check(shard.drop(columns="seed"), "s.parquet")) == (
        f"s.parquet: missing required column(s) ['seed']; has {SAMPLE_SHARD.names[:-1]}")
    assert _error(lambda: SAMPLE_SHARD.check(shard.assign(note="x"), "s.parquet")) == (
        f"s.parquet: unexpected column(s) ['note']; the sample shard has only {SAMPLE_SHARD.names}")


def test_wrong_types_name_record_key_and_field(stage_tables):
    shard = stage_tables["shard"]
    bad = shard.astype({"sample_idx": object})
    bad.loc[6, "sample_idx"] = "two"
    assert _error(lambda: SAMPLE_SHARD.check(bad, "s.parquet")) == (
        "s.parquet: record 7 (problem_id='synthetic_arith/00001', sample_idx='two'): "
        "field 'sample_idx' must be an integer, got 'two'")
    fractional = shard.astype({"n_tokens": "float64"})
    fractional.loc[2, "n_tokens"] = 2.5
    assert _error(lambda: SAMPLE_SHARD.check(fractional, "s.parquet")).endswith(
        "record 3 (problem_id='synthetic_arith/00000', sample_idx=2): field 'n_tokens' must be an integer, got 2.5")
    verdicts = stage_tables["verdicts"].astype({"correct": object})
    verdicts.loc[0, "correct"] = "yes"
    assert _error(lambda: VERDICTS.check(verdicts, "v.parquet")).endswith(
        "field 'correct' must be true or false, got 'yes'")
    numbers = stage_tables["merged"].assign(gold=1)
    assert _error(lambda: MERGED_SAMPLES.check(numbers, "m.parquet")).endswith("field 'gold' must be a string, got 1")


def test_exact_dtypes_on_write(stage_tables, tmp_path):
    floats = stage_tables["shard"].astype({"n_tokens": "float64"})
    SAMPLE_SHARD.check(floats, "s.parquet")  # integral values: a reader accepts them
    assert _error(lambda: write(floats, tmp_path / "s.parquet", SAMPLE_SHARD)) == (
        f"{tmp_path / 's.parquet'}: column 'n_tokens' has dtype float64, the contract says int64")
    assert not (tmp_path / "s.parquet").exists()


def test_null_where_not_nullable(stage_tables):
    merged = stage_tables["merged"].copy()
    merged.loc[3, "response"] = None
    assert _error(lambda: MERGED_SAMPLES.check(merged, "m.parquet")) == (
        "m.parquet: record 4 (problem_id='synthetic_arith/00000', sample_idx=3): field 'response' is null")


def test_values_outside_the_allowed_set_pattern_and_bounds(stage_tables):
    shard = stage_tables["shard"].copy()
    shard.loc[4, "finish_reason"] = "abort"
    assert _error(lambda: SAMPLE_SHARD.check(shard, "s.parquet")).endswith(
        "record 5 (problem_id='synthetic_arith/00000', sample_idx=4): field 'finish_reason' must be one of "
        "['stop', 'length'], got 'abort'")
    stats = stage_tables["stats"].copy()
    stats.loc[1, "error_rate"] = 1.5
    assert _error(lambda: STATISTICS.check(stats, "st.parquet")) == (
        "st.parquet: record 2 (problem_id='synthetic_arith/00001'): field 'error_rate' must be <= 1, got 1.5")
    blank = stage_tables["pool"].copy()
    blank.loc[2, "problem"] = "  \n"
    assert _error(lambda: PROBLEMS.check(blank, "pool.parquet")).endswith(
        "record 3 (problem_id='synthetic_arith/00002'): field 'problem' must not be blank, got '  \\n'")


def test_json_column_is_parsed_and_checked(stage_tables):
    stats = stage_tables["stats"].copy()
    stats.loc[0, "answer_groups"] = '[{"answer": "7"}]'
    assert _error(lambda: STATISTICS.check(stats, "st.parquet")) == (
        "st.parquet: record 1 (problem_id='synthetic_arith/00000'): field 'answer_groups' JSON [0]: "
        "'size' is a required property")
    stats.loc[0, "answer_groups"] = "[{"
    assert "field 'answer_groups' is not JSON" in _error(lambda: STATISTICS.check(stats, "st.parquet"))


def test_duplicate_key_names_both_records(stage_tables):
    verified = stage_tables["verified"].copy()
    verified.loc[7, "sample_idx"] = 1
    assert _error(lambda: VERIFIED.check(verified, "v.parquet")) == (
        "v.parquet: record 8 (problem_id='synthetic_arith/00001', sample_idx=1): "
        "duplicate key (problem_id, sample_idx), also record 7")


def test_empty_tables(stage_tables):
    assert _error(lambda: MERGED_SAMPLES.check(stage_tables["merged"].iloc[:0], "m.parquet")) == (
        "m.parquet: the table has no rows")
    assert _error(lambda: list(check_records([], FUSED_EXAMPLE, "f.jsonl"))) == "f.jsonl: the table has no rows"


def test_rules_across_columns(stage_tables):
    verified = stage_tables["verified"].copy()
    verified.loc[4, "correct"] = True  # a truncated response
    assert _error(lambda: VERIFIED.check(verified, "v.parquet")) == (
        "v.parquet: record 5 (problem_id='synthetic_arith/00000', sample_idx=4): field 'correct' breaks rule "
        "'correct-only-if-ok': `correct` is true only when `status` is `ok`")
    verified = stage_tables["verified"].copy()
    verified.loc[1, "answer_group"] = None
    assert "breaks rule 'incorrect-has-group'" in _error(lambda: VERIFIED.check(verified, "v.parquet"))
    stats = stage_tables["stats"].copy()
    stats.loc[3, "n_correct"] = 0
    assert "record 4 (problem_id='synthetic_arith/00003'): field 'n_incorrect' breaks rule 'counts-add-up'" in \
        _error(lambda: STATISTICS.check(stats, "st.parquet"))


def test_fused_records(stage_tables, tmp_path):
    rows = stage_tables["fused"]
    role = json.loads(json.dumps(rows))
    role[1]["messages"][1]["role"] = "bot"
    assert _error(lambda: list(check_records(role, FUSED_EXAMPLE, "f.jsonl"))) == (
        "f.jsonl: record 2 (problem_id='synthetic_arith/00001'): field 'messages[1].role' "
        "'assistant' was expected")
    assert _error(lambda: list(check_records([rows[0], rows[1], rows[0]], FUSED_EXAMPLE, "f.jsonl"))) == (
        "f.jsonl: record 3 (problem_id='synthetic_arith/00000'): duplicate key (problem_id), also record 1")
    miscounted = json.loads(json.dumps(rows))
    miscounted[2]["n_errors"] += 1
    assert _error(lambda: write_records(miscounted, tmp_path / "f.jsonl", FUSED_EXAMPLE)) == (
        f"{tmp_path / 'f.jsonl'}: record 3 (problem_id='synthetic_arith/00002'): field 'n_errors' breaks rule "
        "'errors-listed': `n_errors` equals the length of `error_indices`")
    assert not (tmp_path / "f.jsonl").exists()


def _manifest() -> dict:
    """A manifest shaped like rules/report.smk's report_manifest() plus provenance."""
    run = {"backbone": "tiny", "teacher": "tiny", "pool": "toy", "profile": "embedded", "variant": "tf"}
    return {"evals": [{**run, "experiment": "main", "tables": ["table1", "figure3"], "method": "trajfusion",
                       "variant_label": "TrajFusion", "backbone_label": "Tiny", "data_size": "toy", "context": "",
                       "checkpoint": "ckpt-2", "samples_seen": 8, "benchmark": "math",
                       "path": "results/eval/main/tiny/tf/ckpt-2/math.parquet"}],
            "fusion_summaries": [{"teacher": "tiny", "pool": "toy", "variant": "tf", "variant_label": "TrajFusion",
                                  "k_max": 4, "strategy": "highdiv", "path": "results/fused/tiny/toy/tf.summary.json"}],
            "stats": [{"teacher": "tiny", "pool": "toy", "path": "results/stats/tiny/toy.parquet"}],
            "smoke_test": True, "provenance": {"config_hash": "0123456789abcdef", "git_commit": None}}


def test_report_manifest():
    manifest = _manifest()
    assert check_document(manifest, MANIFEST_SCHEMA, "manifest.json") is manifest
    manifest["evals"][0]["checkpoint"] = "last"
    assert _error(lambda: check_document(manifest, MANIFEST_SCHEMA, "manifest.json")) == (
        "manifest.json: evals[0].checkpoint: 'last' does not match '^(final|ckpt-[0-9]+)$'")


# ------------------------------------------------------------------ stages and docs agree


def test_the_problem_contract_allows_exactly_the_answer_types():
    # Every stage takes its columns and value sets from the contracts; this one is stated twice inside them.
    assert PROBLEMS.column("answer_type").values == contracts.ANSWER_TYPES


def test_architecture_doc_shows_the_generated_tables_section():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert contracts.replace_doc_section(text, contracts.markdown()) == text, \
        "docs/architecture.md is stale: run python -m trajfusion.contracts --update-doc docs/architecture.md"


def test_markdown_command(capsys, tmp_path):
    assert contracts.main(["--markdown"]) == 0
    assert capsys.readouterr().out == contracts.markdown()
    doc = tmp_path / "doc.md"
    doc.write_text(f"# T\n\n{contracts.DOC_BEGIN}\nold\n{contracts.DOC_END}\n\nafter\n", encoding="utf-8")
    assert contracts.main(["--update-doc", str(doc)]) == 0
    assert doc.read_text(encoding="utf-8") == (
        f"# T\n\n{contracts.DOC_BEGIN}\n\n{contracts.markdown()}\n{contracts.DOC_END}\n\nafter\n")
    assert np.all([c.description for contract in contracts.TABLES for c in contract.columns])


def test_every_problem_has_samples_0_to_n_minus_1(stage_tables):
    verdicts = stage_tables["verdicts"]
    missing_one = verdicts.drop(index=7)
    assert _error(lambda: VERDICTS.check(missing_one, "v.parquet")) == (
        "v.parquet: record 6 (problem_id='synthetic_arith/00001', sample_idx=0): field 'sample_idx' breaks rule "
        "'samples-0-to-n-1': every problem has samples 0..N-1, with the same N for all problems")
    shifted = stage_tables["shard"].assign(sample_idx=stage_tables["shard"]["sample_idx"] + 1)
    assert "breaks rule 'samples-0-to-n-1'" in _error(lambda: SAMPLE_SHARD.check(shifted, "s.parquet"))


def test_one_gold_per_problem_and_one_teacher(stage_tables):
    merged = stage_tables["merged"].copy()
    merged.loc[8, "gold"] = "-1"
    assert _error(lambda: MERGED_SAMPLES.check(merged, "m.parquet")) == (
        "m.parquet: record 9 (problem_id='synthetic_arith/00001', sample_idx=3): field 'gold' breaks rule "
        "'one-gold-per-problem': all rows of a problem have the same `gold`")
    shard = stage_tables["shard"].copy()
    shard.loc[11, "teacher"] = "other"
    assert "record 12 (problem_id='synthetic_arith/00002', sample_idx=1): field 'teacher' breaks rule " \
        "'one-teacher'" in _error(lambda: SAMPLE_SHARD.check(shard, "s.parquet"))


def test_record_numbers_of_the_raw_file(stage_tables):
    """A frame built from raw records names them, e.g. a problem table before sorting."""
    pool = stage_tables["pool"].copy()
    pool.loc[3, "problem_id"] = pool.loc[1, "problem_id"]
    assert _error(lambda: PROBLEMS.check(pool, "raw.jsonl", columns=["problem_id"],
                                         record_numbers=[10, 20, 30, 40])) == (
        "raw.jsonl: record 40 (problem_id='synthetic_arith/00001'): duplicate key (problem_id), also record 20")
