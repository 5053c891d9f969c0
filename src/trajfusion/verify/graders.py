"""Graders: how an answer is extracted from a response and judged against a reference.

A ``Grader`` bundles the four parts the verifier's steps (``trajfusion.verify.tasks``) call:
``extract`` (response -> normalized answer or None), ``normalize_gold``, ``cheap`` (a
verdict without a parser, or None) and ``judge`` (the full comparison, run under the
step's deadline); ``parse_gold`` (or None) parses the gold once, as its own step. The same
steps, worker pool and incorrect-answer grouping serve every grader.

- ``math_verify`` (default): this project's extraction (``extract``) and equivalence
  (``equivalence``: cheap rules, then math-verify).
- ``qwen25_math``: the Qwen2.5-Math evaluation toolkit's extraction and ``math_equal``
  (``qwen25_math``), which the paper's evaluation used.

Graders are module-level data of module-level functions, so they pickle by reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from trajfusion.verify import qwen25_math
from trajfusion.verify.equivalence import Judge, ParseCache, cheap_verdict, math_verify_judge
from trajfusion.verify.extract import extract_answer, normalize_answer
from trajfusion.vocabulary import GRADERS


@dataclass(frozen=True)
class Grader:
    name: str
    extract: Callable[[str], str | None]
    normalize_gold: Callable[[str], str]
    cheap: Callable[[str, str, str | None], bool | None]
    judge: Judge
    parse_gold: Callable[[str, ParseCache], object] | None


def _parse_with_math_verify(gold: str, cache: ParseCache) -> None:
    cache.parse(gold)


def _qwen_gold(gold: str) -> str:
    # The toolkit normalizes a gold it extracts from a solution twice, like a prediction.
    return qwen25_math.normalize(qwen25_math.normalize(gold))


def _qwen_cheap(reference: str, candidate: str, hint: str | None) -> bool | None:
    return True if candidate.strip().lower() == reference.strip().lower() else None


def _qwen_judge(reference: str, candidate: str, hint: str | None, cache: ParseCache) -> bool:
    return qwen25_math.equal(candidate, reference)


MATH_VERIFY = Grader("math_verify", extract_answer, normalize_answer, cheap_verdict, math_verify_judge,
                     _parse_with_math_verify)
QWEN25_MATH = Grader("qwen25_math", qwen25_math.extract, _qwen_gold, _qwen_cheap, _qwen_judge, None)
_BY_NAME = {grader.name: grader for grader in (MATH_VERIFY, QWEN25_MATH)}
assert tuple(_BY_NAME) == GRADERS, "vocabulary.GRADERS and the graders declared here disagree"


def get_grader(name: str) -> Grader:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown grader {name!r}; known: {list(GRADERS)}") from None


def other_grader(name: str) -> Grader:
    """The grader that checks ``name``'s verdicts (there are two)."""
    return next(grader for grader in _BY_NAME.values() if grader.name != get_grader(name).name)
