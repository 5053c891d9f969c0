"""Answer equivalence: is a candidate answer the same as a reference answer?

``cheap_verdict`` then the ``judge`` (math-verify by default), in order:

1. identical normalized strings are equal;
2. a reference that is a truth value (true/false/yes/no, any case) matches a candidate
   with the same truth value ("yes" counts as "True");
3. a reference option ``(a)``..``(e)`` matches ``(a)``, ``a``, ``A`` or ``(A)``;
4. two plain integers compare as integers (AIME ``025`` equals ``25``); more generally two
   exact numeric literals (signed integers, ``a/b``, ``\\frac{a}{b}``, ``\\frac12``,
   decimals) compare as exact rationals: equal values are equal, and different values
   are different unless a decimal is involved (math-verify rounds decimals, so
   ``0.3333333`` equals ``1/3``: that case goes on to rule 6);
5. with ``answer_type == "list"`` and a bracketed reference ``[x, y]`` (TheoremQA), the
   candidate (bracketed by ``[]``, ``()`` or nothing) must match element by element;
6. otherwise ``math_verify.verify(parse(gold), parse(pred))`` on ``\\boxed{...}``-wrapped
   strings (fractions, radicals, pi, intervals, tuples, sets, percentages, units,
   degrees, thousands separators are math-verify's business). Guard: math-verify
   compares numbers after rounding, so ``1/2004!`` "equals" ``1/2006!``. When it says
   equal and both sides are exact rational constants written without decimals or
   percent signs (integers, fractions, powers with integer exponents, factorials, within
   a size budget), the exact rational values decide. Shortcut: when both sides parse
   to finite constants that differ by more than 1e-4 (relative), they are unequal
   without asking math-verify (``_numerically_distinct``), as its rounding to 6
   decimals cannot make them equal; this skips its costly ``simplify`` of the
   difference, the bulk of the work for wrong answers.

math-verify runs with its own signal-based timeouts switched off (the caller sets the
deadlines), and its parses are cached (``ParseCache``) since common answers recur.
"""

from __future__ import annotations

import logging
import math
import re
from collections import OrderedDict
from collections.abc import Callable
from fractions import Fraction

Judge = Callable[[str, str, "str | None", "ParseCache"], bool]

_INT_RE = re.compile(r"[+-]?\d{1,1000}")
_TRUTH = {"true": True, "yes": True, "false": False, "no": False}
_OPTION_RE = re.compile(r"\(([a-e])\)", re.IGNORECASE)
_LOOSE_OPTION_RE = re.compile(r"\(?([a-e])\)?", re.IGNORECASE)


def cheap_verdict(reference: str, candidate: str, hint: str | None) -> bool | None:
    """Rules 1-4 of the module docstring; None when math-verify must decide."""
    if reference == candidate:
        return True
    truth = _TRUTH.get(reference.lower())
    if truth is not None:
        return _TRUTH.get(candidate.lower()) is truth
    option = _OPTION_RE.fullmatch(reference)
    if option:
        loose = _LOOSE_OPTION_RE.fullmatch(candidate)
        return bool(loose) and loose.group(1).lower() == option.group(1).lower()
    if _INT_RE.fullmatch(reference) and _INT_RE.fullmatch(candidate):
        return int(reference) == int(candidate)
    return _literal_verdict(reference, candidate)


_LITERAL_RES = (
    re.compile(r"(?P<sign>[+-]?)(?P<num>\d{1,100})/(?P<den>\d{1,100})"),
    re.compile(r"(?P<sign>[+-]?)\\frac\{(?P<num>[+-]?\d{1,100})\}\{(?P<den>\d{1,100})\}"),
    re.compile(r"(?P<sign>[+-]?)\\frac(?P<num>\d)(?P<den>\d)"),
    re.compile(r"(?P<sign>[+-]?)(?P<dec>\d{0,100}\.\d{1,100}|\d{1,100}\.?)"),
)


def exact_literal(text: str) -> tuple[Fraction, bool] | None:
    """``(value, is_decimal)`` of a plain numeric literal (rule 4), else None."""
    for pattern in _LITERAL_RES:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        sign = -1 if match["sign"] == "-" else 1
        if "dec" in pattern.groupindex:
            return sign * Fraction(match["dec"].rstrip(".") or "0"), "." in match["dec"]
        if int(match["den"]) == 0:
            return None
        return sign * Fraction(int(match["num"]), int(match["den"])), False
    return None


def _literal_verdict(reference: str, candidate: str) -> bool | None:
    left, right = exact_literal(reference), exact_literal(candidate)
    if left is None or right is None:
        return None
    if left[0] == right[0]:
        return True
    return None if left[1] or right[1] else False


class ParseCache:
    """math-verify parses of ``\\boxed{s}``, each string parsed at most once while it stays
    among the ``capacity`` most recently used (answers such as ``2`` or ``\\frac{1}{2}``
    recur across problems, so one cache serves a worker's whole run). A parse cut short
    by a deadline raises before anything is stored."""

    def __init__(self, capacity: int = 4096) -> None:
        self._parsed: OrderedDict[str, list] = OrderedDict()
        self.capacity = capacity

    def parse(self, text: str) -> list:
        parsed = self._parsed.get(text)
        if parsed is None:
            from math_verify import parse

            parsed = parse("\\boxed{" + text + "}", parsing_timeout=None)
            self._parsed[text] = parsed
            if len(self._parsed) > self.capacity:
                self._parsed.popitem(last=False)
        else:
            self._parsed.move_to_end(text)
        return parsed


def math_verify_judge(reference: str, candidate: str, hint: str | None, cache: ParseCache) -> bool:
    """Rules 5-6 of the module docstring (the default judge)."""
    if hint == "list" and reference.startswith("[") and reference.endswith("]"):
        return _list_equal(reference, candidate, cache)
    return _sympy_equal(reference, candidate, cache)


def _sympy_equal(reference: str, candidate: str, cache: ParseCache) -> bool:
    from math_verify import verify

    gold, pred = cache.parse(reference), cache.parse(candidate)
    if _numerically_distinct(reference, candidate, gold, pred):
        return False
    if not verify(gold, pred, timeout_seconds=None):
        return False
    return not _exact_values_differ(reference, candidate, gold, pred)


def _list_equal(reference: str, candidate: str, cache: ParseCache) -> bool:
    expected = split_top_level(reference[1:-1])
    if candidate[:1] + candidate[-1:] in ("[]", "()"):
        candidate = candidate[1:-1]
    actual = split_top_level(candidate)
    if len(expected) != len(actual):
        return False
    for ref, cand in zip(expected, actual):
        verdict = cheap_verdict(ref, cand, None)
        if not (verdict if verdict is not None else _sympy_equal(ref, cand, cache)):
            return False
    return True


def split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets and braces: ``(1,2),3`` -> ``["(1,2)", "3"]``."""
    items, depth, start = [], 0, 0
    for pos, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(text[start:pos].strip())
            start = pos + 1
    items.append(text[start:].strip())
    return items


_DISTINCT_TOLERANCE = 1e-4
_SPECIAL_UNITS = ("%", "\\circ", "\\text", "\\mathrm", "\\pm", "\\mp")


def _numerically_distinct(reference: str, candidate: str, gold: list, pred: list) -> bool:
    """True when every parse of both sides is a finite number (no symbols) and every pair
    of values differs by more than 1e-4 (relative, floor 1): math-verify, which compares
    numbers rounded to 6 decimals, cannot find them equal, and its slow ``simplify`` of
    the difference is skipped. Percent, degree, text and +- spellings carry their own
    comparison rules in math-verify, so they always go to math-verify."""
    if any(unit in text for text in (reference, candidate) for unit in _SPECIAL_UNITS):
        return False
    left, right = _numeric_values(gold), _numeric_values(pred)
    if not left or not right:
        return False
    return all(abs(a - b) > _DISTINCT_TOLERANCE * max(1.0, abs(a), abs(b)) for a in left for b in right)


def _numeric_values(parsed: list) -> list[complex] | None:
    """The complex value of every sympy parse, or None if one is not a finite constant."""
    from sympy import Basic, Expr

    values = []
    for item in parsed:
        if not isinstance(item, Basic):
            continue
        if not isinstance(item, Expr) or item.free_symbols:
            return None
        try:
            value = complex(item.evalf(30))
        except (TypeError, ValueError, OverflowError, ArithmeticError):
            return None
        if not (math.isfinite(value.real) and math.isfinite(value.imag)):
            return None
        values.append(value)
    return values


_EXACT_BITS = 1 << 20
_EXACT_DEPTH = 64


def _exact_values_differ(reference: str, candidate: str, gold: list, pred: list) -> bool:
    """True when both sides are exact rational constants with different values."""
    if any(mark in text for text in (reference, candidate) for mark in ".%"):
        return False
    left, right = _first_expr(gold), _first_expr(pred)
    if left is None or right is None:
        return False
    a, b = exact_rational(left), exact_rational(right)
    return a is not None and b is not None and a != b


def _first_expr(parsed: list):
    from sympy import Basic

    return next((item for item in parsed if isinstance(item, Basic)), None)


def exact_rational(expr, depth: int = 0) -> Fraction | None:
    """Exact value of a constant built from integers, fractions, +, *, integer powers and
    factorials; None for anything else or beyond the size budget."""
    from sympy import UnevaluatedExpr, factorial

    if depth > _EXACT_DEPTH:
        return None
    if expr.is_Rational:
        return Fraction(int(expr.p), int(expr.q))
    if isinstance(expr, UnevaluatedExpr):
        return exact_rational(expr.args[0], depth + 1)
    if expr.is_Add or expr.is_Mul:
        values = [exact_rational(arg, depth + 1) for arg in expr.args]
        if any(v is None for v in values):
            return None
        return sum(values, Fraction(0)) if expr.is_Add else math.prod(values, start=Fraction(1))
    if expr.is_Pow:
        return _exact_power(expr, depth)
    if isinstance(expr, factorial):
        n = exact_rational(expr.args[0], depth + 1)
        if n is None or n.denominator != 1 or not 0 <= n <= 20000:
            return None
        return Fraction(math.factorial(int(n)))
    return None


def _exact_power(expr, depth: int) -> Fraction | None:
    base, exponent = (exact_rational(arg, depth + 1) for arg in expr.args)
    if base is None or exponent is None or exponent.denominator != 1:
        return None
    if base == 0 and exponent < 0:
        return None
    size = max(base.numerator.bit_length(), base.denominator.bit_length()) * abs(exponent.numerator)
    if size > _EXACT_BITS:
        return None
    return base ** int(exponent)



def quiet_math_verify() -> None:
    # With its own timeouts off, math-verify warns once per process; the caller's are in place.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
