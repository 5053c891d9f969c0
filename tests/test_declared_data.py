"""Datasets declared in the config: every file format, the three answer rules, row-number
ids, Hub datasets from the shared cache, and one-line errors for bad files and mappings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.test_model import hub_cache_with
from trajfusion.data.declared import load_declared
from trajfusion.data.pools import build_pool
from trajfusion.io import InputError, sha256_file

ROWS = [{"q": "What is 1+1?", "a": "The sum is \\boxed{2}.\n#### 2", "k": "x1"},
        {"q": "What is 2+3?", "a": "So \\boxed{5}\n#### 5", "k": "x2"}]
COLUMNS = {"problem": "q", "answer": "a", "id": "k"}


def write(path, rows=ROWS):
    frame = pd.DataFrame(rows)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows))
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
@pytest.mark.parametrize("rule, golds", [("boxed", ["2", "5"]), ("gsm8k", ["2", "5"]),
                                         ("raw", [ROWS[0]["a"], ROWS[1]["a"]])])
def test_every_format_and_answer_rule(tmp_path, suffix, rule, golds):
    path = write(tmp_path / f"mine{suffix}")
    table, fingerprint = load_declared("mine", {"path": str(path), "columns": COLUMNS, "answer_rule": rule})
    assert list(table["problem_id"]) == ["mine/x1", "mine/x2"]
    assert list(table["answer"]) == [g.strip() for g in golds]
    assert list(table["problem"]) == [r["q"] for r in ROWS] and set(table["source"]) == {"mine"}
    assert fingerprint == {"path": str(path), "sha256": sha256_file(path)}


def test_without_an_id_column_ids_are_row_numbers(tmp_path):
    rows = [{"q": f"What is {i}?", "a": str(i)} for i in range(11)]
    table, _ = load_declared("n", {"path": str(write(tmp_path / "n.jsonl", rows)),
                                   "columns": {"problem": "q", "answer": "a"}})
    assert list(table["problem_id"])[:3] == ["n/00", "n/01", "n/02"] and len(table) == 11


def test_csv_cells_stay_as_written(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("q,a\nWhat is 7?,007\nHalf?,1/2\n")
    table, _ = load_declared("t", {"path": str(path), "columns": {"problem": "q", "answer": "a"}})
    assert list(table["answer"]) == ["007", "1/2"]


@pytest.mark.parametrize("rows, columns, rule, message", [
    ([{"q": "x", "b": "1"}], {"problem": "q", "answer": "a"}, "raw", r"record 1: missing field 'a'"),
    ([{"q": "x", "a": ""}], {"problem": "q", "answer": "a"}, "raw", r"record 1: no gold answer in field 'a'"),
    ([{"q": "x", "a": "no box"}], {"problem": "q", "answer": "a"}, "boxed",
     r"record 1: no gold answer in field 'a' by answer_rule boxed \(expected a \\boxed"),
    ([{"q": "x", "a": "7"}], {"problem": "q", "answer": "a"}, "gsm8k",
     r"record 1: no gold answer in field 'a' by answer_rule gsm8k \(expected a last line '#### <answer>'\)"),
    ([{"q": "", "a": "1"}], {"problem": "q", "answer": "a"}, "raw", r"record 1: empty field 'q'"),
    ([{"q": "x", "a": "1", "k": "d"}, {"q": "y", "a": "2", "k": "d"}], COLUMNS, "raw",
     r"record 2 \(problem_id=.mine/d.\): duplicate key \(problem_id\), also record 1"),
    ([{"q": "x", "a": "1", "k": "a/b"}], COLUMNS, "raw", r"record 1: field 'k' must be an id without '/'"),
])
def test_bad_rows_are_one_line_errors_naming_file_record_and_field(tmp_path, rows, columns, rule, message):
    path = write(tmp_path / "mine.jsonl", rows)
    with pytest.raises(InputError, match=message) as caught:
        load_declared("mine", {"path": str(path), "columns": columns, "answer_rule": rule})
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_bad_files_and_specs(tmp_path):
    with pytest.raises(InputError, match=r"mine.txt: unsupported file type '.txt'"):
        load_declared("mine", {"path": str(tmp_path / "mine.txt"), "columns": COLUMNS})
    with pytest.raises(InputError, match=r"none.jsonl: file not found"):
        load_declared("mine", {"path": str(tmp_path / "none.jsonl"), "columns": COLUMNS})
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(InputError, match=r"empty.jsonl: no records"):
        load_declared("mine", {"path": str(tmp_path / "empty.jsonl"), "columns": COLUMNS})
    with pytest.raises(InputError, match=r"dataset 'mine': 'columns' must map 'problem' and 'answer'"):
        load_declared("mine", {"path": str(tmp_path / "x.jsonl"), "columns": {"problem": "q"}})
    with pytest.raises(InputError, match=r"dataset 'mine': give exactly one of 'path'"):
        load_declared("mine", {"path": "x.jsonl", "hub": "a/b", "split": "train", "columns": COLUMNS})


def test_hub_dataset_from_the_shared_cache_offline(tmp_path):
    """A Hub dataset repository (train and test files) in the Hugging Face cache, loaded by
    the real huggingface_hub and datasets libraries with the network off."""
    repo_files = tmp_path / "repo"
    repo_files.mkdir()
    write(repo_files / "train.jsonl")
    write(repo_files / "test.jsonl", [{"q": "What is 9?", "a": "\\boxed{9}", "k": "t1"}])
    cache, commit = tmp_path / "hub", "c0ffee" + "0" * 34
    hub_cache_with(repo_files, cache, "someorg/my-math", commit, repo_type="dataset")
    spec = {"hub": "someorg/my-math", "split": "test", "columns": COLUMNS, "answer_rule": "boxed"}
    out = tmp_path / "bench.parquet"
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(tmp_path / "datasets-cache")}
    result = subprocess.run([sys.executable, "-m", "trajfusion.cli", "prepare-benchmark", "--name", "mine",
                             "--data-dir", str(tmp_path), "--settings", json.dumps({"dataset": spec}),
                             "--output", str(out)], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_parquet(out)
    assert list(table["problem_id"]) == ["mine/t1"] and list(table["answer"]) == ["9"]
    import pyarrow.parquet as pq

    metadata = json.loads(pq.read_schema(out).metadata[b"trajfusion"])
    assert metadata["dataset"] == {"hub": "someorg/my-math", "subset": None, "split": "test", "revision": "main",
                                   "commit": commit}

    missing = subprocess.run([sys.executable, "-m", "trajfusion.cli", "prepare-benchmark", "--name", "mine",
                              "--data-dir", str(tmp_path), "--output", str(tmp_path / "m.parquet"), "--settings",
                              json.dumps({"dataset": {**spec, "hub": "someorg/absent"}})],
                             capture_output=True, text=True, timeout=300, env=env)
    assert missing.returncode != 0
    assert "dataset 'mine': cannot load 'someorg/absent' (subset None, split test, revision main)" in missing.stderr


# --- DeepScaleR-Preview (config/paper.yaml's TAPO pool source) -----------------------------

REPO = Path(__file__).resolve().parents[1]
DEEPSCALER_FIXTURE = REPO / "tests" / "fixtures" / "deepscaler_sample.jsonl"
DEEPSCALER_GOLDS = ["10", "\\frac{1}{2}", "\\sqrt{2}", "(2, 3)", "103"]


def paper_deepscaler() -> tuple[dict, dict]:
    """The `deepscaler` dataset and pool as config/paper.yaml declares them."""
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    return paper["datasets"]["deepscaler"], paper["pools"]["deepscaler"]


def test_paper_deepscaler_spec_on_a_local_file_of_the_same_shape(tmp_path):
    """The paper's columns and answer rule, with a 5-row file of DeepScaleR's shape (problem,
    answer, solution) in place of the Hub: gold is the answer column as written, ids are row
    numbers, and the pool path drops the row that repeats an HMMT25 problem."""
    spec, pool = paper_deepscaler()
    assert (spec["hub"], spec["split"]) == ("agentica-org/DeepScaleR-Preview-Dataset", "train")
    local = {key: value for key, value in spec.items() if key not in ("hub", "split")}
    table, fingerprint = load_declared("deepscaler", {**local, "path": str(DEEPSCALER_FIXTURE)})
    assert list(table["problem_id"]) == [f"deepscaler/{i}" for i in range(5)]
    assert list(table["answer"]) == DEEPSCALER_GOLDS
    assert list(table["answer_type"]) == ["integer", "latex", "latex", "latex", "integer"]
    assert fingerprint["sha256"] == sha256_file(DEEPSCALER_FIXTURE)
    built, report = build_pool({**pool, "decontaminate_against": ["hmmt25"]}, REPO / "data", 0,
                               datasets={"deepscaler": {**local, "path": str(DEEPSCALER_FIXTURE)}})
    assert list(built["problem_id"]) == [f"deepscaler/{i}" for i in range(4)]
    assert json.dumps(report).count("hmmt25/01") == 1


def test_paper_deepscaler_spec_from_the_hub_cache_offline(tmp_path):
    """The paper's spec unchanged (Hub id, split train) against a Hub dataset repository in
    the shared cache holding the same 5 rows, through `trajfusion build-pool`."""
    spec, pool = paper_deepscaler()
    repo_files = tmp_path / "repo"
    repo_files.mkdir()
    (repo_files / "deepscaler.jsonl").write_bytes(DEEPSCALER_FIXTURE.read_bytes())
    cache, commit = tmp_path / "hub", "b6ae8c6" + "0" * 33
    hub_cache_with(repo_files, cache, spec["hub"], commit, repo_type="dataset")
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(tmp_path / "datasets-cache")}
    out = tmp_path / "pool.parquet"
    settings = {"spec": {**pool, "decontaminate_against": []}, "seed": 0, "datasets": {"deepscaler": spec}}
    result = subprocess.run([sys.executable, "-m", "trajfusion.cli", "build-pool", "--data-dir", str(REPO / "data"),
                             "--settings", json.dumps(settings), "--output", str(out),
                             "--report", str(tmp_path / "report.json")],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_parquet(out)
    assert list(table["problem_id"]) == [f"deepscaler/{i}" for i in range(5)]
    assert list(table["answer"]) == DEEPSCALER_GOLDS
    assert (table["source"] == "deepscaler").all()
