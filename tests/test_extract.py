import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trajfusion.verify import extract_answer, normalize_answer
from trajfusion.verify.extract import MAX_ANSWER_CHARS


@pytest.mark.parametrize("text, expected", [
    ("So the result is \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
    ("First \\boxed{1}, then \\boxed{\\frac{a}{b^{2}}}", "\\frac{a}{b^{2}}"),
    ("nested \\boxed{\\sqrt{\\frac{1}{\\{2\\}}}}", "\\sqrt{\\frac{1}{\\{2\\}}}"),
    ("the set \\boxed{\\{1, 2\\}}", "\\{1,2\\}"),
    ("framed \\fbox{7}", "7"),
    ("braceless \\boxed 5$.", "5"),
    ("\\boxed{5} and then the output stopped \\boxed{", "5"),
    ("empty box \\boxed{} after \\boxed{3}", "3"),
    ("\\boxed{\\boxed{7}}", "7"),
    ("\\boxed{\\text{(A)}}", "(A)"),
])
def test_boxed(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("<think>maybe \\boxed{3}</think> The answer is 4.", "4"),
    ("<think>so \\boxed{3}</think> I am done.", "3"),
    ("<think>The answer is 2</think>\nThus \\boxed{9}.", "9"),
    ("<think>long thought with 12 apples</think>", "12"),
])
def test_think_block(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("We add them. The answer is 3.5.", "3.5"),
    ("Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.", "\\frac{1}{2}"),
    ("Final Answer: **12**", "12"),
    ("Therefore the answer is:\n\n$$42$$", "42"),
    ("The answer is 18. Some trailing words 99", "18"),
    ("answer is wrong? no. The answer is \\(x+1\\)", "x+1"),
    ("So the answer is 5. Let me verify the answer is correct.", "5"),
    ("The answer isn't 4; the answer is 6.", "6"),
])
def test_inline_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("3 apples and 4 pears\nso 7 - 2 = 5\nThat is all.", "5"),
    ("x equals\nx = -3", "-3"),
    ("it is 7-3", "3"),
    ("total 1,234 dollars", "1234"),
    ("ratio 3/4", "3/4"),
    ("12 first line\n\nno digits\nstill none\nnor here", None),
    ("no numbers at all", None),
    ("", None),
])
def test_last_number_rule(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("raw, expected", [
    ("$\\dfrac{3}{4}$", "\\frac{3}{4}"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
    ("1,000", "1000"),
    ("-12,345.5", "-12345.5"),
    ("1, 234", "1,234"),
    ("x + 1", "x+1"),
    ("\\pi r^2", "\\pi r^2"),
    ("\\$18.", "18"),
    ("5\\text{ cm}", "5\\text{cm}"),
    ("90^\\circ", "90^\\circ"),
    ("\\text{Evelyn}", "Evelyn"),
    ("\\(\\frac12\\)", "\\frac12"),
    ("3\\,000", "3000"),
    ("\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", "\\begin{pmatrix}-1&0 \\\\ 0&-1 \\end{pmatrix}"),
    ("x\\!+\\;y", "x+y"),
    ("  42 .", "42"),
])
def test_normalize(raw, expected):
    assert normalize_answer(raw) == expected


def test_overlong_answer_is_rejected():
    assert extract_answer("\\boxed{" + "1" * (MAX_ANSWER_CHARS + 1) + "}") is None
    assert extract_answer("\\boxed{" + "1" * MAX_ANSWER_CHARS + "}") == "1" * MAX_ANSWER_CHARS


@pytest.mark.parametrize("name, text", [
    ("unclosed boxes", "\\boxed{" * 100_000),
    ("nested braces", "\\boxed" + "{" * 100_000 + "1" + "}" * 100_000),
    ("megabyte prose", "word 123 " * 120_000),
    ("unclosed long boxes", ("\\boxed{" + "x" * 50) * 20_000),
    ("repeated anchor", "the answer is " * 80_000),
    ("one megabyte line of braces", "{" * 1_000_000 + "\\boxed{2}"),
])
def test_adversarial_input_is_fast(name, text):
    start = time.perf_counter()
    extract_answer(text)
    assert time.perf_counter() - start < 3.0, name


def test_unclosed_box_does_not_hide_an_earlier_answer():
    assert extract_answer("\\boxed{7} " + "\\boxed{" * 10_000) == "7"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("\\boxed{}fb $.answer is 0123-,\n</think>")), max_size=200))
def test_extract_never_fails(text):
    answer = extract_answer(text)
    assert answer is None or (isinstance(answer, str) and 0 < len(answer) <= MAX_ANSWER_CHARS)
