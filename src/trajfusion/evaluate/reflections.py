"""Counting the reflections of a response (``count_reflections``) and, as a second and
separately labelled series, its generic self-correction markers (``count_markers``).

A reflection is an occurrence of one of the error-recognition phrases of the phrase
repository in use (the `error_recognition` list of the phrase file, by default the paper's
Table 5: "Wait... that doesn't seem right. Let's try again.", ...): the phrases fusion puts
between a fused error and the next trajectory, the paper's "reflection tokens" (Figure 4).
A phrase matches as a whole; "Wait, I need 5 minutes" is not a reflection.

A marker is an occurrence of one of ``GENERIC_MARKERS`` ("wait", "hmm", "hold on", ...)
outside the reflections found in the same text, so the two series never count the same
characters: the marker words inside a full Table 5 phrase belong to the reflection.

Matching (both series) is case-insensitive, treats typographic apostrophes as ASCII ones and
any run of whitespace as one space, and requires the match not to start or end inside a
word. Matches are counted without overlap, scanning left to right and preferring the longest
phrase at each position, so a phrase that contains another one counts once.
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
def phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern:
    """One alternation over all phrases, longest first, each bounded by non-word characters."""
    unique = sorted({_normalize(p).strip().lower() for p in phrases if p.strip()}, key=lambda p: (-len(p), p))
    if not unique:
        return re.compile(r"(?!)")  # matches nothing
    bodies = [r"\s+".join(re.escape(word) for word in p.split()) for p in unique]
    return re.compile(r"(?<!\w)(?:" + "|".join(bodies) + r")(?!\w)", re.IGNORECASE)


def count_series(text: str, phrases: tuple[str, ...]) -> tuple[int, int]:
    """(reflections, markers) of ``text`` for the error-recognition ``phrases`` (rule in the
    module docstring). A reflection is blanked out before markers are searched."""
    text = _normalize(text)
    reflections = 0
    pieces, end = [], 0
    for match in phrase_pattern(phrases).finditer(text):
        reflections += 1
        pieces += [text[end:match.start()], " " * (match.end() - match.start())]
        end = match.end()
    rest = "".join(pieces) + text[end:]
    return reflections, sum(1 for _ in phrase_pattern(GENERIC_MARKERS).finditer(rest))


def count_reflections(text: str, phrases: tuple[str, ...]) -> int:
    """Occurrences of the error-recognition ``phrases`` in ``text``."""
    return count_series(text, phrases)[0]


def count_markers(text: str, phrases: tuple[str, ...]) -> int:
    """Occurrences of ``GENERIC_MARKERS`` in ``text`` outside its reflections."""
    return count_series(text, phrases)[1]
