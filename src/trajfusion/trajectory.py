"""A teacher completion split into its reasoning and its final part (long-form teachers).

A completion with a ``</think>`` tag: the reasoning is the text before the first ``</think>``
(without a leading ``<think>``: chat templates such as DeepSeek-R1-Distill's open the block in
the prompt, so the completion often carries only the closing tag), the final part is what follows
it (the summary and the boxed answer). A completion without tags is all reasoning, with an empty
final part. A completion that opens ``<think>`` and never closes it cannot be split: the
``unclosed_think`` filter drops it before verification.

Some chat templates (DeepSeek-R1-Distill's) open the think block in the prompt. The sampling
stage then stores the response as the assistant turn, the prompt's opening tag included
(``assistant_turn``), so that a response which never closes the block is seen as unclosed.
"""

from __future__ import annotations

from typing import NamedTuple

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


class Trajectory(NamedTuple):
    reasoning: str
    final: str


def is_unclosed_think(text: str) -> bool:
    """True when ``text`` opens a think block and never closes it."""
    return THINK_OPEN in text and THINK_CLOSE not in text


def split_trajectory(text: str) -> Trajectory:
    """``text`` as (reasoning, final part), both stripped; ValueError on an unclosed think block."""
    if is_unclosed_think(text):
        raise ValueError(f"the completion opens {THINK_OPEN} and never closes it")
    if THINK_CLOSE not in text:
        return Trajectory(text.strip(), "")
    reasoning, final = text.split(THINK_CLOSE, 1)
    reasoning = reasoning.strip()
    if reasoning.startswith(THINK_OPEN):
        reasoning = reasoning[len(THINK_OPEN):].strip()
    return Trajectory(reasoning, final.strip())


def prompt_opens_think(prompt: str) -> bool:
    """True when ``prompt`` ends inside a think block (its template opened it for the model)."""
    return prompt.rfind(THINK_OPEN) > prompt.rfind(THINK_CLOSE)


def assistant_turn(prompt: str, completion: str) -> str:
    """``completion`` as the assistant turn: after the prompt's opening tag (and the whitespace
    after it) when the prompt opened a think block, else unchanged."""
    if not prompt_opens_think(prompt):
        return completion
    return prompt[prompt.rfind(THINK_OPEN):] + completion
