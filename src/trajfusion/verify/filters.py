"""Output filters (paper, Appendix A.1): drop malformed completions before verification.

Each filter names the reason a response is discarded. Precedence, first hit wins:

1. ``truncated``       finish_reason == "length" (the response hit the token limit);
2. ``unclosed_think``  the completion opens ``<think>`` and never closes it
                       (``trajfusion.trajectory.is_unclosed_think``): it has no final part
                       and cannot be split into reasoning and final part;
3. ``repetition``      any of three measurable rules (thresholds in ``DEFAULT_FILTERS``):
                       - the share of repeated word n-grams, ``1 - distinct/total`` over
                         the response's ``ngram_size``-word windows, exceeds
                         ``ngram_repeat_share`` (needs at least ``2 * ngram_size`` words);
                       - the same non-empty line occurs ``line_run`` times in a row;
                       - for responses of at least ``compression_min_chars`` characters,
                         zlib compresses the UTF-8 text below ``min_compression_ratio``
                         (catches loops without spaces, e.g. ``)))))...``);
4. ``language_switch`` characters of CJK, kana, Hangul, Cyrillic, Arabic, Hebrew, Thai or
                       Devanagari scripts (or full-width forms) number at least
                       ``foreign_min_chars`` and exceed ``foreign_share`` of all letters
                       (Latin letters plus those); Greek letters are ordinary mathematics;
5. ``no_answer``       no final answer under the teacher's ``answer_format``
                       (``trajfusion.verify.extract``): ``boxed`` needs a ``\\boxed{}`` in the
                       final part (after ``</think>``; a box only inside the reasoning does
                       not count), ``lenient`` takes any answer ``extract_answer`` finds. This
                       filter always applies, whatever ``enabled`` says: there is nothing to
                       verify;
6. ``no_reasoning``    fewer than ``min_reasoning_steps`` reasoning steps before the answer
                       (``reasoning_steps``). The reasoning is the think block of a completion
                       with ``</think>`` (a summary after it is not counted), the text before
                       the last box of one without tags, and, without a box (lenient rule
                       only), the whole text but its last step, which states the answer. A
                       step is a line or sentence (split at line breaks and at ``.``, ``!``,
                       ``?`` followed by white space) that holds a letter or digit and is
                       not just an answer lead-in ("So the final answer is $", "Answer:").
                       The default threshold 0 turns it off for hand runs and direct calls
                       (benchmarks, tests of answers such as a bare ``\\boxed{9^{9^9}}``);
                       config/paper.yaml sets the calibrated value.

Truncation comes first because it is certain and explains the other symptoms. An unclosed
think block comes next: like truncation it is a structural fact with no threshold (usually a
long-form teacher that stopped while thinking), and its count should not depend on the
heuristic thresholds below it. A missing answer comes after repetition and language switches
because they are the usual reason for it; too little reasoning comes last, as it is measured
up to the answer. Evaluation turns every optional filter off (``enabled: []``), so it judges
an unclosed or answer-only response on its lenient answer.

Calibration of the defaults on 19,973 reference solutions (MATH train+test, GSM8K train):
the repeated 10-gram share has a 99.9th percentile of 0.19 and a maximum of 0.39 (matrix
notation); no solution repeats a line more than twice in a row; solutions of 1,000+
characters compress to at least 0.176 of their size; none contains the foreign scripts.
Reasoning steps (``reasoning_steps``; GSM8K: ``count_steps`` of the text before ``####``):
1 solution has none (it opens with ``$\\boxed{97}$`` and argues after it), 1,271 (6.4%; all
MATH, one-sentence solutions such as "Adding real parts and imaginary parts separately, we
have $...=\\boxed{8+4i}$") have exactly one, 5,112 (25.6%) fewer than three; every GSM8K
solution has at least two. So config/paper.yaml sets ``min_reasoning_steps: 1``, an assumption
(the paper does not define "meaningful reasoning steps"): a higher threshold would drop sound
short solutions; 1 drops completions that only state the answer.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from trajfusion.trajectory import THINK_CLOSE, is_unclosed_think, split_trajectory
from trajfusion.verify.extract import extract_answer, extract_boxed_answer, last_box_start
from trajfusion.vocabulary import ANSWER_FORMATS
from trajfusion.vocabulary import FILTER_REASONS as REASONS  # in precedence order (above)

OPTIONAL = tuple(reason for reason in REASONS if reason != "no_answer")  # what ``enabled`` may list
DEFAULT_ANSWER_FORMAT = "lenient"
DEFAULT_FILTERS: dict[str, Any] = {
    "enabled": list(OPTIONAL),
    "ngram_size": 10,
    "ngram_repeat_share": 0.5,
    "line_run": 5,
    "min_compression_ratio": 0.1,
    "compression_min_chars": 1000,
    "foreign_share": 0.01,
    "foreign_min_chars": 4,
    "min_reasoning_steps": 0,  # off; config/paper.yaml sets the calibrated 1 (docstring)
}

_FOREIGN_RE = re.compile(
    "[\u0400-\u04ff\u0590-\u05ff\u0600-\u06ff\u0900-\u097f\u0e00-\u0e7f\u1100-\u11ff"
    "\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff00-\uffef]"
)
_LATIN_RE = re.compile("[A-Za-z]")
_STEP_SPLIT_RE = re.compile(r"\n|[.!?]\s+")
_STEP_CONTENT_RE = re.compile("[A-Za-z0-9]")
# A piece that is only an answer lead-in (anchored, so a megabyte piece fails at once).
_ANSWER_LEAD_IN_RE = re.compile(r"[^A-Za-z0-9]*(?:(?:so|thus|therefore|hence)\W*)?(?:the\s+)?(?:final\s+)?"
                                r"answer\s*(?:is|:)[^A-Za-z0-9]*", re.IGNORECASE)


def resolve_filters(filters: Mapping[str, Any] | None,
                    answer_format: str = DEFAULT_ANSWER_FORMAT) -> dict[str, Any]:
    """``DEFAULT_FILTERS`` updated with ``filters``, plus the teacher's ``answer_format``;
    unknown keys or bad values raise ValueError."""
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"answer_format must be one of {list(ANSWER_FORMATS)}, got {answer_format!r}")
    settings = dict(DEFAULT_FILTERS)
    for key, value in (filters or {}).items():
        if key not in DEFAULT_FILTERS:
            raise ValueError(f"unknown filter setting {key!r}; known: {sorted(DEFAULT_FILTERS)}")
        settings[key] = value
    enabled = settings["enabled"]
    if not isinstance(enabled, (list, tuple)) or any(r not in OPTIONAL for r in enabled):
        raise ValueError(f"filter setting 'enabled' must be a list drawn from {list(OPTIONAL)}, got {enabled!r}")
    for key in DEFAULT_FILTERS:
        if key != "enabled" and (isinstance(settings[key], bool) or not isinstance(settings[key], (int, float))):
            raise ValueError(f"filter setting {key!r} must be a number, got {settings[key]!r}")
    settings["enabled"] = [r for r in OPTIONAL if r in enabled]
    settings["answer_format"] = answer_format
    return settings


def screen_response(response: str, finish_reason: str | None, settings: Mapping[str, Any],
                    extract: Callable[[str], str | None] = extract_answer) -> tuple[str | None, str | None]:
    """``(extracted answer, filter reason or None)`` for one response.

    ``settings`` must come from ``resolve_filters``; ``extract`` is the grader's extraction.
    The answer is extracted even for filtered responses, so that analyses can see what a
    discarded response concluded.
    """
    answer = extract(response)
    enabled = settings["enabled"]
    if "truncated" in enabled and finish_reason == "length":
        return answer, "truncated"
    if "unclosed_think" in enabled and is_unclosed_think(response):
        return answer, "unclosed_think"
    if "repetition" in enabled and is_repetitive(response, settings):
        return answer, "repetition"
    if "language_switch" in enabled and switches_language(response, settings):
        return answer, "language_switch"
    if settings["answer_format"] == "boxed":
        boxed = extract_boxed_answer(response)
        if boxed is None:
            return answer, "no_answer"  # what the response concluded all the same, if anything
        answer = boxed
    if answer is None:
        return None, "no_answer"
    needed = settings["min_reasoning_steps"]
    if "no_reasoning" in enabled and needed > 0 and reasoning_steps(response) < needed:
        return answer, "no_reasoning"
    return answer, None


def apply_filters(response: str, finish_reason: str | None, settings: Mapping[str, Any] | None = None,
                  answer_format: str = DEFAULT_ANSWER_FORMAT) -> str | None:
    """The name of the first filter that discards ``response``, or None to keep it."""
    return screen_response(response, finish_reason, resolve_filters(settings, answer_format))[1]


def reasoning_steps(text: str) -> int:
    """The reasoning steps before the final answer (the module docstring, filter 6)."""
    if THINK_CLOSE in text:
        return count_steps(split_trajectory(text).reasoning)
    box = last_box_start(text)
    if box >= 0:
        return count_steps(text[:box])
    return max(count_steps(text) - 1, 0)  # the last step states the (inline) answer


def count_steps(text: str) -> int:
    """Lines and sentences of ``text`` with a letter or digit, answer lead-ins not counted."""
    return sum(1 for piece in _STEP_SPLIT_RE.split(text)
               if _STEP_CONTENT_RE.search(piece) and not _ANSWER_LEAD_IN_RE.fullmatch(piece))


def is_repetitive(text: str, settings: Mapping[str, Any]) -> bool:
    return (repeated_ngram_share(text, int(settings["ngram_size"])) > settings["ngram_repeat_share"]
            or longest_line_run(text) >= settings["line_run"]
            or (len(text) >= settings["compression_min_chars"]
                and compression_ratio(text) < settings["min_compression_ratio"]))


def repeated_ngram_share(text: str, n: int) -> float:
    """``1 - distinct/total`` over word n-grams; 0.0 for texts under ``2n`` words."""
    words = text.split()
    if len(words) < 2 * n:
        return 0.0
    windows = len(words) - n + 1
    distinct = len(set(zip(*(words[i:] for i in range(n)))))  # the n-grams, built in C
    return 1.0 - distinct / windows


def longest_line_run(text: str) -> int:
    """Length of the longest run of identical consecutive non-empty lines."""
    best = run = 0
    previous = None
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        run = run + 1 if line == previous else 1
        previous = line
        best = max(best, run)
    return best


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8", errors="replace")
    return len(zlib.compress(data)) / max(len(data), 1)


def switches_language(text: str, settings: Mapping[str, Any]) -> bool:
    foreign = len(_FOREIGN_RE.findall(text))
    if foreign < settings["foreign_min_chars"]:
        return False
    letters = foreign + len(_LATIN_RE.findall(text))
    return foreign / letters > settings["foreign_share"]
