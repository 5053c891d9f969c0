"""The fused assistant text of Appendix A.2: its layout, the character spans of its removable
parts, and the same text without its last fused errors.

Trajectories come split (``trajfusion.trajectory.split_trajectory``): only their reasoning goes
inside the one think block, so a long-form teacher's own ``<think>``/``</think>`` tags never
reach the fused text. Parts are joined by "\\n":

    <think> | error 1 reasoning | error phrase | ... | y* reasoning | success phrase | [certainty phrase]
    | </think> | [y*'s final part, with keep_final] | The answer is \\boxed{answer}.

Without errors there are no phrases (vanilla RFT). The spans let training remove the last fused
errors without re-fusing: ``error_spans[i]`` is the [start, end) range of error i's reasoning and
phrase with the newline after them, ``success_span`` the range of the newline before the success
phrase through the last phrase. Deleting the last m error spans gives the text fusion renders
with the first k - m errors and the same phrases; deleting all of them and the success span
gives the RFT text (``without_last_errors``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from trajfusion.trajectory import THINK_CLOSE, THINK_OPEN, Trajectory

Span = tuple[int, int]


class FusedText(NamedTuple):
    text: str
    error_spans: list[Span]
    success_span: Span | None


def answer_line(answer: str) -> str:
    return f"The answer is \\boxed{{{answer}}}."


def render_fused(errors: Sequence[Trajectory], correct: Trajectory, answer: str, error_phrases: Sequence[str],
                 success_phrase: str | None, certainty_phrase: str | None = None,
                 keep_final: bool = False) -> FusedText:
    """The fused text and its spans; ``errors`` in fusion order, one phrase per error."""
    if len(error_phrases) != len(errors):
        raise ValueError("one error-recognition phrase is needed per fused error")
    pieces: list[str] = []
    offset = 0

    def add(*texts: str) -> tuple[int, int]:
        """Append pieces; return (start of the first, end of the last)."""
        nonlocal offset
        start = offset
        for text in texts:
            pieces.append(text)
            offset += len(text) + 1  # the joining newline
        return start, offset - 1

    add(THINK_OPEN)
    error_spans = [(add(error.reasoning, phrase)[0], offset) for error, phrase in zip(errors, error_phrases)]
    reasoning_end = add(correct.reasoning)[1]
    success_span = None
    if errors:
        success_span = (reasoning_end, add(*filter(None, (success_phrase, certainty_phrase)))[1])
    add(THINK_CLOSE)
    if keep_final and correct.final:
        add(correct.final)
    add(answer_line(answer))
    return FusedText("\n".join(pieces), error_spans, success_span)


def without_last_errors(text: str, error_spans: Sequence[Span], success_span: Span | None, n_keep: int) -> str:
    """``text`` with only its first ``n_keep`` fused errors (and no phrases when none is left)."""
    cuts = list(error_spans[n_keep:])
    if n_keep == 0 and success_span is not None:
        cuts.append(success_span)
    for start, end in sorted(cuts, reverse=True):
        text = text[:start] + text[end:]
    return text


def span_problem(text: str, error_spans, success_span) -> str | None:
    """What is wrong with the spans of ``text`` (None if nothing): ordered, disjoint, inside it."""
    spans = [*error_spans, *([success_span] if success_span is not None else [])]
    previous_end = 0
    for span in spans:
        if not (isinstance(span, (list, tuple)) and len(span) == 2 and all(type(x) is int for x in span)):
            return f"{span!r} is not a [start, end] pair of integers"
        start, end = span
        if not previous_end <= start <= end <= len(text):
            return f"[{start}, {end}] is not an ordered range after {previous_end} within the {len(text)} characters"
        previous_end = end
    return None
