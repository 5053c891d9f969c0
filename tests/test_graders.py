"""The two graders: the Qwen2.5-Math toolkit's rules (``qwen25_math``) against this project's
math-verify grader, where they disagree and where they agree, and grader parity in the
verdict table and the report."""

from __future__ import annotations

import pandas as pd
import pytest

from trajfusion import evaluate
from trajfusion.report import graders as report_graders
from trajfusion.report.metrics import check_verdicts
from trajfusion.verify import qwen25_math, verify_frame
from trajfusion.verify.graders import MATH_VERIFY, QWEN25_MATH, get_grader, other_grader
from trajfusion.verify.pool import TIMEOUT, run_with_deadline, soft_deadlines

# (gold, response, math_verify's verdict, qwen25_math's verdict): real differences of the rules
DISAGREE = [
    # the toolkit accepts a number equal to the gold, gold / 100 or gold x 100 (include_percentage)
    ("50", "The probability is $\\boxed{0.5}$.", False, True),
    # numbers compare within a relative 1e-4, so 9999 passes for 10000 (MATH test problem
    # "10{,}000": Qwen2.5-Math-7B-Instruct answered 9999 in the toolkit's own example outputs)
    ("10000", "So the largest value is $\\boxed{9999}$.", False, True),
    # intervals: tuples compare element-wise whatever the brackets, so open equals closed
    ("(1,2)", "The solution set is $\\boxed{[1,2]}$.", False, True),
    ("[-3,5)", "Hence $x \\in \\boxed{(-3,5]}$.", False, True),
    # number words become digits ("five" -> 5); commas are dropped from numbers ("1,2" -> 12)
    ("5", "She needs $\\boxed{\\text{five}}$ more boxes.", False, True),
    ("12", "The two values are $\\boxed{1,2}$.", False, True),
    # numeric tolerance: relative 1e-4 (math-verify rounds to its own precision)
    ("\\frac{1}{3}", "Numerically, $\\boxed{0.3333}$.", False, True),
    # matrices: symbolic comparison rounds entries to 3 decimals
    ("\\begin{pmatrix}0.333\\\\2\\end{pmatrix}", "$\\boxed{\\begin{pmatrix}\\frac13\\\\2\\end{pmatrix}}$", False, True),
    # truth values: this project reads "yes" as "True"; the toolkit compares the strings
    ("True", "Yes, the statement holds, so the answer is $\\boxed{\\text{yes}}$.", True, False),
    # extraction: the toolkit takes the last \boxed anywhere, ignoring </think>; and after
    # "The answer is" it takes the rest of the response, not the sentence
    ("12", "<think>A first guess: $\\boxed{10}$. No: 5 + 7 = 12.</think>\nThe answer is 12.", True, False),
    ("7", "The answer is 7. To double-check, 3 + 4 = 7.", True, False),
]

# Realistic spellings both graders accept, and wrong answers both reject
AGREE = [
    ("\\frac{1}{2}", "$\\boxed{0.5}$", True),
    ("x^2+1", "$\\boxed{1+x^2}$", True),
    ("90^\\circ", "The angle is $\\boxed{90}$ degrees.", True),
    ("\\$18.90", "She pays $\\boxed{18.9}$ dollars.", True),
    ("2", "$\\boxed{2.00}$", True),
    ("6", "So the ratio is $\\boxed{600\\%}$.", True),
    ("-\\frac{1}{2}", "$\\boxed{-1/2}$", True),
    ("\\frac{\\sqrt{2}}{2}", "$\\boxed{\\frac{\\sqrt2}{2}}$", True),
    ("5", "The side is $\\boxed{5\\text{ cm}}$.", True),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "$\\boxed{\\begin{bmatrix}1\\\\2\\end{bmatrix}}$", True),
    ("y=2x+1", "$\\boxed{2x+1}$", True),
    ("7", "$\\boxed{8}$", False),
    ("(1,2)", "$\\boxed{(1,3)}$", False),
    ("\\sqrt{3}", "$\\boxed{\\sqrt{2}}$", False),
]


def graded(cases, grader) -> pd.DataFrame:
    df = pd.DataFrame({"problem_id": [f"p{i:02d}" for i in range(len(cases))], "gold": [c[0] for c in cases],
                       "response": [c[1] for c in cases]})
    return verify_frame(df, workers=0, timeout=60, filters={"enabled": []}, grader=grader)


@pytest.fixture(scope="module")
def disagreements():
    return graded(DISAGREE, MATH_VERIFY), graded(DISAGREE, QWEN25_MATH)


@pytest.mark.parametrize("index", range(len(DISAGREE)), ids=[c[0] + "|" + c[1][:30] for c in DISAGREE])
def test_graders_disagree_where_their_rules_differ(disagreements, index):
    by_math_verify, by_qwen = disagreements
    _, _, expected_mv, expected_qwen = DISAGREE[index]
    assert by_math_verify.loc[index, "status"] == by_qwen.loc[index, "status"] == "ok"
    assert bool(by_math_verify.loc[index, "correct"]) is expected_mv
    assert bool(by_qwen.loc[index, "correct"]) is expected_qwen


def test_graders_agree_on_common_spellings():
    expected = [c[2] for c in AGREE]
    assert graded(AGREE, MATH_VERIFY)["correct"].tolist() == expected
    assert graded(AGREE, QWEN25_MATH)["correct"].tolist() == expected


@pytest.mark.parametrize("raw,normalized", [
    ("\\dfrac{1}{2}", "\\frac{1}{2}"),
    ("\\frac12", "\\frac{1}{2}"),
    ("3/4", "\\frac{3}{4}"),
    ("5\\text{ cm}", "5"),
    ("12 inches", "12"),
    ("\\left( 1, 2 \\right)", "(1,2)"),
    ("k = 3", "3"),
    ("2.50", "2.50"),
    ("3.00", "3"),
    ("45^\\circ", "45"),
    ("25\\%", "25"),
    ("\\sqrt2", "\\sqrt{2}"),
    ("x\\in [1, 2]", "[1,2]"),
    ("x \\in [1, 2]", "x\\in[1,2]"),  # the prefix is removed before the spaces
    ("\\emptyset", "{}"),
    ("twenty one", "21"),
])
def test_normalization_follows_the_toolkits_strip_string(raw, normalized):
    assert qwen25_math.normalize(raw) == normalized


@pytest.mark.parametrize("response,answer", [
    ("... so the final answer is $5$. I hope it is correct.", "5"),  # Minerva style
    ("First \\boxed{3}, then \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
    ("\\boxed 7$ is the count", "7"),
    ("We get 1,234 apples and 12 pears in 3 boxes", "3"),  # the last number
    ("Therefore, the answer is: 42.", "42"),
    ("No number here.", None),
])
def test_extraction_follows_the_toolkits_extract_answer(response, answer):
    assert qwen25_math.extract(response) == answer


def test_sympy_syntax_refuses_python_that_parse_expr_would_run(tmp_path):
    sentinel = tmp_path / "ran"
    for text in (f"__import__('os').system('touch {sentinel}')", "eval(chr(49))", "exec(chr(49))",
                 "sympify(x)", "getattr(x,y)"):
        with pytest.raises(ValueError, match="refused"):
            qwen25_math._parse_sympy_syntax(text)
    assert qwen25_math._parse_sympy_syntax("x**2+1") == qwen25_math._parse_sympy_syntax("1+x**2")
    assert not qwen25_math.equal(f"__import__('os').system('touch {sentinel}')", "0")
    assert not sentinel.exists()


def test_a_comparison_past_its_deadline_is_a_timeout_not_a_verdict(monkeypatch):
    import time

    import sympy

    # Each symbolic check swallows errors, as in the toolkit, but not the deadline.
    monkeypatch.setattr(sympy, "simplify", lambda expr: time.sleep(30))
    with soft_deadlines():
        assert run_with_deadline(lambda: qwen25_math.symbolic_equal("x", "y"), 0.2) == TIMEOUT


def test_grader_lookup():
    assert get_grader("qwen25_math") is QWEN25_MATH
    assert other_grader("math_verify") is QWEN25_MATH and other_grader("qwen25_math") is MATH_VERIFY
    with pytest.raises(ValueError, match="unknown grader 'sympy'"):
        get_grader("sympy")


def samples(boxes: list[str], gold: str) -> pd.DataFrame:
    return pd.DataFrame({"problem_id": "q/1", "sample_idx": range(len(boxes)), "gold": gold,
                         "response": [f"The answer is $\\boxed{{{b}}}$." for b in boxes], "n_tokens": 9,
                         "finish_reason": "stop", "answer_type": None})


@pytest.mark.parametrize("grader", ["math_verify", "qwen25_math"])
def test_verdicts_record_the_other_graders_verdict(grader):
    verdicts = evaluate.judge(samples(["0.5", "50", "50", "7"], gold="50"), (), workers=0, timeout=60, grader=grader)
    check_verdicts(verdicts)
    by_math_verify = [False, True, True, False]
    by_qwen = [True, True, True, False]  # the toolkit's percentage rule
    chosen, other = (by_math_verify, by_qwen) if grader == "math_verify" else (by_qwen, by_math_verify)
    assert verdicts["grader"].tolist() == [grader] * 4
    assert verdicts["correct"].tolist() == chosen
    assert verdicts["other_correct"].tolist() == other
    assert verdicts["other_answer"].tolist() == ["0.5", "50", "50", "7"]


def test_answer_groups_follow_the_chosen_graders_equivalence():
    # gold 3; wrong answers 0.5, 50 and 0.5: one group under the toolkit's percentage rule
    boxes = ["0.5", "50", "3", "0.5", "3"]
    by_math_verify = evaluate.judge(samples(boxes, "3"), (), workers=0, timeout=60, grader="math_verify")
    by_qwen = evaluate.judge(samples(boxes, "3"), (), workers=0, timeout=60, grader="qwen25_math")
    assert by_math_verify["answer_group"].tolist() == ["0.5", "50", "3", "0.5", "3"]
    assert by_qwen["answer_group"].tolist() == ["0.5", "0.5", "3", "0.5", "3"]


def test_report_counts_disagreements_per_run_with_examples(tmp_path):
    from trajfusion.contracts import VERDICTS, write

    verdicts = evaluate.judge(pd.concat([samples(["0.5", "50", "7"], gold="50"),
                                         samples(["(1,3)", "[1,2]", "(1,2)"], gold="(1,2)").assign(problem_id="q/2")]),
                              (), workers=0, timeout=60)
    write(verdicts, tmp_path / "v.parquet", VERDICTS, metadata={})
    entry = {"experiment": "table1", "backbone": "smol", "variant": "tf", "checkpoint": "final",
             "benchmark": "math", "path": str(tmp_path / "v.parquet")}
    md, csv = report_graders.write_grader_parity([entry, dict(entry, experiment="again")], tmp_path, "caveat!")
    summary = pd.read_csv(csv)
    assert len(summary) == 1  # one verdict table, listed twice
    row = summary.iloc[0]
    assert (row["grader"], row["other_grader"], row["n_responses"], row["n_disagree"]) == (
        "math_verify", "qwen25_math", 6, 2)
    assert (row["only_grader_correct"], row["only_other_correct"]) == (0, 2)
    assert (row["accuracy"], row["other_accuracy"]) == (33.3333, 66.6667)  # percent, 4 decimals
    text = md.read_text()
    assert "caveat!" in text and "First 2 of 2 disagreements." in text
    assert "| `q/1` | 0 | `0.5` | `0.5` | `50` | incorrect | correct |" in text
    assert "| `q/2` | 1 | `[1,2]` | `[1,2]` | `(1,2)` | incorrect | correct |" in text


def test_config_schema_offers_the_declared_graders():
    from pathlib import Path

    import yaml

    from trajfusion.evaluate.settings import EvaluateSettings
    from trajfusion.vocabulary import GRADERS

    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "schema.yaml").read_text())
    grader = schema["properties"]["evaluation"]["properties"]["grader"]
    assert grader["enum"] == list(GRADERS) and grader["default"] == EvaluateSettings.__dataclass_fields__[
        "grader"].default == GRADERS[0]
