"""Gold-answer extraction and normalisation rules for the bundled datasets."""

from __future__ import annotations

import re

import numpy as np

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+/\d+)")
_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` or ``\\fbox{...}`` in ``text``, or None.

    Braces nest; escaped braces (``\\{``, ``\\}``) are literal characters, as in TeX.
    The braceless form ``\\boxed 2`` (three MATH train solutions use it) yields ``2``.
    """
    start = max(text.rfind(cmd) for cmd in _BOX_COMMANDS)
    if start < 0:
        return None
    command = next(cmd for cmd in _BOX_COMMANDS if text.startswith(cmd, start))
    pos = start + len(command)
    while pos < len(text) and text[pos] == " ":
        pos += 1
    if pos >= len(text):
        return None
    if text[pos] != "{":
        token = re.match(r"[^\s$]+", text[pos:])
        return token.group(0).rstrip(".,") if token else None
    return _braced_group(text, pos)


def _braced_group(text: str, open_pos: int) -> str | None:
    depth = 0
    pos = open_pos
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            pos += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[open_pos + 1:pos]
        pos += 1
    return None


def gsm8k_final_answer(rationale: str) -> str | None:
    """The number after the last ``\\n#### `` of a GSM8K rationale, commas removed."""
    marker = "\n#### "
    if marker not in rationale:
        return None
    return rationale.rsplit(marker, 1)[1].strip().replace(",", "")


def strip_dollar_wrapper(answer: str) -> tuple[str, bool]:
    """Remove one enclosing ``$...$`` or ``$$...$$`` pair; returns (text, was_wrapped).

    Only a wrapper around the whole answer is removed: answers such as
    ``$x=0$ or $x=2$`` mix text and mathematics and are kept as they are.
    """
    text = answer.strip()
    for delim in ("$$", "$"):
        if len(text) > 2 * len(delim) and text.startswith(delim) and text.endswith(delim):
            inner = text[len(delim):-len(delim)]
            if not inner.endswith("\\") and not _UNESCAPED_DOLLAR.search(inner):
                return inner.strip(), True
    return text, False


def join_math_segments(answer: str) -> str:
    """Turn ``$69$,$84$`` into ``69, 84``; a single ``$x$`` into ``x``; other text unchanged."""
    text = answer.strip()
    segments = re.findall(r"(?<!\\)\$(.+?)(?<!\\)\$", text)
    leftover = re.sub(r"(?<!\\)\$(.+?)(?<!\\)\$", "", text)
    if segments and re.fullmatch(r"[\s,]*", leftover):
        return ", ".join(seg.strip() for seg in segments)
    return text


def integer_string(answer: str) -> str | None:
    """Canonical integer text (``"080"`` -> ``"80"``) or None if ``answer`` is not an integer."""
    text = answer.strip()
    if not _INTEGER.fullmatch(text):
        return None
    return str(int(text))


def format_number(value: int | float) -> str:
    """Plain positional decimal text for a JSON number: ``4e-05`` -> ``0.00004``, ``345.0`` -> ``345``."""
    if isinstance(value, bool):
        raise TypeError("booleans are not numbers here")
    if isinstance(value, int):
        return str(value)
    return np.format_float_positional(value, trim="-")


def infer_answer_type(answer: str) -> str:
    """``integer``, ``number`` or ``latex`` from the text of a gold answer."""
    text = answer.strip()
    if _INTEGER.fullmatch(text):
        return "integer"
    if _DECIMAL.fullmatch(text):
        return "number"
    return "latex"


def normalize_problem_text(text: str) -> str:
    """Text key for decontamination: lowercase, whitespace collapsed, stripped."""
    return " ".join(text.lower().split())
