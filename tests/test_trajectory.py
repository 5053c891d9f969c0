import pytest

from trajfusion.trajectory import Trajectory, is_unclosed_think, split_trajectory

R1_STYLE = (
    "<think>\nOkay, so I need to find the sum of the roots of x^2 - 5x + 6 = 0.\n\n"
    "By Vieta's formulas the sum is 5. Wait, let me double-check by factoring: (x-2)(x-3), roots 2 and 3.\n\n"
    "2 + 3 = 5. Yes.\n</think>\n\n"
    "**Summary.** Factoring gives roots 2 and 3, so the sum is \\boxed{5}."
)


def test_r1_style_completion_splits_at_the_closing_tag():
    reasoning, final = split_trajectory(R1_STYLE)
    assert reasoning.startswith("Okay, so I need") and reasoning.endswith("2 + 3 = 5. Yes.")
    assert "<think>" not in reasoning and "</think>" not in reasoning
    assert final == "**Summary.** Factoring gives roots 2 and 3, so the sum is \\boxed{5}."


def test_prompt_opened_block_has_only_the_closing_tag():
    # DeepSeek-R1-Distill's chat template ends the prompt with "<think>\n".
    assert split_trajectory("Let me think.\n\nSo 4.\n</think>\nThe answer is \\boxed{4}.") == Trajectory(
        "Let me think.\n\nSo 4.", "The answer is \\boxed{4}.")


def test_tag_free_completion_is_all_reasoning():
    text = "Step 1: 3 * 4 = 12.\nStep 2: 12 + 1 = 13.\nThe answer is \\boxed{13}.\n"
    assert split_trajectory(text) == Trajectory(text.strip(), "")


def test_unclosed_think_is_detected_and_refused():
    text = "<think>\nLet me compute 7 * 8. That is 56, but wait"
    assert is_unclosed_think(text) and not is_unclosed_think(R1_STYLE) and not is_unclosed_think("plain")
    with pytest.raises(ValueError, match="never closes"):
        split_trajectory(text)


def test_a_think_block_opened_by_the_prompt_belongs_to_the_response():
    from trajfusion.trajectory import assistant_turn, prompt_opens_think

    r1_prompt = "<｜begin▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜><think>\n"
    assert prompt_opens_think(r1_prompt) and not prompt_opens_think("<|im_start|>assistant\n")
    assert not prompt_opens_think("Example: <think>a</think> b\nQuestion: ...")
    cut_off = "Okay, 2 + 2. Let me count on my fingers, one, two"
    turn = assistant_turn(r1_prompt, cut_off)
    assert turn == "<think>\n" + cut_off and is_unclosed_think(turn)
    closed = assistant_turn(r1_prompt, "2 + 2 = 4.\n</think>\nThe answer is \\boxed{4}.")
    assert split_trajectory(closed) == Trajectory("2 + 2 = 4.", "The answer is \\boxed{4}.")
    assert assistant_turn("<|im_start|>assistant\n", cut_off) == cut_off
