"""The few-shot chain-of-thought templates of the ICL baselines render the Qwen2.5-Math
toolkit's `cot` prompt (evaluation/utils.py construct_prompt) with its demonstrations."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from trajfusion.io import InputError
from trajfusion.templates import load_template

DEMOS = yaml.safe_load((resources.files("trajfusion") / "resources" / "few_shot.yaml").read_text())
PROBLEM = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. " \
          "How many clips did Natalia sell altogether in April and May?"


def toolkit_prompt(demos: list[dict], question: str) -> str:
    """construct_prompt for prompt_type "cot": ("Question: {input}\\nAnswer: ", "{output}", "\\n\\n\\n")."""
    blocks = [f"Question: {d['question']}\nAnswer: {d['answer']}" for d in demos]
    return "\n\n\n".join([*blocks, f"Question: {question}\nAnswer: "]).strip(" ")


def test_gsm8k_template_is_the_toolkits_8_shot_prompt():
    prompt = load_template("few_shot_cot_gsm8k").render_prompt(PROBLEM)
    assert prompt == toolkit_prompt(DEMOS["gsm8k"], PROBLEM)
    assert prompt.startswith("Question: There are 15 trees in the grove. Grove workers will plant trees in the grove "
                             "today.")
    assert prompt.count("Question: ") == 9 and prompt.count("The answer is") == 8
    assert prompt.endswith(f"The answer is 8.\n\n\nQuestion: {PROBLEM}\nAnswer:")


def test_math_template_is_the_toolkits_4_shot_prompt_and_leaves_braces_inert():
    problem = "Compute $\\frac{1}{2} + \\frac{1}{3}$ where {input} and {system} are literal."
    prompt = load_template("few_shot_cot_math").render_prompt(problem)
    assert prompt == toolkit_prompt(DEMOS["math"], problem)
    assert len(DEMOS["math"]) == 4 and prompt.count("\n\n\nQuestion: ") == 4
    assert "= \\boxed{\\frac{211}{243}}$.\nThe answer is" in prompt
    assert "a+d=\\boxed{0}$.\nThe answer is 0\n\n\nQuestion: Compute" in prompt
    assert prompt.endswith("{input} and {system} are literal.\nAnswer:")


def test_a_response_is_cut_at_the_next_made_up_question():
    template = load_template("few_shot_cot_gsm8k")
    response = (" Natalia sold 48 / 2 = 24 clips in May. So 48 + 24 = 72. The answer is 72.\n\n"
                "Question: Weng earns $12 an hour.\nAnswer: 12 / 60 = 0.2. The answer is 10.")
    assert template.cut(response) == " Natalia sold 48 / 2 = 24 clips in May. So 48 + 24 = 72. The answer is 72."
    assert template.cut("The answer is 72.") is None
    assert load_template("deepseek_math").cut(response) is None  # other templates cut nothing


def test_a_few_shot_template_needs_its_demonstrations(tmp_path):
    bad = tmp_path / "templates.yaml"
    bad.write_text(yaml.safe_dump({"many": {"kind": "few_shot", "prompt": "Q: {input}\nA:",
                                            "shots": {"set": "gsm8k", "n": 99}},
                                   "unset": {"kind": "few_shot", "prompt": "Q: {input}\nA:"}}))
    with pytest.raises(InputError, match=r"template 'many': field 'shots' asks for 99 examples of set 'gsm8k'.* has 8"):
        load_template("many", bad)
    with pytest.raises(InputError, match=r"template 'unset': field 'shots' must be \{set: NAME, n: COUNT\}"):
        load_template("unset", bad)
