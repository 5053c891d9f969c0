"""Final-answer extraction from a model response, and light normalization of answers.

Extraction rule (``extract_answer``), first hit wins:

1. If the response contains ``</think>``, the text after the last ``</think>`` is the
   *final* segment and the text before it the *reasoning* segment; otherwise the whole
   response is the final segment.
2. In the final segment, then in the reasoning segment:
   a. the content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces balanced,
      ``\\{`` and ``\\}`` are literal characters); the braceless form ``\\boxed 5`` takes
      the token up to the next space or ``$``. An unclosed or empty box is skipped in
      favour of the box before it;
   b. the inline form: the text after the last "answer is" / "answer:" (e.g. "The answer
      is", "The final answer is", "Final Answer:"), up to the end of its line and the
      first sentence end (". " or a full stop at the end of the line). An anchor whose
      text starts with a comment word ("... the answer is correct") is skipped in favour
      of the one before it (up to the last five anchors).
3. Otherwise, in the final segment, then in the reasoning segment: the last number on
   the last of the final three non-empty lines that contains one (within the last 2,000
   characters). A number is an optionally signed integer or decimal, with optional
   thousands separators (``1,000``) or a ``/denominator`` (``3/4``).

This lenient rule serves evaluation and teachers configured ``answer_format: lenient``. The
``boxed`` rule of a teacher that boxes its answers (``extract_boxed_answer``, paper Appendix A.1:
"a final boxed answer") takes only step 2a, and only in the completion's final part
(``trajfusion.trajectory``: what follows ``</think>``; the whole text of a completion without
tags): a box inside the reasoning alone is an intermediate result, not a final answer.

An answer longer than ``MAX_ANSWER_CHARS`` after normalization (or four times that
before it) is rejected: no genuine final answer is that long; such strings come from
degenerate output.

The scans are ``re.finditer`` over patterns without nested quantifiers and one pass over
brace tokens, so megabyte inputs, thousands of unclosed ``\\boxed{`` or 100k nested braces
take well under a second.
"""

from __future__ import annotations

import re
from collections import deque

from trajfusion.trajectory import THINK_CLOSE, is_unclosed_think, split_trajectory

MAX_ANSWER_CHARS = 1000
NUMBER_TAIL_CHARS = 2000
NUMBER_TAIL_LINES = 3
INLINE_ANCHORS_TRIED = 5

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_BRACE_TOKEN_RE = re.compile(r"\\[\\{}]|[{}]")
_BARE_TOKEN_RE = re.compile(r"[ \t]*([^\s$]+)")
_INLINE_RE = re.compile(r"answer\s*(?:is(?![\w'’])|:)\s*:?", re.IGNORECASE)
# "... the answer is correct." comments on an answer rather than stating one.
_NOT_AN_ANSWER = frozenset({"correct", "incorrect", "right", "wrong", "not", "that", "as", "below",
                            "above", "clear", "indeed", "still", "also", "consistent", "confirmed"})
_WHITESPACE_RE = re.compile(r"\s*")
_SENTENCE_END_RE = re.compile(r"\.(?:\s|$)")
_NUMBER_RE = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?(?![\w])")


def extract_answer(text: str) -> str | None:
    """The normalized final answer of a response, or None (see the module docstring)."""
    if not isinstance(text, str):
        return None
    final, reasoning = _split_think(text)
    segments = [final] if reasoning is None else [final, reasoning]
    for segment in segments:
        for rule in (last_boxed, inline_answer):
            answer = _accept(rule(segment))
            if answer is not None:
                return answer
    for segment in segments:
        answer = _accept(last_number(segment))
        if answer is not None:
            return answer
    return None


def extract_boxed_answer(text: str) -> str | None:
    """The normalized last box of the completion's final part, or None (the ``boxed`` rule of
    the module docstring; None for an unclosed think block, which has no final part)."""
    if not isinstance(text, str) or is_unclosed_think(text):
        return None
    final = split_trajectory(text).final if THINK_CLOSE in text else text
    return _accept(last_boxed(final))


def _split_think(text: str) -> tuple[str, str | None]:
    end = text.rfind("</think>")
    if end < 0:
        return text, None
    return text[end + len("</think>"):], text[:end]


def _accept(raw: str | None) -> str | None:
    # Raw text this long is degenerate output; skip the normalization work.
    if raw is None or len(raw) > 4 * MAX_ANSWER_CHARS:
        return None
    answer = normalize_answer(raw)
    if not answer or len(answer) > MAX_ANSWER_CHARS:
        return None
    return answer


def last_boxed(text: str) -> str | None:
    """Raw content of the last complete, non-empty ``\\boxed``/``\\fbox`` in ``text``."""
    starts = [m.end() for m in _BOX_RE.finditer(text)]
    if not starts:
        return None
    # Usual case: the last box is complete; scanning from it alone is enough.
    content = _box_content(text, starts[-1], _matching_braces(text, starts[-1]))
    if content and content.strip():
        return content
    closing = _matching_braces(text, starts[0])
    for start in reversed(starts[:-1]):
        content = _box_content(text, start, closing)
        if content and content.strip():
            return content
    return None


def last_box_start(text: str) -> int:
    """Where the last ``\\boxed``/``\\fbox`` of ``text`` starts; -1 without one."""
    start = -1
    for match in _BOX_RE.finditer(text):
        start = match.start()
    return start


def _matching_braces(text: str, start: int) -> dict[int, int]:
    """Map each ``{`` at or after ``start`` to the position of its matching ``}``."""
    closing: dict[int, int] = {}
    stack: list[int] = []
    for token in _BRACE_TOKEN_RE.finditer(text, start):
        char = token.group()
        if char == "{":
            stack.append(token.start())
        elif char == "}" and stack:
            closing[stack.pop()] = token.start()
    return closing


def _box_content(text: str, pos: int, closing: dict[int, int]) -> str | None:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    if pos >= len(text):
        return None
    if text[pos] == "{":
        end = closing.get(pos)
        return None if end is None else text[pos + 1:end]
    token = _BARE_TOKEN_RE.match(text, pos)
    return token.group(1) if token else None


def inline_answer(text: str) -> str | None:
    """Raw text after the last "answer is" / "answer:" that states an answer (see
    ``_NOT_AN_ANSWER``), up to the end of the sentence."""
    anchors = deque((m.end() for m in _INLINE_RE.finditer(text)), maxlen=INLINE_ANCHORS_TRIED)
    for pos in reversed(anchors):
        candidate = _sentence_after(text, pos)
        first_word = candidate.split(maxsplit=1)[0].lower().strip(".,;:!") if candidate else ""
        if candidate and first_word not in _NOT_AN_ANSWER:
            return candidate
    return None


def _sentence_after(text: str, pos: int) -> str:
    pos = _WHITESPACE_RE.match(text, pos).end()
    line_end = text.find("\n", pos)
    line = text[pos:] if line_end < 0 else text[pos:line_end]
    sentence_end = _SENTENCE_END_RE.search(line)
    if sentence_end:
        line = line[:sentence_end.start()]
    return line.strip().strip("*").strip()


def last_number(text: str) -> str | None:
    """The last number on the last of the final non-empty lines that holds one."""
    tail = text[-NUMBER_TAIL_CHARS:]
    lines = [line for line in tail.splitlines() if line.strip()][-NUMBER_TAIL_LINES:]
    for line in reversed(lines):
        numbers = _NUMBER_RE.findall(line)
        if numbers:
            return numbers[-1]
    return None


# --- normalization -------------------------------------------------------------------

_DELIMITER_PAIRS = (("\\(", "\\)"), ("\\[", "\\]"))
_LEFT_RIGHT_RE = re.compile(r"\\(?:left|right)(?![A-Za-z])")
_DIGIT_GROUP_SPACE_RE = re.compile(r"(?<=\d)\\,(?=\d{3}(?!\d))")
# A line break ``\\`` is matched first so that its second backslash never starts a
# spacing macro (``\\ 0`` must not become ``\ 0``); the accent ``\~`` and the escaped
# brace ``\{`` are matched as units and kept, so their characters never read as ``~``
# (a space) or as the start of ``{,}``.
_SPACING_RE = re.compile(r"\\[\\~{]|\\[!,;: ]|\\q?quad(?![A-Za-z])|~|\{,\}")
_FRAC_RE = re.compile(r"\\[dt]frac(?![A-Za-z])")
_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SPACE_AROUND_RE = re.compile(r"\s*([-+*/=<>,;:()\[\]{}^_|&])\s*")
_WRAPPER_RE = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox|boxed|fbox)\s*\{")


def normalize_answer(answer: str) -> str:
    """Light, meaning-preserving cleanup of an answer string (gold or extracted).

    Peeling, repeated until nothing changes: strip whitespace, trailing full stops and an
    enclosing ``\\(...\\)`` / ``\\[...\\]``; delete ``\\$`` and ``$``; remove a wrapper
    (``\\text``, ``\\textbf``, ``\\mathrm``, ``\\mathbf``, ``\\mbox``, ``\\boxed``,
    ``\\fbox``) that encloses the *whole* answer (``\\text{(A)}`` -> ``(A)``).
    Then, once: delete ``\\left``/``\\right``; drop ``\\,`` between digit groups
    (``3\\,000`` -> ``3000``); other spacing macros (``\\,`` ``\\!`` ``\\;`` ``\\:``
    ``\\ `` ``\\quad`` ``~``) become a space; ``\\dfrac``/``\\tfrac`` become ``\\frac``;
    ``{,}`` becomes ``,``; whitespace runs collapse to one space; a whole answer written
    with thousands separators and no spaces (``1,000``, ``-12,345.5``) loses the commas,
    while ``1, 234`` stays a list; spaces next to operators and brackets go
    (``x + 1`` -> ``x+1``, but ``\\pi r`` keeps its space); trailing full stops go.
    Units such as ``5\\text{ cm}`` and degrees ``90^\\circ`` are kept: math-verify
    discards them when comparing, and answer groups absorb the spelling variants.
    """
    text = answer
    for _ in range(8):  # wrappers may nest: \boxed{\text{(A)}.}
        peeled = _peel(text)
        if peeled == text:
            break
        text = peeled
    return _tidy(text)


def _peel(text: str) -> str:
    text = _strip_delimiters(text.strip().rstrip(". "))
    text = text.replace("\\$", "").replace("$", "")
    return _unwrap(text.strip())


def _tidy(text: str) -> str:
    text = _LEFT_RIGHT_RE.sub("", text)
    text = _DIGIT_GROUP_SPACE_RE.sub("", text)
    text = _SPACING_RE.sub(_spacing, text)
    text = _FRAC_RE.sub(r"\\frac", text)
    text = " ".join(text.split())
    if _THOUSANDS_RE.fullmatch(text):
        text = text.replace(",", "")
    text = _SPACE_AROUND_RE.sub(r"\1", text)
    return text.rstrip(". ")


def _spacing(match: re.Match) -> str:
    token = match.group()
    if token == "{,}":
        return ","
    return token if token[1:] in ("\\", "~", "{") else " "


def _strip_delimiters(text: str) -> str:
    for opening, closing in _DELIMITER_PAIRS:
        if text.startswith(opening) and text.endswith(closing) and len(text) >= 4:
            return text[2:-2].strip()
    return text


def _unwrap(text: str) -> str:
    """Remove a ``\\text{...}``-style wrapper only when it spans the whole string."""
    match = _WRAPPER_RE.match(text)
    if not match or not text.endswith("}"):
        return text
    open_pos = match.end() - 1
    if _matching_braces(text, open_pos).get(open_pos) != len(text) - 1:
        return text
    return text[match.end():-1].strip()
