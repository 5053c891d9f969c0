import pytest

from trajfusion.verify import DEFAULT_FILTERS, apply_filters, resolve_filters
from trajfusion.verify.filters import (
    compression_ratio,
    count_steps,
    longest_line_run,
    reasoning_steps,
    repeated_ngram_share,
    screen_response,
)

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
                                 {"enabled": "truncated"}, {"line_run": "5"}, {"foreign_share": True},
                                 {"min_reasoning_steps": "1"}, {"enabled": ["no_reasonin"]}])
def test_bad_settings(bad):
    with pytest.raises(ValueError):
        resolve_filters(bad)


def test_bad_answer_format():
    with pytest.raises(ValueError, match="answer_format"):
        resolve_filters(None, "box")


# --- teacher-side answer rule, reasoning steps, unclosed think blocks (paper A.1) ---------------

# A GSM8K-style completion of a teacher that does not box (Qwen2.5-Math-Instruct boxes; many base
# and small chat models end with "The answer is ...").
UNBOXED = ("Weng earns 12/60 = $0.2 per minute.\n"
           "Working 50 minutes, she earned 0.2 x 50 = $10.\n"
           "The answer is 10.")
# DeepSeek-R1-Distill style: a think block of several paragraphs, then a summary with the box.
R1_STYLE = (
    "<think>\nOkay, so I need to find the sum of the roots of x^2 - 5x + 6 = 0. "
    "Hmm, let me recall Vieta's formulas.\n\n"
    "For ax^2 + bx + c = 0 the sum of the roots is -b/a, so here it is -(-5)/1 = 5.\n\n"
    "Wait, let me double-check by factoring: x^2 - 5x + 6 = (x - 2)(x - 3), so the roots are 2 and 3. "
    "2 + 3 = 5. Yes, that matches.\n</think>\n\n"
    "**Summary.** By Vieta's formulas (or by factoring, roots 2 and 3) the sum of the roots is "
    "$\\boxed{5}$."
)
R1_BOX_IN_REASONING_ONLY = R1_STYLE.replace("2 + 3 = 5. Yes", "2 + 3 = \\boxed{5}. Yes").replace(
    "$\\boxed{5}$.", "5.")
UNCLOSED = ("<think>\nOkay, let me compute 7 * 8 first.\n\n"
            "7 * 8 = 56, and then I add 4 to get 60.\n\nWait, the problem asks for")
CALIBRATED = {"min_reasoning_steps": 1}  # the pipeline configs' value


def test_boxed_rule_needs_a_final_box():
    boxed = resolve_filters(None, "boxed")
    assert screen_response(UNBOXED, "stop", boxed) == ("10", "no_answer")  # the conclusion is kept for analyses
    assert screen_response(UNBOXED, "stop", resolve_filters(None)) == ("10", None)
    assert screen_response(GOOD, "stop", boxed) == ("30", None)


def test_boxed_rule_reads_the_summary_after_the_think_block():
    assert screen_response(R1_STYLE, "stop", resolve_filters(CALIBRATED, "boxed")) == ("5", None)
    # a box only inside the reasoning is an intermediate result, not a final answer
    assert apply_filters(R1_BOX_IN_REASONING_ONLY, "stop", CALIBRATED, answer_format="boxed") == "no_answer"
    assert apply_filters(R1_BOX_IN_REASONING_ONLY, "stop", CALIBRATED, answer_format="lenient") is None


def test_answer_only_completions_have_no_reasoning():
    for answer_format in ("boxed", "lenient"):
        assert apply_filters("\\boxed{5}", "stop", CALIBRATED, answer_format=answer_format) == "no_reasoning"
        assert apply_filters("The final answer is $\\boxed{5}$.", "stop", CALIBRATED,
                             answer_format=answer_format) == "no_reasoning"
        assert apply_filters("<think>\n\n</think>\n\nThe answer is \\boxed{5}.", "stop", CALIBRATED,
                             answer_format=answer_format) == "no_reasoning"
    assert apply_filters("The answer is 10.", "stop", CALIBRATED) == "no_reasoning"
    assert apply_filters("\\boxed{5}", "stop") is None  # threshold 0: the filter is off


def test_short_sound_solutions_keep_their_reasoning():
    # a one-sentence MATH reference solution: one step before the box
    one_sentence = ("Adding real parts and imaginary parts separately, we have "
                    "$(2-(-4)+0+2)+(1+0-1+4)i=\\boxed{8+4i}$.")
    assert reasoning_steps(one_sentence) == 1
    assert apply_filters(one_sentence, "stop", CALIBRATED, answer_format="boxed") is None
    assert reasoning_steps(UNBOXED) == 2  # without a box, the last step states the answer
    assert reasoning_steps(R1_STYLE) == 6  # the think block's sentences; the summary does not count
    assert count_steps("Step 1: 3 * 4 = 12.\nStep 2: 12 + 1 = 13.\n\\[\nThe answer is") == 2
    assert apply_filters(GOOD, "stop", {"min_reasoning_steps": 6}) == "no_reasoning"


def test_unclosed_think_block():
    assert screen_response(UNCLOSED, "stop", resolve_filters(None)) == ("60", "unclosed_think")
    assert apply_filters(UNCLOSED, "stop", answer_format="boxed") == "unclosed_think"
    assert apply_filters(UNCLOSED, "length") == "truncated"
    assert apply_filters(UNCLOSED + " " + LOOP, "stop") == "unclosed_think"  # before the heuristic filters
    assert apply_filters(UNCLOSED, "stop", {"enabled": []}) is None  # evaluation: judged on its lenient answer
