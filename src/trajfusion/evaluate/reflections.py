"""Counting the reflections of a response (``count_reflections``); the phrases come from
``trajfusion.phrases.all_phrases``.

The rule: the phrases are every string listed under any top-level key of the phrase file
(``resources/phrases.yaml``: the paper's Table 5 error-recognition, success and certainty
phrases) plus the generic self-correction markers in ``GENERIC_MARKERS`` ("wait", "hmm",
"let's try again", ...). Matching is case-insensitive, treats typographic apostrophes as
ASCII ones and any run of whitespace as one space, and requires the match not to start or
end inside a word. Matches are counted without overlap, scanning left to right and
preferring the longest phrase at each position, so a full Table 5 phrase such as "Wait...
that doesn't seem right. Let's try again." counts once, not once per marker it contains.
"""

from __future__ import annotations

import re
from functools import lru_cache

GENERIC_MARKERS = (
    "wait", "hmm", "hold on", "on second thought",
    "let's try again", "let me try again", "let's try another", "let me try another",
    "let me recheck", "let me re-check", "let's recheck", "let's re-check", "let me double-check",
    "let me reconsider", "let's reconsider", "let me re-evaluate", "let's re-evaluate",
    "i made a mistake", "that's not right", "that is not right", "that doesn't seem right",
)


def _normalize(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'")


@lru_cache(maxsize=8)
def reflection_pattern(phrases: tuple[str, ...]) -> re.Pattern:
    """One alternation over all phrases, longest first, each bounded by non-word characters."""
    unique = sorted({_normalize(p).strip().lower() for p in phrases}, key=lambda p: (-len(p), p))
    bodies = [r"\s+".join(re.escape(word) for word in p.split()) for p in unique]
    return re.compile(r"(?<!\w)(?:" + "|".join(bodies) + r")(?!\w)", re.IGNORECASE)


def count_reflections(text: str, phrases: tuple[str, ...]) -> int:
    """Occurrences of ``phrases`` and ``GENERIC_MARKERS`` in ``text`` (rule in the module docstring)."""
    return sum(1 for _ in reflection_pattern((*phrases, *GENERIC_MARKERS)).finditer(_normalize(text)))
