"""Trajectories as numbered steps, and the numbers a step states.

A step is a non-blank line (``lines``) or a paragraph between blank lines (``paragraphs``) of a
trajectory's reasoning (``trajfusion.trajectory.split_trajectory``); steps are numbered from 1.
Each step keeps its character range in the reasoning, so a kept prefix is an exact substring.

Numbers are read as exact fractions (``3``, ``-2.50``, ``1,000``, ``3/4`` all compare by value);
a step's *results* are the numbers right after an ``=`` (an equation's right-hand side).
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import NamedTuple

_SPLITTERS = {"lines": re.compile(r"\n"), "paragraphs": re.compile(r"\n[ \t]*\n")}
_NUMBER = r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?"
_NUMBER_RE = re.compile(rf"(?<![\w.]){_NUMBER}")
# The right-hand side of an equation, possibly after "$", "\(" or "\boxed{".
_RESULT_RE = re.compile(rf"=\s*(?:\$|\\\(|\\boxed\{{)?\s*({_NUMBER})")


class Step(NamedTuple):
    text: str
    start: int  # character range in the reasoning
    end: int


def split_steps(reasoning: str, mode: str) -> list[Step]:
    """The non-blank steps of ``reasoning`` with their character ranges (stripped)."""
    steps, start = [], 0
    for match in [*_SPLITTERS[mode].finditer(reasoning), None]:
        end = match.start() if match else len(reasoning)
        piece = reasoning[start:end]
        if piece.strip():
            left = start + len(piece) - len(piece.lstrip())
            steps.append(Step(piece.strip(), left, left + len(piece.strip())))
        start = match.end() if match else end
    return steps


def as_number(text: str) -> Fraction | None:
    """``text`` as an exact number, or None (a zero denominator)."""
    try:
        return Fraction(text.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def numbers(text: str) -> set[Fraction]:
    """Every number ``text`` states."""
    return {n for m in _NUMBER_RE.finditer(text) if (n := as_number(m.group())) is not None}


def results(text: str) -> list[Fraction]:
    """The numbers right after an ``=``, in order."""
    return [n for m in _RESULT_RE.finditer(text) if (n := as_number(m.group(1))) is not None]


def numbered(steps: list[Step]) -> str:
    """The steps as ``Step 1: ...`` lines, for the constructor prompt."""
    return "\n".join(f"Step {i}: {step.text}" for i, step in enumerate(steps, start=1))
