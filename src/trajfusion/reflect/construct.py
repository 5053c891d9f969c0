"""A micro-reflective trajectory's parts, the reasons one is rejected, and its assistant text.

Layout (tag names are settings), parts joined by "\\n":

    <think> | y- steps 1..f-1 (the kept prefix, exact text) | <analysis> | diagnosis | </analysis>
    | <reconstruction> | corrected continuation | </reconstruction> | </think> | The answer is \\boxed{a}.

as fusion's layout (``trajfusion.fused_text``): one think block, then the answer line, so that
training and evaluation read it like a fused example. With f = 1 the prefix is empty and left out.
``prefix_span`` is the prefix's [start, end) character range in the text (empty at f = 1).
"""

from __future__ import annotations

from typing import NamedTuple

from trajfusion.fused_text import answer_line
from trajfusion.trajectory import THINK_CLOSE, THINK_OPEN

# Why a candidate yields no trajectory; the summary counts each (zeros included), in this order.
RULE_REJECTIONS = ("no_contradiction", "empty_continuation")
MODEL_REJECTIONS = ("missing_tags", "duplicate_tags", "nested_tags", "no_step", "step_out_of_range",
                    "empty_analysis", "empty_reconstruction", "no_answer", "wrong_answer", "verify_timeout",
                    "verify_error")
REJECTIONS = {"rule": RULE_REJECTIONS, "model": MODEL_REJECTIONS}


class Construction(NamedTuple):
    failure_step: int  # 1-based step of y- where it first goes wrong
    n_steps: int  # steps of y-
    prefix: str  # y- steps before the failure step, exact text (may be empty)
    analysis: str
    reconstruction: str
    answer: str  # the final answer the text ends in


class Rejection(NamedTuple):
    reason: str


class Rendered(NamedTuple):
    text: str
    prefix_span: tuple[int, int]


def render(c: Construction, analysis_tag: str, reconstruction_tag: str) -> Rendered:
    head = f"{THINK_OPEN}\n"
    start = len(head)
    body = [c.prefix] if c.prefix else []
    body += [f"<{analysis_tag}>", c.analysis, f"</{analysis_tag}>",
             f"<{reconstruction_tag}>", c.reconstruction, f"</{reconstruction_tag}>", THINK_CLOSE,
             answer_line(c.answer)]
    return Rendered(head + "\n".join(body), (start, start + len(c.prefix)))
