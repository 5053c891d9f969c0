"""Fusion of long-form (R1-style) teacher completions: one think block, reasoning only inside it,
y*'s own final part only with keep_final; the spans training shortens a fused example with."""

from __future__ import annotations

import pandas as pd
import pytest

from trajfusion.fuse import FuseSettings, fuse_frame, fuse_text, load_phrases, parse_alpha
from trajfusion.fused_text import render_fused, span_problem, without_last_errors
from trajfusion.io import InputError
from trajfusion.trajectory import split_trajectory

ERR, OK_, CERT = "ERR-PHRASE", "OK-PHRASE", "CERT-PHRASE"


def r1_completion(answer: str, wrong_turn: str = "", opened: bool = True) -> str:
    """A DeepSeek-R1-Distill-style completion: several paragraphs of thinking, then a summary
    with the boxed answer after </think>; ``opened=False`` is a block the prompt opened."""
    thinking = (
        "Okay, so I need to find how many positive divisors 36 has. Let me start by factoring it.\n\n"
        "36 = 2^2 * 3^2, so each divisor is 2^a * 3^b with 0 <= a <= 2 and 0 <= b <= 2.\n\n"
        f"Wait, let me count the pairs (a, b) carefully. {wrong_turn}There are 3 choices for a and 3 for b.\n\n"
        f"So the count is {answer}. Let me double-check by listing: 1, 2, 3, 4, 6, 9, 12, 18, 36.")
    summary = ("**Summary.** Writing 36 = 2^2 * 3^2, the number of divisors is (2+1)(2+1).\n\n"
               f"Therefore, the number of positive divisors is \\boxed{{{answer}}}.")
    return f"{'<think>' if opened else ''}\n{thinking}\n</think>\n\n{summary}"


def verified(responses: dict[int, tuple[str, bool, str]], pid: str = "deepmath/0007") -> pd.DataFrame:
    return pd.DataFrame([{"problem_id": pid, "sample_idx": idx, "problem": "How many positive divisors has 36?",
                          "response": text, "n_tokens": 100 + idx, "finish_reason": "stop", "gold": "9",
                          "answer": answer, "correct": correct, "status": "ok",
                          "answer_group": None if correct else answer}
                         for idx, (text, correct, answer) in responses.items()])


@pytest.fixture
def phrases(tmp_path):
    path = tmp_path / "phrases.yaml"
    path.write_text(f"error_recognition: [{ERR}]\nsuccess_confirmation: [{OK_}]\ncertainty: [{CERT}]\n")
    return load_phrases(path)


def fuse(df, phrases, k_max=4, keep_final=False, certainty_prob=0.0):
    settings = FuseSettings(k_max=k_max, alpha=parse_alpha("4") if k_max else None, strategy="highdiv", seed=0,
                            certainty_prob=certainty_prob, keep_final=keep_final)
    rows, _ = fuse_frame(df, settings, phrases)
    return rows


def long_form_table(opened: bool = True) -> pd.DataFrame:
    return verified({0: (r1_completion("9", opened=opened), True, "9"),
                     1: (r1_completion("6", "Hmm, maybe only the even ones count. ", opened), False, "6"),
                     2: (r1_completion("8", "I think 36 itself should not count. ", opened), False, "8")})


@pytest.mark.parametrize("opened", [True, False], ids=["think-in-completion", "think-opened-by-prompt"])
def test_long_form_fusion_has_one_think_block_with_reasoning_only(phrases, opened):
    row, = fuse(long_form_table(opened), phrases)
    text = row["messages"][1]["content"]
    assert text.count("<think>") == 1 and text.count("</think>") == 1
    assert text.startswith("<think>\nOkay, so I need") and text.endswith("\n</think>\nThe answer is \\boxed{9}.")
    assert "Summary" not in text and text.count("\\boxed{") == 1  # no teacher's summary without keep_final
    wrong_6, wrong_8 = text.index("even ones count"), text.index("should not count")
    first_err, success = text.index(ERR), text.index(OK_)
    correct = text.index("So the count is 9")
    assert row["error_indices"] == [1, 2]
    assert wrong_6 < first_err < wrong_8 < text.index(ERR, first_err + 1) < correct < success < text.index("</think>")


def test_keep_final_puts_only_the_correct_summary_after_think(phrases):
    row, = fuse(long_form_table(), phrases, keep_final=True)
    text = row["messages"][1]["content"]
    assert text.count("<think>") == 1 and text.count("</think>") == 1
    before, after = text.split("</think>")
    assert after == ("\n**Summary.** Writing 36 = 2^2 * 3^2, the number of divisors is (2+1)(2+1).\n\n"
                     "Therefore, the number of positive divisors is \\boxed{9}.\nThe answer is \\boxed{9}.")
    assert "Summary" not in before and "\\boxed{6}" not in text and "\\boxed{8}" not in text


def test_rft_sample_of_long_form_completion_is_built_the_same_way(phrases):
    for keep_final in (False, True):
        row, = fuse(long_form_table(), phrases, k_max=0, keep_final=keep_final)
        text = row["messages"][1]["content"]
        assert text.count("<think>") == 1 and text.count("</think>") == 1
        assert ERR not in text and OK_ not in text and "even ones" not in text
        assert ("Summary" in text.split("</think>")[1]) is keep_final
        assert row["error_spans"] == [] and row["success_span"] is None


def test_tag_free_completions_keep_todays_layout(phrases):
    df = verified({0: ("Divisors: (2+1)(2+1) = 9.\n\\boxed{9}", True, "9"),
                   1: ("Only even divisors: 6.", False, "6")})
    for keep_final in (False, True):  # a tag-free completion has no final part to keep
        row, = fuse(df, phrases, keep_final=keep_final)
        assert row["messages"][1]["content"] == ("<think>\nOnly even divisors: 6.\nERR-PHRASE\n"
                                                 "Divisors: (2+1)(2+1) = 9.\n\\boxed{9}\nOK-PHRASE\n</think>\n"
                                                 "The answer is \\boxed{9}.")


def test_unclosed_think_names_the_problem_and_sample(phrases):
    df = long_form_table()
    df.loc[2, "response"] = "<think>\nLet me think about 36 for a very long time and never stop"
    with pytest.raises(InputError, match=r"problem_id='deepmath/0007', sample_idx=2: field 'response': .*never "
                                         r"closes.*filtered:unclosed_think"):
        fuse(df, phrases)
    with pytest.raises(ValueError, match="never closes"):
        fuse_text([], df.loc[2, "response"], "9")


@pytest.mark.parametrize("certainty_prob", [0.0, 1.0])
def test_removing_the_last_errors_equals_fusing_fewer(phrases, certainty_prob):
    errors = [r1_completion(str(a), f"Attempt {a} goes wrong. ") for a in (6, 8, 12)]
    correct = r1_completion("9")
    phrase_list, certainty = ["P1", "P2", "P3"], CERT if certainty_prob else None
    df = verified({0: (correct, True, "9"), **{i + 1: (e, False, str(a)) for i, (e, a) in
                                              enumerate(zip(errors, (6, 8, 12)))}})
    row, = fuse(df, phrases, certainty_prob=certainty_prob)
    text = row["messages"][1]["content"]
    assert row["n_errors"] == 3 and span_problem(text, row["error_spans"], row["success_span"]) is None
    fused_errors = [errors[i - 1] for i in row["error_indices"]]
    assert text == fuse_text(fused_errors, correct, "9", [ERR] * 3, OK_, certainty)
    assert without_last_errors(text, row["error_spans"], row["success_span"], 0) == fuse_text([], correct, "9")
    fused = render_fused([split_trajectory(e) for e in fused_errors], split_trajectory(correct), "9", phrase_list,
                         OK_, certainty)
    for keep in range(3, -1, -1):  # the same phrases for the errors left; none without errors
        expected = fuse_text(fused_errors[:keep], correct, "9", phrase_list[:keep], OK_ if keep else None,
                             certainty if keep else None)
        assert without_last_errors(fused.text, fused.error_spans, fused.success_span, keep) == expected
