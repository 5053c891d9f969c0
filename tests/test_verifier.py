import os
import signal
import time
from fractions import Fraction

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trajfusion.cli import main as cli_main
from trajfusion.io import InputError, read_parquet_metadata
from trajfusion.verify import verify_frame
from trajfusion.verify.equivalence import (
    ParseCache,
    _numerically_distinct,
    cheap_verdict,
    exact_literal,
    exact_rational,
    math_verify_judge,
)
from trajfusion.verify.tasks import ProblemPool as WatchdogPool
from trajfusion.verify.tasks import ProblemTask

POWER_TOWER = "9^{9^{9^{9^{9^{9^{9}}}}}}"

# (gold, final answer as the model boxed it, expected verdict, answer_type)
CASES = [
    # fractions, \dfrac, radicals, pi
    ("\\frac{1}{2}", "0.5", True, "latex"),
    ("\\frac{1}{2}", "2", False, "latex"),
    ("\\dfrac{3}{4}", "\\frac34", True, "latex"),
    ("-\\frac{7}{3}", "-\\dfrac{14}{6}", True, "latex"),
    ("2\\sqrt{3}", "\\sqrt{12}", True, "latex"),
    ("2\\sqrt{3}", "3\\sqrt{2}", False, "latex"),
    ("2\\pi", "2 \\pi", True, "latex"),
    ("\\frac{\\pi}{2}", "\\pi", False, "latex"),
    # intervals, tuples, sets, several answers
    ("[-2, 7]", "[-2,7]", True, "latex"),
    ("[-2, 7]", "(-2, 7)", False, "latex"),
    ("(-\\infty, 3)", "(-\\infty,3)", True, "latex"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})", True, "latex"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(\\frac{\\pi}{2},3)", False, "latex"),
    ("\\{1,2\\}", "\\{2, 1\\}", True, "latex"),
    ("3, 5", "5, 3", True, "list"),
    ("(45,2),(-10,-9)", "(-10,-9),(45,2)", True, "list"),
    # percentages, units, degrees, thousands separators, currency
    ("50\\%", "50", True, "latex"),
    ("50\\%", "50\\%", True, "latex"),
    ("5", "5\\text{ cm}", True, "integer"),
    ("90^\\circ", "90", True, "latex"),
    ("1000", "1,000", True, "integer"),
    ("1,000", "1000", True, "integer"),
    ("18", "\\$18", True, "integer"),
    # AIME leading zeros, big integers
    ("025", "25", True, "integer"),
    ("025", "52", False, "integer"),
    ("1000000000000000001", "1000000000000000000", False, "integer"),
    # TheoremQA booleans, lists, options, numbers
    ("True", "true", True, "bool"),
    ("True", "Yes", True, "bool"),
    ("False", "\\text{False}", True, "bool"),
    ("False", "True", False, "bool"),
    ("[0, 5]", "[0, 5]", True, "list"),
    ("[0, 5]", "0, 5", True, "list"),
    ("[0, 5]", "(0,5)", True, "list"),
    ("[0, 5]", "[5, 0]", False, "list"),
    ("[0, 5]", "[0, 5, 1]", False, "list"),
    ("[0.333, 0.25]", "[0.333, 0.25]", True, "list"),
    ("[2, 1.32]", "[2.0, 1.32]", True, "list"),
    ("(a)", "(a)", True, "option"),
    ("(a)", "A", True, "option"),
    ("(a)", "(b)", False, "option"),
    ("\\text{(C)}", "C", True, "option"),
    ("11760", "11760.0", True, "integer"),
    # text answers and equations
    ("\\text{Evelyn}", "\\text{Evelyn}", True, "text"),
    ("3", "x=3", True, "integer"),
    ("p - q", "p-q", True, "latex"),
    # false-positive traps
    ("\\frac{1}{2004!}", "\\frac{1}{2006!}", False, "latex"),
    ("\\frac{1}{2004!}", "\\frac{1}{2004!}", True, "latex"),
    ("\\frac{1}{2004!}", "\\frac{2005\\cdot 2006}{2006!}", True, "latex"),
    ("2^{100}", "2^{100}+1", False, "latex"),
    # exact numeric literals (rule 4) and the numeric shortcut for clearly different constants
    ("\\frac{6}{8}", "3/4", True, "latex"),
    ("-\\frac{3}{4}", "\\frac{-3}{4}", True, "latex"),
    ("\\frac{1}{3}", "0.3333333", True, "latex"),
    ("\\frac{1}{3}", "0.333", False, "latex"),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt{3}}{2}+1", False, "latex"),
    ("3+4i", "3-4i", False, "latex"),
    ("\\pi", "3.1415926", True, "latex"),
    ("\\pi", "3.14", False, "latex"),
]


def _values(column):
    """Column values with missing entries as None (string columns hold NaN for null)."""
    return [None if pd.isna(v) else v for v in column]


def _frame(cases):
    rows = []
    for i, (gold, boxed, _, answer_type) in enumerate(cases):
        rows.append({"problem_id": f"case/{i:03d}", "gold": gold, "answer_type": answer_type,
                     "response": f"Working through it step by step.\nSo the result is $\\boxed{{{boxed}}}$.",
                     "finish_reason": "stop"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def benchmark_formats():
    return verify_frame(_frame(CASES), workers=0, timeout=2)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{c[0]}|{c[1]}" for c in CASES])
def test_benchmark_formats(benchmark_formats, index):
    gold, boxed, expected, _ = CASES[index]
    row = benchmark_formats.iloc[index]
    assert row["status"] == "ok"
    assert bool(row["correct"]) is expected, (gold, boxed, row["answer"])


def test_exact_rational_guard_values():
    from math_verify import parse

    value = exact_rational(parse("\\boxed{\\frac{3}{2^{2}}+1}", parsing_timeout=None)[0])
    assert value == pytest.approx(1.75) and value.denominator == 4
    assert exact_rational(parse("\\boxed{\\sqrt{2}}", parsing_timeout=None)[0]) is None
    assert exact_rational(parse("\\boxed{10^{10^{10}}}", parsing_timeout=None)[0]) is None


@pytest.mark.parametrize("reference, candidate, verdict", [
    ("\\frac{1}{2}", "1/2", True),
    ("\\frac12", "0.5", True),
    ("-\\frac{2}{4}", "-0.5", True),
    ("\\frac{1}{3}", "\\frac{2}{5}", False),
    ("7", "7.", True),
    ("\\frac{1}{3}", "0.3333333", None),  # a decimal: math-verify's rounding decides
    ("\\frac{1}{0}", "1", None),
    ("x=3", "3", None),
])
def test_cheap_verdict_on_numeric_literals(reference, candidate, verdict):
    assert cheap_verdict(reference, candidate, None) is verdict


def test_exact_literal_forms():
    assert exact_literal("-\\frac{3}{4}") == (Fraction(-3, 4), False)
    assert exact_literal("\\frac{-3}{4}") == (Fraction(-3, 4), False)
    assert exact_literal("+12/8") == (Fraction(3, 2), False)
    assert exact_literal(".25") == (Fraction(1, 4), True)
    for not_literal in ("\\frac{x}{2}", "2^{3}", "1,000", "", "\\frac{1}{2}+1"):
        assert exact_literal(not_literal) is None, not_literal


@pytest.mark.parametrize("reference, candidate, distinct", [
    ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt{3}}{2}+1", True),
    ("2\\pi", "\\pi", True),
    ("2\\sqrt{3}", "\\sqrt{12}", False),      # equal values
    ("\\pi", "3.1415926", False),              # within rounding: math-verify decides
    ("50\\%", "0.4", False),                   # percent has its own rules in math-verify
    ("90^\\circ", "\\frac{\\pi}{2}", False),  # so do degrees
    ("x+1", "x+2", False),                      # symbols: not constants
    ("(1,2)", "(1,3)", False),                  # tuples are not numbers
])
def test_numeric_shortcut_only_decides_clearly_different_constants(reference, candidate, distinct):
    cache = ParseCache()
    assert _numerically_distinct(reference, candidate, cache.parse(reference), cache.parse(candidate)) is distinct


def test_parse_cache_is_bounded_and_shared_across_lookups():
    cache = ParseCache(capacity=2)
    first = cache.parse("\\frac{1}{2}")
    assert cache.parse("\\frac{1}{2}") is first
    cache.parse("3")
    cache.parse("\\sqrt{2}")  # evicts the least recently used entry
    assert cache.parse("\\frac{1}{2}") is not first


def test_incorrect_answers_merge_into_groups():
    responses = ["\\boxed{0.5}", "\\boxed{\\frac{1}{2}}", "\\boxed{\\frac{1}{2}}", "\\boxed{\\dfrac{2}{4}}",
                 "\\boxed{7}", "\\boxed{7.0}", "\\boxed{3}", "\\boxed{9}", "no idea"]
    df = pd.DataFrame({"problem_id": "p", "gold": "3", "response": responses})
    out = verify_frame(df, workers=0, timeout=2)
    assert out["status"].tolist() == ["ok"] * 8 + ["filtered:no_answer"]
    assert out["correct"].tolist() == [False] * 6 + [True, False, False]
    # \frac{1}{2} is the most frequent spelling of its group; 7 and 7.0 tie, "7" < "7.0".
    assert _values(out["answer_group"]) == ["\\frac{1}{2}"] * 4 + ["7", "7", None, "9", None]
    assert out["answer"].tolist()[:4] == ["0.5", "\\frac{1}{2}", "\\frac{1}{2}", "\\frac{2}{4}"]


def test_filters_and_passthrough_columns():
    df = pd.DataFrame({
        "problem_id": ["a", "a", "a"], "gold": ["4", "4", "4"], "sample_idx": [0, 1, 2],
        "response": ["\\boxed{4}", "\\boxed{4}", "The sum is " + "again and again " * 200],
        "finish_reason": ["stop", "length", "stop"],
    })
    out = verify_frame(df, workers=0, timeout=2, filters={"ngram_size": 4})
    assert out["status"].tolist() == ["ok", "filtered:truncated", "filtered:repetition"]
    assert out["correct"].tolist() == [True, False, False]
    assert _values(out["answer"]) == ["4", "4", None]
    assert out["sample_idx"].tolist() == [0, 1, 2]


def test_teacher_answer_rule_reasoning_and_think_filters_reach_the_statuses():
    from tests.test_filters import R1_STYLE, UNBOXED, UNCLOSED
    from trajfusion.contracts import VERIFIED
    from trajfusion.verify import compute_stats

    responses = [UNBOXED, UNBOXED.replace("The answer is 10.", "The answer is $\\boxed{10}$."), "\\boxed{10}",
                 UNCLOSED, R1_STYLE]
    df = pd.DataFrame({"problem_id": ["w"] * 4 + ["r"], "gold": ["10"] * 4 + ["5"], "response": responses,
                       "sample_idx": [0, 1, 2, 3, 0], "finish_reason": ["stop"] * 5})
    calibrated = {"min_reasoning_steps": 1}
    boxed = verify_frame(df, workers=0, timeout=5, filters=calibrated, answer_format="boxed")
    assert boxed["status"].tolist() == ["filtered:no_answer", "ok", "filtered:no_reasoning",
                                        "filtered:unclosed_think", "ok"]
    assert boxed["correct"].tolist() == [False, True, False, False, True]
    VERIFIED.check(boxed, "boxed", columns=[c for c in VERIFIED.names if c in boxed.columns])
    stats = compute_stats(boxed).set_index("problem_id")
    assert stats.loc["w", ["K", "n_correct", "n_filtered"]].tolist() == [1, 1, 3]
    lenient = verify_frame(df, workers=0, timeout=5, filters=calibrated)
    assert lenient["status"].tolist()[:2] == ["ok", "ok"] and lenient["correct"].tolist()[:2] == [True, True]


def test_empty_and_all_null_frames_keep_string_columns():
    empty = verify_frame(pd.DataFrame({"problem_id": [], "gold": [], "response": []}, dtype=object), workers=2)
    assert len(empty) == 0 and list(empty.columns)[-4:] == ["answer", "correct", "status", "answer_group"]
    out = verify_frame(pd.DataFrame({"problem_id": ["a"], "gold": ["1"], "response": ["nothing"]}), workers=0)
    schema = pa.Table.from_pandas(out).schema
    assert schema.field("answer").type == pa.large_string()
    assert schema.field("answer_group").type == pa.large_string()


def test_row_order_and_determinism_across_modes():
    cases = CASES[:12]
    df = _frame(cases + cases).sample(frac=1.0, random_state=3)
    df["problem_id"] = [pid.split("/")[1] for pid in df["problem_id"]]
    df.index = range(100, 100 + len(df))
    inline = verify_frame(df, workers=0, timeout=2)
    pooled = verify_frame(df, workers=2, timeout=2)
    pd.testing.assert_frame_equal(inline, pooled)
    assert list(pooled.index) == list(df.index)
    assert pooled["response"].tolist() == df["response"].tolist()


def test_power_tower_times_out_and_the_batch_completes():
    responses = ["\\boxed{12}", f"\\boxed{{{POWER_TOWER}}}", "\\boxed{13}", "\\boxed{\\frac{24}{2}}"]
    df = pd.DataFrame({"problem_id": ["p1"] * 4 + ["p2"], "gold": ["12"] * 4 + ["1/3"],
                       "response": responses + ["\\boxed{\\frac{1}{3}}"]})
    start = time.perf_counter()
    out = verify_frame(df, workers=2, timeout=2)
    assert time.perf_counter() - start < 30
    assert out["status"].tolist() == ["ok", "timeout", "ok", "ok", "ok"]
    assert out["correct"].tolist() == [True, False, False, True, True]


# Fault injection: a judge that hangs where signals cannot interrupt it (SIGALRM blocked,
# as inside a long C call) or kills its process. Module level, so workers can import it.
def faulty_judge(reference, candidate, hint, cache):
    if candidate == "HANG":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(600)
    if candidate == "CRASH":
        os._exit(7)
    return math_verify_judge(reference, candidate, hint, cache)


def test_hung_and_crashed_workers_cost_one_verdict_each():
    df = pd.DataFrame({
        "problem_id": ["a"] * 4 + ["b"] * 3 + ["c"] * 2,
        "gold": ["x+1"] * 4 + ["2y"] * 3 + ["z"] * 2,
        "response": ["\\boxed{1+x}", "\\boxed{HANG}", "\\boxed{x+2}", "\\boxed{x + 2}",
                     "\\boxed{y+y}", "\\boxed{CRASH}", "\\boxed{3y}", "\\boxed{z}", "\\boxed{HANG}"],
    })
    start = time.perf_counter()
    out = verify_frame(df, workers=2, timeout=1, judge=faulty_judge)
    assert time.perf_counter() - start < 40
    assert out["status"].tolist() == ["ok", "timeout", "ok", "ok", "ok", "error", "ok", "ok", "timeout"]
    assert out["correct"].tolist() == [True, False, False, False, True, False, False, True, False]
    assert _values(out["answer_group"]) == [None, None, "x+2", "x+2", None, None, "3y", None, None]


def test_watchdog_requeues_the_rest_of_a_chunk():
    from trajfusion.verify.filters import resolve_filters

    def task(tid, gold, answers):
        return ProblemTask(tid, gold, None, [f"\\boxed{{{a}}}" for a in answers], [None] * len(answers))

    tasks = [task(0, "a+b", ["b+a"]), task(1, "c", ["HANG", "c", "2c"]), task(2, "2y", ["y+y", "CRASH"]),
             task(3, "e", ["e"])]
    done = []
    pool = WatchdogPool(1, timeout=1, settings=resolve_filters(None), judge=faulty_judge, chunk_rows=100)
    pool.run(tasks, done.append)
    assert [t.tid for t in done] == [0, 1, 2, 3]
    assert tasks[1].verdicts == {"HANG": "timeout", "c": True, "2c": False}
    assert tasks[2].verdicts == {"y+y": True, "CRASH": "error"}
    assert tasks[3].verdicts == {"e": True}
    assert pool.incidents == {"timeout": 1, "error": 1}


@pytest.mark.parametrize("df, message", [
    (pd.DataFrame({"problem_id": ["a"], "gold": ["1"]}), "missing required column"),
    (pd.DataFrame({"problem_id": ["a", "a"], "gold": ["1", "1"], "response": ["x", None]}),
     "row 1: field 'response'"),
    (pd.DataFrame({"problem_id": ["a", "a"], "gold": ["1", "2"], "response": ["x", "y"]}),
     "row 1: field 'gold'"),
    (pd.DataFrame({"problem_id": ["a"], "gold": [None], "response": ["x"]}), "row 0: field 'gold'"),
])
def test_bad_input(df, message):
    with pytest.raises(InputError, match=message):
        verify_frame(df, workers=0)


def test_cli_verify_and_stats(tmp_path):
    samples = tmp_path / "samples.jsonl"
    _frame(CASES[:6]).assign(source="math500").to_json(samples, orient="records", lines=True)
    first, second = tmp_path / "v1.parquet", tmp_path / "v2.parquet"
    for out in (first, second):
        assert cli_main(["verify", "--input", str(samples), "--output", str(out),
                         "--workers", "1", "--timeout", "2", "--filters", '{"line_run": 6}']) == 0
    assert first.read_bytes() == second.read_bytes()
    table = pd.read_parquet(first)
    assert table["correct"].tolist() == [c[2] for c in CASES[:6]]
    meta = read_parquet_metadata(first)
    assert meta["config_hash"] and "math-verify" in meta["versions"]
    stats = tmp_path / "stats.parquet"
    assert cli_main(["stats", "--input", str(first), "--output", str(stats)]) == 0
    assert pq.read_table(stats).num_rows == 6
    assert cli_main(["verify", "--input", str(samples), "--output", str(tmp_path / "x.parquet"),
                     "--filters", '{"nope": 1}']) == 2
    assert cli_main(["verify", "--input", str(tmp_path / "missing.jsonl"),
                     "--output", str(tmp_path / "x.parquet")]) == 2
