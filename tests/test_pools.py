"""Training pools: selection, seeding, decontamination, the 15K pool and the build-pool CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import make_data_dir
from trajfusion.contracts import PROBLEMS
from trajfusion.data import build_pool, load_source, register
from trajfusion.data.registry import BENCHMARKS
from trajfusion.io import InputError, read_parquet_metadata

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
NO_DECONTAMINATION: list[str] = []


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="trajfusion")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_15k_pool_counts_and_decontamination():
    spec = {"sources": [{"name": "gsm8k_train"}, {"name": "math_train"}, {"name": "aime_1983_2023"}]}
    pool, report = build_pool(spec, DATA_DIR, seed=0)
    counts = {name: (c["loaded"], c["removed_contaminated"], c["selected"]) for name, c in report["sources"].items()}
    assert counts == {"gsm8k_train": (7473, 0, 7473), "math_train": (7498, 1, 7497),
                      "aime_1983_2023": (919, 3, 916)}
    assert len(pool) == report["size"] == report["union_size"] == 15886
    assert report["removed_contaminated"] == 4
    removed = {r["problem_id"]: r["benchmark_problem_id"] for c in report["sources"].values() for r in c["removed"]}
    assert removed["math_train/geometry/6032.json"] == "math/4656"
    assert set(removed) == {"math_train/geometry/6032.json", "aime_1983_2023/2008-II-3",
                            "aime_1983_2023/2010-II-6", "aime_1983_2023/2017-II-7"}
    assert not set(removed) & set(pool["problem_id"])
    assert tuple(report["decontaminated_against"]) == BENCHMARKS  # every bundled benchmark by default
    assert list(pool.columns) == PROBLEMS.names
    assert pool["problem_id"].is_unique and pool["problem_id"].is_monotonic_increasing


def test_planted_benchmark_duplicate_is_removed(tmp_path):
    train_lines = (DATA_DIR / "train" / "gsm8k_train.jsonl").read_bytes().splitlines(keepends=True)[:20]
    test_bytes = (DATA_DIR / "eval" / "gsm8k_test.jsonl").read_bytes()
    benchmark_question = json.loads(test_bytes.splitlines()[5])["question"]
    planted = {"question": "  " + benchmark_question.upper().replace(" ", "\n  ") + " ",
               "answer": "Copied.\n#### 7"}
    train_lines.insert(8, (json.dumps(planted) + "\n").encode())
    data_dir = make_data_dir(tmp_path, {"train/gsm8k_train.jsonl": b"".join(train_lines),
                                        "eval/gsm8k_test.jsonl": test_bytes})
    spec = {"sources": [{"name": "gsm8k_train"}], "decontaminate_against": ["gsm8k"]}
    pool, report = build_pool(spec, data_dir, seed=0)
    counts = report["sources"]["gsm8k_train"]
    assert (counts["loaded"], counts["removed_contaminated"], counts["after_decontamination"]) == (21, 1, 20)
    assert counts["removed"] == [{"problem_id": "gsm8k_train/00008", "benchmark_problem_id": "gsm8k/0005"}]
    assert "gsm8k_train/00008" not in set(pool["problem_id"]) and len(pool) == 20

    kept, kept_report = build_pool({**spec, "decontaminate_against": NO_DECONTAMINATION}, data_dir, seed=0)
    assert len(kept) == 21 and kept_report["removed_contaminated"] == 0


def test_random_selection_is_seeded_per_source():
    entry = {"name": "gsm8k_train", "n": 50, "select": "random"}
    alone, _ = build_pool({"sources": [entry], "decontaminate_against": NO_DECONTAMINATION}, DATA_DIR, seed=1)
    again, _ = build_pool({"sources": [entry], "decontaminate_against": NO_DECONTAMINATION}, DATA_DIR, seed=1)
    mixed, _ = build_pool({"sources": [{"name": "synthetic_arith", "options": {"n": 30}}, entry],
                           "decontaminate_against": NO_DECONTAMINATION}, DATA_DIR, seed=1)
    other, _ = build_pool({"sources": [entry], "decontaminate_against": NO_DECONTAMINATION}, DATA_DIR, seed=2)
    assert len(alone) == 50 and alone.equals(again)
    assert mixed[mixed["source"] == "gsm8k_train"].reset_index(drop=True).equals(alone)
    assert set(alone["problem_id"]) != set(other["problem_id"])
    assert set(alone["problem_id"]) <= set(load_source("gsm8k_train", DATA_DIR)["problem_id"])


def test_shortest_selection_takes_the_shortest_problems():
    spec = {"sources": [{"name": "gsm8k_train", "n": 16, "select": "shortest"}],
            "decontaminate_against": NO_DECONTAMINATION}
    pool, _ = build_pool(spec, DATA_DIR, seed=0)
    source = load_source("gsm8k_train", DATA_DIR)
    ranked = source.assign(length=source["problem"].str.len()).sort_values(["length", "problem_id"])
    assert set(pool["problem_id"]) == set(ranked["problem_id"].head(16))
    assert pool["problem"].str.len().max() <= ranked["length"].iloc[16]


def test_size_subsamples_the_union():
    spec = {"sources": [{"name": "aime_1983_2023"}, {"name": "synthetic_arith", "options": {"n": 100}}],
            "size": 300, "decontaminate_against": NO_DECONTAMINATION}
    pool, report = build_pool(spec, DATA_DIR, seed=4)
    assert len(pool) == 300 and report["union_size"] == 1019
    assert set(pool["source"]) == {"aime_1983_2023", "synthetic_arith"}
    assert pool.equals(build_pool(spec, DATA_DIR, seed=4)[0])
    assert not pool.equals(build_pool(spec, DATA_DIR, seed=5)[0])
    with pytest.raises(InputError, match="size=2000 exceeds the 1019 problems"):
        build_pool({**spec, "size": 2000}, DATA_DIR, seed=4)


@pytest.mark.parametrize("spec, message", [
    ({"sources": [{"name": "gsm8k"}]}, r"'name' must be a built-in source .* or a declared dataset"),
    ({"sources": [{"name": "gsm8k_train", "n": 5, "select": "all"}]}, "select 'all' cannot be combined"),
    ({"sources": [{"name": "gsm8k_train", "n": 0}]}, "must be a positive integer"),
    ({"sources": [{"name": "gsm8k_train", "weight": 2}]}, r"unknown key\(s\) \['weight'\]"),
    ({"sources": []}, "non-empty list"),
    ({"sources": [{"name": "aime_1983_2023"}], "decontaminate_against": ["gsm8k_train"]}, "decontaminate_against"),
    ({"sources": [{"name": "aime_1983_2023", "n": 5000, "select": "random"}], "decontaminate_against": []},
     "5000 problems requested but only 919"),
    ({"sources": [{"name": "aime_1983_2023", "options": {"bogus": 1}}]}, r"unknown option\(s\) \['bogus'\]"),
])
def test_bad_specs_are_input_errors(spec, message):
    with pytest.raises(InputError, match=message):
        build_pool(spec, DATA_DIR, seed=0)


def test_build_pool_cli_writes_identical_artifacts(tmp_path):
    spec = json.dumps({"sources": [{"name": "gsm8k_train", "n": 40, "select": "shortest"},
                                   {"name": "synthetic_arith", "options": {"n": 60, "seed": 2}}],
                       "decontaminate_against": ["gsm8k", "synthetic_arith_test"]})
    outputs = []
    for run in ("a", "b"):
        argv = ["build-pool", "--spec", spec, "--data-dir", str(DATA_DIR), "--seed", "7",
                "--output", str(tmp_path / run / "pool.parquet"), "--report", str(tmp_path / run / "report.json")]
        assert run_cli(argv) == 0
        outputs.append([(tmp_path / run / name).read_bytes() for name in ("pool.parquet", "report.json")])
    assert outputs[0] == outputs[1]
    pool = pd.read_parquet(tmp_path / "a" / "pool.parquet")
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert len(pool) == report["size"] == 100
    assert report["sources"]["synthetic_arith"]["selected"] == 60
    assert "config_hash" in read_parquet_metadata(tmp_path / "a" / "pool.parquet")
    assert not list(tmp_path.glob("**/*.tmp"))


def test_build_pool_cli_rejects_malformed_spec(tmp_path):
    with pytest.raises(InputError, match="--spec: malformed JSON"):
        run_cli(["build-pool", "--spec", "{sources: }", "--data-dir", str(DATA_DIR), "--seed", "0",
                 "--output", str(tmp_path / "p.parquet"), "--report", str(tmp_path / "r.json")])
    assert not (tmp_path / "p.parquet").exists()
