"""The dataset registry on the real bundled files: counts, gold answers, checksums, errors."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import make_data_dir
from trajfusion.contracts import PROBLEMS
from trajfusion.data import BENCHMARKS, SOURCES, load_source, register, synthetic
from trajfusion.data.answers import format_number, last_boxed, strip_dollar_wrapper
from trajfusion.data.synthetic import generate, is_test_text
from trajfusion.io import InputError, read_parquet_metadata

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Record counts from data/README.md (MANIFEST), after the documented filters.
EXPECTED_COUNTS = {
    "gsm8k_train": 7473, "math_train": 7498, "aime_1983_2023": 919, "synthetic_arith": 1000,
    "gsm8k": 1319, "math": 5000, "math500": 500, "college_math": 2818, "deepmind_math": 1000,
    "olympiadbench": 675, "theoremqa": 747, "aime24": 30, "aime25": 30, "hmmt25": 30,
    "synthetic_arith_test": 500,
}

# problem_id -> gold, each checked by hand against the raw file.
SPOT_CHECKS = {
    "gsm8k": {"gsm8k/0000": "18", "gsm8k/0001": "3", "gsm8k/0146": "2125", "gsm8k/0489": "-10"},
    "gsm8k_train": {"gsm8k_train/00000": "72", "gsm8k_train/00001": "10", "gsm8k_train/00644": "109200000"},
    "math_train": {"math_train/algebra/0.json": "0", "math_train/geometry/1143.json": "16\\pi",
                   "math_train/algebra/1397.json": "17", "math_train/algebra/24014.json": "2",
                   "math_train/number_theory/9.json": "50055"},
    "math": {"math/0000": "2", "math/4836": "\\frac{6}{7}", "math/0133": "\\frac{\\sqrt{3}}{3}",
             "math/0268": "\\frac{68}{3}\\text{ pounds}"},
    "math500": {"math500/precalculus/807.json": "\\left( 3, \\frac{\\pi}{2} \\right)",
                "math500/algebra/1004.json": "4", "math500/intermediate_algebra/1849.json": "501"},
    "aime_1983_2023": {"aime_1983_2023/1983-1": "60", "aime_1983_2023/1983-2": "15",
                       "aime_1983_2023/2023-II-1": "220", "aime_1983_2023/2022-II-8": "80"},
    "aime24": {"aime24/60": "204", "aime24/67": "25", "aime24/85": "80", "aime24/89": "902"},
    "aime25": {"aime25/00": "70", "aime25/01": "588", "aime25/29": "240"},
    "hmmt25": {"hmmt25/01": "103", "hmmt25/03": "\\frac{1}{576}", "hmmt25/04": "-984",
               "hmmt25/10": "\\frac{-1+\\sqrt{17}}{2}, \\frac{-1-\\sqrt{17}}{2}",
               "hmmt25/17": "2^{25} \\cdot 26!", "hmmt25/30": "\\sqrt{\\frac{95}{24}}"},
    "college_math": {"college_math/0000": "10-4 n", "college_math/0001": "(45,2),(-10,-9)",
                     "college_math/0005": "all real numbers", "college_math/1069": "$x=0$ or $x=2$"},
    "deepmind_math": {"deepmind_math/0000": "2", "deepmind_math/0001": "3", "deepmind_math/0087": "3, 5",
                      "deepmind_math/0292": "12, 3, 0", "deepmind_math/0090": "-20*x"},
    "olympiadbench": {"olympiadbench/1606": "2", "olympiadbench/1664": "69, 84",
                      "olympiadbench/2334": "\\frac{41}{12}", "olympiadbench/2592": "4.2"},
    "theoremqa": {"theoremqa/jianyu_xu/Lah_number_6.json": "11760", "theoremqa/mingyin/inversion-theorem1.json": "1",
                  "theoremqa/tonyxia/atom1.json": "0.00004", "theoremqa/maxku/cv-colorsci2-hsi.json": "(a)",
                  "theoremqa/maxku/graphtheory6-shortestpath.json": "[0, 5]",
                  "theoremqa/elainewan/math_real_analysis_additional_4.json": "1.5"},
}


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return {name: load_source(name, DATA_DIR) for name in EXPECTED_COUNTS}


def raw_lines(relative: str) -> list[bytes]:
    return (DATA_DIR / relative).read_bytes().splitlines(keepends=True)


def test_names_cover_every_loader():
    assert set(SOURCES) | set(BENCHMARKS) == set(EXPECTED_COUNTS) | {"deepmath_103k"}
    assert not set(SOURCES) & set(BENCHMARKS)


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_record_count_and_table_shape(tables, name):
    df = tables[name]
    assert len(df) == EXPECTED_COUNTS[name]
    assert list(df.columns[:len(PROBLEMS.names)]) == PROBLEMS.names
    assert df["problem_id"].is_unique and df["problem_id"].is_monotonic_increasing
    assert df["problem_id"].str.startswith(name + "/").all()
    assert (df["source"] == name).all()
    assert df["answer"].str.strip().str.len().gt(0).all()
    assert df["problem"].str.strip().str.len().gt(0).all()
    assert df["answer_type"].isin(["number", "integer", "latex", "bool", "list", "option", "text"]).all()
    assert str(df["year"].dtype) == "Int64"


@pytest.mark.parametrize("name", sorted(SPOT_CHECKS))
def test_gold_answers_match_raw_files(tables, name):
    answers = tables[name].set_index("problem_id")["answer"]
    for problem_id, gold in SPOT_CHECKS[name].items():
        assert answers[problem_id] == gold, problem_id


def test_math500_answer_field_equals_last_box_of_solution():
    records = [json.loads(line) for line in raw_lines("eval/math500_test.jsonl")]
    assert [last_boxed(r["solution"]) for r in records] == [r["answer"] for r in records]


def test_gsm8k_problem_text_and_metadata_come_from_the_record(tables):
    first = json.loads(raw_lines("eval/gsm8k_test.jsonl")[0])
    row = tables["gsm8k"].iloc[0]
    assert row["problem"] == first["question"] and row["answer_type"] == "integer"
    math_row = tables["math"].set_index("problem_id").loc["math/0000"]
    assert (math_row["level"], math_row["subject"]) == ("3", "Algebra")


def test_aime_filters_years_and_flags_the_ambiguous_answer(tables):
    aime = tables["aime_1983_2023"].set_index("problem_id")
    assert aime["year"].max() == 2023 and aime["year"].min() == 1983
    assert aime.loc["aime_1983_2023/2022-II-8", "flags"] == "alternate_answer:81"
    dropped = load_source("aime_1983_2023", DATA_DIR, ambiguous="drop")
    assert len(dropped) == 918 and "aime_1983_2023/2022-II-8" not in set(dropped["problem_id"])
    assert len(load_source("aime_1983_2023", DATA_DIR, max_year=2024)) == 933


def test_theoremqa_pictures_dropped_by_default_and_flagged_when_kept(tables):
    kept = load_source("theoremqa", DATA_DIR, keep_pictures=True)
    assert len(kept) == 800
    pictures = kept[kept["flags"] == "picture"]
    assert len(pictures) == 53
    assert not set(pictures["problem_id"]) & set(tables["theoremqa"]["problem_id"])
    types = kept.set_index("problem_id")["answer_type"]
    assert types["theoremqa/maxku/cv-colorsci2-hsi.json"] == "option"
    assert types["theoremqa/maxku/graphtheory6-shortestpath.json"] == "list"
    assert set(kept.loc[kept["answer_type"] == "bool", "answer"]) == {"True", "False"}


def test_olympiadbench_keeps_unit_and_tolerance(tables):
    ob = tables["olympiadbench"].set_index("problem_id")
    assert ob["unit"].notna().sum() == 8 and ob.loc["olympiadbench/2334", "unit"] == "km"
    assert ob["tolerance"].dropna().to_dict() == {"olympiadbench/2592": 0.1}
    assert (ob["answer_type"] == "list").sum() == 94


def test_college_math_keeps_the_per_record_license(tables):
    licenses = tables["college_math"]["license"]
    assert licenses.notna().all()
    assert licenses.str.contains("NonCommercial|Non-Commercial").sum() == 809


def test_answer_helpers():
    text = r"so $\boxed{\frac{1}{2}}$ and finally \boxed{\left\{ 1, 2 \right\}}."
    assert last_boxed(text) == r"\left\{ 1, 2 \right\}"
    assert last_boxed(r"$\boxed{a^{b^{c}}}$") == "a^{b^{c}}"
    assert last_boxed(r"answer \fbox{7} here") == "7"
    assert last_boxed(r"is $\boxed 9$.") == "9"
    assert last_boxed(r"\boxed{unclosed") is None and last_boxed("no box") is None
    assert strip_dollar_wrapper("$10-4 n$") == ("10-4 n", True)
    assert strip_dollar_wrapper(r"$\$ 3040$") == (r"\$ 3040", True)
    assert strip_dollar_wrapper("$x=0$ or $x=2$") == ("$x=0$ or $x=2$", False)
    assert [format_number(v) for v in (4e-05, 345.0, -6e25, 1.0472, 7)] == \
        ["0.00004", "345", "-60000000000000000000000000", "1.0472", "7"]


def test_hmmt25_pairs_each_answer_with_its_tex_file(tables):
    hmmt = tables["hmmt25"].set_index("problem_id")
    folder = DATA_DIR / "eval" / "hmmt_feb_2025"
    assert hmmt.loc["hmmt25/01", "problem"] == (folder / "problems" / "1.tex").read_text(encoding="utf-8")
    assert hmmt.loc["hmmt25/30", "problem"] == (folder / "problems" / "30.tex").read_text(encoding="utf-8")
    assert hmmt["answer_type"].value_counts().to_dict() == {"latex": 15, "integer": 14, "list": 1}
    assert hmmt["flags"].dropna().to_dict() == {"hmmt25/24": "tikz"}
    assert set(hmmt["year"]) == {2025}


def test_hmmt25_both_values_of_problem_10_are_required():
    from trajfusion.verify import verify_frame

    gold = load_source("hmmt25", DATA_DIR).set_index("problem_id").loc["hmmt25/10"]
    responses = [r"so $\boxed{\frac{-1-\sqrt{17}}{2}, \frac{-1+\sqrt{17}}{2}}$",
                 r"so $\boxed{\frac{-1+\sqrt{17}}{2}}$"]
    frame = pd.DataFrame({"problem_id": ["a", "b"], "gold": gold["answer"], "response": responses,
                          "answer_type": gold["answer_type"]})
    assert verify_frame(frame, workers=1, timeout=10)["correct"].tolist() == [True, False]


def test_hmmt25_missing_problem_file_is_named(tmp_path):
    folder = DATA_DIR / "eval" / "hmmt_feb_2025"
    make_data_dir(tmp_path, {"eval/hmmt_feb_2025/answers.csv": b"id,answer\n1,103\n2,3375\n",
                             "eval/hmmt_feb_2025/problems/1.tex": (folder / "problems" / "1.tex").read_bytes()})
    with pytest.raises(InputError, match=r"problems/2\.tex: data file not found"):
        load_source("hmmt25", tmp_path)
    make_data_dir(tmp_path / "b", {"eval/hmmt_feb_2025/answers.csv": b"id,answer\n1,\n",
                                   "eval/hmmt_feb_2025/problems/1.tex": b"text"})
    with pytest.raises(InputError, match=r"answers\.csv: record 1: no gold answer in field 'answer'"):
        load_source("hmmt25", tmp_path / "b")


# --- checksums and malformed input --------------------------------------------------------

def test_checksum_mismatch_names_file_and_both_hashes(tmp_path):
    shutil.copy(DATA_DIR / "SHA256SUMS", tmp_path / "SHA256SUMS")
    (tmp_path / "eval").mkdir()
    target = tmp_path / "eval" / "aime25_test.jsonl"
    content = bytearray((DATA_DIR / "eval" / "aime25_test.jsonl").read_bytes())
    content[100] ^= 0x01
    target.write_bytes(bytes(content))
    with pytest.raises(InputError) as err:
        load_source("aime25", tmp_path)
    message = str(err.value)
    assert str(target) in message
    assert "b4e273c02d3e7fe1b74b59eae768fc8230bfb0f79539890cb56f4361caac0331" in message
    assert hashlib.sha256(bytes(content)).hexdigest() in message


def test_file_missing_from_checksum_list_is_refused(tmp_path):
    make_data_dir(tmp_path, {"eval/other.jsonl": b"{}\n"})
    shutil.copy(DATA_DIR / "eval" / "aime25_test.jsonl", tmp_path / "eval" / "aime25_test.jsonl")
    with pytest.raises(InputError, match="no entry for 'eval/aime25_test.jsonl'"):
        load_source("aime25", tmp_path)


def test_malformed_jsonl_line_is_named(tmp_path):
    lines = raw_lines("eval/aime24_test.jsonl")
    lines[2] = b'{"id": 62, "problem": "broken\n'
    make_data_dir(tmp_path, {"eval/aime24_test.jsonl": b"".join(lines)})
    with pytest.raises(InputError, match=r"aime24_test\.jsonl:3: malformed JSON"):
        load_source("aime24", tmp_path)


def test_missing_gold_names_file_record_and_field(tmp_path):
    lines = raw_lines("eval/gsm8k_test.jsonl")[:5]
    record = json.loads(lines[3])
    record["answer"] = record["answer"].replace("\n#### ", "\nThe answer is ")
    lines[3] = (json.dumps(record) + "\n").encode()
    make_data_dir(tmp_path, {"eval/gsm8k_test.jsonl": b"".join(lines)})
    with pytest.raises(InputError, match=r"gsm8k_test\.jsonl: record 4: no gold answer in field 'answer'"):
        load_source("gsm8k", tmp_path)


def test_empty_gold_and_missing_field_are_errors(tmp_path):
    lines = raw_lines("eval/aime25_test.jsonl")[:3]
    record = json.loads(lines[1])
    record["answer"] = ""
    lines[1] = (json.dumps(record) + "\n").encode()
    make_data_dir(tmp_path / "a", {"eval/aime25_test.jsonl": b"".join(lines)})
    with pytest.raises(InputError, match=r"record 2: no gold answer in field 'answer'"):
        load_source("aime25", tmp_path / "a")
    del record["answer"]
    lines[1] = (json.dumps(record) + "\n").encode()
    make_data_dir(tmp_path / "b", {"eval/aime25_test.jsonl": b"".join(lines)})
    with pytest.raises(InputError, match=r"record 2: missing field 'answer'"):
        load_source("aime25", tmp_path / "b")


def test_duplicate_problem_ids_are_errors(tmp_path):
    lines = raw_lines("eval/aime25_test.jsonl")[:3]
    make_data_dir(tmp_path, {"eval/aime25_test.jsonl": b"".join([lines[0], lines[1], lines[0]])})
    with pytest.raises(InputError, match=r"aime25_test\.jsonl: record 3 \(problem_id='aime25/00'\): "
                       r"duplicate key \(problem_id\), also record 1"):
        load_source("aime25", tmp_path)


def test_unknown_source_and_option_are_errors():
    with pytest.raises(InputError, match="unknown data source 'gsm9k'"):
        load_source("gsm9k", DATA_DIR)
    with pytest.raises(InputError, match=r"unknown option\(s\) \['keep_pictures'\]"):
        load_source("gsm8k", DATA_DIR, keep_pictures=True)


# --- DeepMath ------------------------------------------------------------------------------

def _check_deepmath_fixture_table(df: pd.DataFrame, origin: str) -> None:
    assert len(df) == 5
    assert df["problem_id"].tolist() == [f"deepmath_103k/{i:06d}" for i in range(5)]
    row = df.iloc[2]
    assert row["problem"].startswith("Compute \\( \\int_0^1 2x")
    assert (row["answer"], row["level"], row["answer_type"]) == ("e - 1", "4", "latex"), origin
    assert df.iloc[0]["level"] == "2.5" and df.iloc[0]["subject"].endswith("-> Limits")
    assert df["answer"].tolist() == ["3", "24", "e - 1", "7", "3"]


def test_deepmath_loader_reads_jsonl_and_parquet(tmp_path):
    fixture = FIXTURES / "deepmath_sample.jsonl"
    _check_deepmath_fixture_table(load_source("deepmath_103k", DATA_DIR, location=str(fixture)), "jsonl")
    parquet = tmp_path / "deepmath.parquet"
    pd.read_json(fixture, lines=True).to_parquet(parquet)
    _check_deepmath_fixture_table(load_source("deepmath_103k", None, location=str(parquet)), "parquet")


def test_deepmath_loader_uses_datasets_for_a_hub_id(monkeypatch):
    import datasets

    rows = [json.loads(line) for line in (FIXTURES / "deepmath_sample.jsonl").read_text().splitlines()]
    calls = []

    def fake_load_dataset(path, split=None, **kwargs):
        calls.append((path, split))
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    _check_deepmath_fixture_table(load_source("deepmath_103k", DATA_DIR), "hub")
    assert calls == [("zwhe99/DeepMath-103K", "train")]


def test_deepmath_bad_records(tmp_path):
    lines = (FIXTURES / "deepmath_sample.jsonl").read_text().splitlines(keepends=True)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(lines[0] + "{not json\n")
    with pytest.raises(InputError, match=r"broken\.jsonl:2: malformed JSON"):
        load_source("deepmath_103k", None, location=str(broken))
    record = json.loads(lines[1])
    record["final_answer"] = " "
    empty = tmp_path / "empty.jsonl"
    empty.write_text(lines[0] + json.dumps(record) + "\n")
    with pytest.raises(InputError, match=r"empty\.jsonl: record 2: no gold answer in field 'final_answer'"):
        load_source("deepmath_103k", None, location=str(empty))


# --- synthetic arithmetic ------------------------------------------------------------------

_ADD = re.compile(r"(?:buys|finds|gives (?:him|her)|gets) (\d+) more")
_SUB = re.compile(r"(?:gives away|loses|sells|gives) (\d+)(?: to a friend)?\.$")
_DIV = re.compile(r"splits them into (\d+) equal groups")


def _solve(problem: str) -> int:
    """Independent reading of a generated problem, sentence by sentence."""
    sentences = re.findall(r"[^.?]+[.?]", problem)
    total = int(re.search(r" has (\d+) ", sentences[0]).group(1))
    for sentence in sentences[1:-1]:
        if m := _ADD.search(sentence):
            total += int(m.group(1))
        elif m := _SUB.search(sentence):
            total -= int(m.group(1))
        elif "doubles" in sentence:
            total *= 2
        elif "triples" in sentence:
            total *= 3
        elif m := _DIV.search(sentence):
            assert total % int(m.group(1)) == 0
            total //= int(m.group(1))
        else:
            raise AssertionError(f"unreadable step: {sentence!r}")
        assert total >= 0
    return total


def test_synthetic_answers_are_exact_and_operands_small():
    df = load_source("synthetic_arith", None, n=300, min_steps=1, max_steps=3, seed=5)
    assert [_solve(p) for p in df["problem"]] == [int(a) for a in df["answer"]]
    assert set(df["level"]) == {"1", "2", "3"}
    operands = [int(x) for p in df["problem"] for x in re.findall(r"\d+", p)]
    assert max(operands) <= 49 and min(operands) >= 1
    assert df["problem"].is_unique


def test_synthetic_is_seeded_and_deterministic():
    first = load_source("synthetic_arith", None, n=50, seed=3)
    assert first.equals(load_source("synthetic_arith", None, n=50, seed=3))
    assert not first["problem"].equals(load_source("synthetic_arith", None, n=50, seed=4)["problem"])
    assert load_source("synthetic_arith", None, n=80, seed=3).head(50).equals(first)


def test_synthetic_test_split_never_collides_with_training():
    train = load_source("synthetic_arith", None, n=5000, seed=0)
    test = load_source("synthetic_arith_test", None, n=1000, seed=0)
    other_seed = load_source("synthetic_arith_test", None, n=1000, seed=7)
    train_texts = set(train["problem"])
    assert not train_texts & set(test["problem"]) and not train_texts & set(other_seed["problem"])
    assert test["problem_id"].str.startswith("synthetic_arith_test/").all()
    assert all(is_test_text(p) for p in test["problem"]) and not any(is_test_text(p) for p in train["problem"])


def test_synthetic_rejects_bad_options(monkeypatch):
    with pytest.raises(InputError, match="min_steps"):
        generate("train", n=5, min_steps=3, max_steps=2)
    with pytest.raises(InputError, match="option n must be an integer"):
        load_source("synthetic_arith", None, n="ten")
    # One person and one item leave only about a hundred distinct one-step problems.
    monkeypatch.setattr(synthetic, "_PEOPLE", (("Tom", "he", "him"),))
    monkeypatch.setattr(synthetic, "_ITEMS", ("apples",))
    with pytest.raises(InputError, match="could only make"):
        generate("train", n=1000, max_steps=1, max_number=5)


# --- prepare-benchmark CLI -----------------------------------------------------------------

def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="trajfusion")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_prepare_benchmark_cli_is_deterministic(tmp_path):
    argv = ["prepare-benchmark", "--name", "math500", "--data-dir", str(DATA_DIR), "--limit", "40",
            "--select", "random", "--seed", "3", "--output"]
    assert run_cli(argv + [str(tmp_path / "a.parquet")]) == 0
    assert run_cli(argv + [str(tmp_path / "b.parquet")]) == 0
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    table = pd.read_parquet(tmp_path / "a.parquet")
    assert len(table) == 40 and table["problem_id"].is_monotonic_increasing
    assert set(table["problem_id"]) <= set(load_source("math500", DATA_DIR)["problem_id"])
    assert "config_hash" in read_parquet_metadata(tmp_path / "a.parquet")


def test_prepare_benchmark_cli_pictures_and_errors(tmp_path):
    out = tmp_path / "tq.parquet"
    run_cli(["prepare-benchmark", "--name", "theoremqa", "--data-dir", str(DATA_DIR), "--keep-pictures",
             "--output", str(out)])
    assert len(pd.read_parquet(out)) == 800
    with pytest.raises(InputError, match="--keep-pictures only applies to theoremqa"):
        run_cli(["prepare-benchmark", "--name", "gsm8k", "--data-dir", str(DATA_DIR), "--keep-pictures",
                 "--output", str(out)])
    with pytest.raises(InputError, match="--select all cannot be combined with --limit"):
        run_cli(["prepare-benchmark", "--name", "gsm8k", "--data-dir", str(DATA_DIR), "--limit", "5",
                 "--select", "all", "--output", str(out)])
