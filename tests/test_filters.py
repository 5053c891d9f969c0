import pytest

from trajfusion.verify import DEFAULT_FILTERS, apply_filters, resolve_filters
from trajfusion.verify.filters import compression_ratio, longest_line_run, repeated_ngram_share, screen_response

GOOD = (
    "We need the number of ways to choose 2 of the 5 books. Order does not matter, so we use "
    "a binomial coefficient: $\\binom{5}{2} = \\frac{5 \\cdot 4}{2} = 10$. Each choice can be "
    "wrapped in one of 3 colours of paper, which gives $10 \\cdot 3 = 30$ gift sets. We check "
    "the count by listing the pairs that contain the first book: there are 4 of them, and the "
    "remaining pairs follow the same pattern.\n"
    "Therefore, the final answer is $\\boxed{30}$."
)
LOOP = "Let me recompute the sum of the first two terms of the sequence again carefully. " * 30


def test_clean_response_is_kept():
    assert apply_filters(GOOD, "stop") is None
    assert screen_response(GOOD, "stop", resolve_filters(None)) == ("30", None)


def test_truncated():
    assert apply_filters(GOOD, "length") == "truncated"
    assert apply_filters(GOOD, None) is None


def test_repetition_by_ngrams():
    assert repeated_ngram_share(LOOP, 10) > 0.9
    assert repeated_ngram_share(GOOD, 10) == 0.0
    assert apply_filters(GOOD + "\n" + LOOP + " \\boxed{3}", "stop") == "repetition"


def test_repetition_by_identical_lines():
    lines = GOOD + "\n" + "\n".join(["x = 2"] * 5) + "\n\\boxed{2}"
    assert longest_line_run(lines) == 5
    assert apply_filters(lines, "stop") == "repetition"
    four = GOOD + "\n" + "\n".join(["x = 2"] * 4) + "\n\\boxed{2}"
    assert apply_filters(four, "stop") is None


def test_repetition_without_spaces_by_compression():
    degenerate = GOOD + ")" * 6000
    assert repeated_ngram_share(degenerate, 10) == 0.0
    assert compression_ratio(degenerate) < DEFAULT_FILTERS["min_compression_ratio"]
    assert apply_filters(degenerate, "stop") == "repetition"
    assert compression_ratio(GOOD * 2) > DEFAULT_FILTERS["min_compression_ratio"]


def test_language_switch():
    mixed = GOOD.replace("We check", "我们现在检查一下这个计数是否正确。 We check")
    assert apply_filters(mixed, "stop") == "language_switch"


def test_greek_and_a_stray_character_are_not_a_switch():
    assert apply_filters(GOOD + " Here α = π/2 and θ → 0.", "stop") is None
    assert apply_filters(GOOD.replace("We check", "(注) We check"), "stop") is None


def test_no_answer():
    assert apply_filters("I cannot solve this problem.", "stop") == "no_answer"
    assert apply_filters("I cannot solve this problem. The answer is 4.", "stop") is None


def test_precedence():
    looping_truncated = LOOP * 3
    assert apply_filters(looping_truncated, "length") == "truncated"
    assert apply_filters(looping_truncated, "stop") == "repetition"
    chinese_loop = "这是一个很长的重复句子。" * 50
    assert apply_filters(chinese_loop + " " + LOOP, "stop") == "repetition"
    assert apply_filters("我们不知道答案是什么。 We do not know.", "stop") == "language_switch"


def test_settings_disable_and_override():
    text = GOOD + "\n" + LOOP + " \\boxed{3}"
    assert apply_filters(text, "stop", {"enabled": ["truncated", "language_switch"]}) is None
    assert apply_filters(text, "length", {"enabled": []}) is None
    assert apply_filters(text, "stop", {"ngram_repeat_share": 0.99, "min_compression_ratio": 0.0}) is None
    assert apply_filters("no answer here", "stop", {"enabled": []}) == "no_answer"


@pytest.mark.parametrize("bad", [{"ngram_size_typo": 3}, {"enabled": ["no_answer"]},
                                 {"enabled": "truncated"}, {"line_run": "5"}, {"foreign_share": True}])
def test_bad_settings(bad):
    with pytest.raises(ValueError):
        resolve_filters(bad)
