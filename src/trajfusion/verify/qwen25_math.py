"""The Qwen2.5-Math evaluation toolkit's grading rules, reimplemented: answer extraction,
string normalization and equivalence, as the toolkit applies them to a benchmark without
dataset-specific rules (its ``evaluation/parser.py`` and ``evaluation/grader.py``, QwenLM/
Qwen2.5-Math at a45202b, MIT; the paper evaluated with this toolkit).

Extraction (``extract``), first hit wins, on the whole response (no ``</think>`` split):
the text between ``final answer is $`` and ``$. I hope`` (Minerva style); the content after
the last ``boxed`` (balanced braces; without a brace, up to the next ``$``); the rest of
the response after the last "he answer is", then after the last "final answer is"; else the
last number (``-?\\d*\\.?\\d+`` with commas removed). Line breaks go, a leading ``:`` and a
trailing ``.`` or ``/`` go, then ``normalize`` runs twice (once in extraction, once after).

Normalization (``normalize``, the toolkit's ``strip_string``) in its order: drop line
breaks, trailing full stops and ``\\!``; ``array``/``bmatrix`` become ``pmatrix``,
``\\tfrac``/``\\dfrac`` ``\\frac``, ``\\leq``/``\\geq``/``\\neq`` ``\\le``/``\\ge``/``\\ne``;
``\\left``/``\\right`` go and ``\\{ \\}`` become braces; a trailing ``\\text{...}`` unit
goes; the unit words of ``UNIT_WORDS`` (and their plurals) go, twice over; degrees, dollar
signs, ``\\(`` ``\\)`` go; number words become digits (word2number: "five" -> 5, and "two
apples" -> 2); ``\\text{x}`` becomes ``x``; ``x=``, ``y=``, ``z=``, ``x\\in``... go;
``\\emptyset`` becomes ``{}``; percent signs go; ``infinity``/``inf`` become ``\\infty``;
every ``and`` and ``\\mathbf`` goes, ``\\mbox{...}`` goes; ``j`` becomes ``i`` when the
string has no ``i``; a decimal point followed by zeros only goes (``2.00`` -> ``2``, while
``2.50`` stays);
a short left-hand side ``k=`` goes; ``\\sqrt2`` -> ``\\sqrt{2}``; spaces go; ``\\frac12``
-> ``\\frac{1}{2}``; ``a/b`` of integers -> ``\\frac{a}{b}``.

Equivalence (``equal(prediction, reference)``, the toolkit's ``math_equal`` with its
defaults), first rule that says "equal" wins:

1. the same string, ignoring case and surrounding space;
2. a reference option letter A-E equal to the last standalone A-E letter of the prediction;
3. both numbers (commas dropped, ``50%`` read as 0.5): equal within a relative 1e-4 to the
   reference, or to the reference / 100 or x 100 (so ``0.5`` equals ``50``); two numbers
   that differ are unequal;
4. the same string once brackets and braces are dropped: ``(1,2)`` equals ``[1,2]`` when the
   prediction's brackets are not the other kind of the reference's first character;
5. two bracketed tuples: element-wise, whatever the bracket kinds (so the open interval
   ``(1,2)`` equals the closed ``[1,2]``);
6. two ``pmatrix``/``bmatrix`` matrices: element-wise (a prediction matrix against a
   reference ``{a,b}`` first turns the reference into a column matrix);
7. two equations compare as ``lhs - (rhs)`` up to sign; an equation with a short left-hand
   side against a plain value compares its right-hand side;
8. symbolic: each side parsed as LaTeX or as a SymPy expression; equal as strings, by
   ``equals``, by ``simplify(a - b) == 0``, as equations, numerically within 1e-4
   (relative), or as matrices rounded to 3 decimals.

Where this differs from the toolkit (its dependencies cannot be installed beside
math-verify): the toolkit's first LaTeX parser, SymPy's ANTLR ``parse_latex``, needs
``antlr4-python3-runtime`` 4.11 and latex2sympy2 on PyPI pins 4.7.2, while math-verify
needs 4.13.2; both LaTeX steps use latex2sympy2_extended (math-verify's maintained fork of
latex2sympy2) instead, so an expression the two parsers read differently can compare
differently. ``parse_expr`` evaluates Python: a string naming anything outside a list of
mathematical names (``_SAFE_NAMES``) is not handed to it, and a side no parser reads is
compared as a string only, never handed to SymPy (the toolkit would run such a string).
A comparison that runs past the verifier's deadline is a timeout (the toolkit's 3 s limit
makes it "unequal"); the verdict table's ``status`` says which.
"""

from __future__ import annotations

import math
import re

# The toolkit's unit words (mostly from MathQA), in its order: removal is sequential, and
# the words are regular expressions ("q ." matches "q x" too).
UNIT_WORDS = (
    "east", "degree", "mph", "kmph", "ft", "m sqaure", " m east", "sq m", "deg", "mile", "q .", "monkey", "prime",
    "ratio", "profit of rs", "rd", "o", "gm", "p . m", "lb", "tile", "per", "dm", "lt", "gain", "ab", "way", "west",
    "a .", "b .", "c .", "d .", "e .", "f .", "g .", "h .", "t", "a", "h", "no change", "men", "soldier", "pie", "bc",
    "excess", "st", "inches", "noon", "percent", "by", "gal", "kmh", "c", "acre", "rise", "a . m", "th", "π r 2",
    "sq", "mark", "l", "toy", "coin", "sq . m", "gallon", "° f", "profit", "minw", "yr", "women", "feet", "am", "pm",
    "hr", "cu cm", "square", "v â € ™", "are", "rupee", "rounds", "cubic", "cc", "mtr", "s", "ohm", "number", "kmph",
    "day", "hour", "minute", "min", "second", "man", "woman", "sec", "cube", "mt", "sq inch", "mp", "∏ cm ³",
    "hectare", "more", "sec", "unit", "cu . m", "cm 2", "rs .", "rs", "kg", "g", "month", "km", "m", "cm", "mm",
    "apple", "liter", "loss", "yard", "pure", "year", "increase", "decrease", "d", "less", "Surface", "litre",
    "pi sq m", "s .", "metre", "meter", "inch",
)
_UNIT_RES = tuple(re.compile(r"(^|\W)" + word + r"($|\W)") for word in (*UNIT_WORDS, *(w + "s" for w in UNIT_WORDS)))
_VARIABLE_PREFIXES = ("x=", "y=", "z=", "x\\in", "y\\in", "z\\in", "x\\to", "y\\to", "z\\to")
_LAST_NUMBER_RE = re.compile(r"-?\d*\.?\d+")
_OPTION_RE = re.compile(r"\b(A|B|C|D|E)\b")
_TUPLE_RE = re.compile(r"(\(|\[).+(\)|\])")
_MATRIX_OPEN = ("\\begin{pmatrix}", "\\begin{bmatrix}")
_MATRIX_CLOSE = ("\\end{pmatrix}", "\\end{bmatrix}")
_RELATIVE_TOLERANCE = 1e-4


# --- extraction ------------------------------------------------------------------------

def extract(response: str) -> str | None:
    """The normalized answer the toolkit extracts from a response; None when it is empty."""
    answer = normalize(normalize(_cleanup(_raw_answer(response.replace("\u043a\u0438", "")))))
    return answer or None


def _raw_answer(text: str) -> str:
    if "final answer is $" in text and "$. I hope" in text:
        return text.split("final answer is $", 1)[1].split("$. I hope", 1)[0].strip()
    if "boxed" in text:
        return _after_last_boxed(text.split("boxed")[-1])
    for anchor in ("he answer is", "final answer is"):
        if anchor in text:
            return text.split(anchor)[-1].strip()
    if "答案是" in text:
        return text.split("答案是")[1].strip().split("\n\n")[0].strip()
    numbers = _LAST_NUMBER_RE.findall(text.replace(",", ""))
    return numbers[-1] if numbers else ""


def _after_last_boxed(tail: str) -> str:
    if not tail.startswith("{"):
        return tail.split("$")[0].strip()
    depth, end = 1, len(tail)
    for pos in range(1, len(tail)):
        depth += {"{": 1, "}": -1}.get(tail[pos], 0)
        if depth == 0:
            end = pos
            break
    return tail[1:end]


def _cleanup(answer: str) -> str:
    answer = re.sub(r"\n\s*", "", answer)
    answer = answer[1:] if answer.startswith(":") else answer
    answer = answer[:-1] if answer.endswith(".") else answer
    return answer[:-1] if answer.endswith("/") else answer


# --- normalization ---------------------------------------------------------------------

def normalize(text: str) -> str:
    """The toolkit's ``strip_string`` (module docstring), unit words removed."""
    text = _unify_notation(str(text).strip().replace("\n", "").rstrip("."))
    text = _drop_units(text)
    for mark in ("^{\\circ}", "^\\circ", "\\$", "$", "\\(", "\\)"):
        text = text.replace(mark, "")
    text = re.sub(r"\\text\{(.*?)\}", r"\1", _word_number(text))
    for prefix in _VARIABLE_PREFIXES:
        text = text.replace(prefix, "")
    text = text.replace("\\emptyset", "{}").replace("(-\\infty,\\infty)", "\\mathbb{R}")
    for mark in ("\\%", "%"):
        text = text.replace(mark, "")
    text = text.replace(" .", " 0.").replace("{.", "{0.")
    return _tidy_numbers(_drop_words(_infinity(text)))


def _unify_notation(text: str) -> str:
    text = text.replace("\\!", "")
    text = re.sub(r"\\begin\{array\}\{.*?\}", r"\\begin{pmatrix}", text)
    text = re.sub(r"\\end\{array\}", r"\\end{pmatrix}", text).replace("bmatrix", "pmatrix")
    text = text.replace("tfrac", "frac").replace("dfrac", "frac")
    text = text.replace("\\neq", "\\ne").replace("\\leq", "\\le").replace("\\geq", "\\ge")
    text = text.replace("\\left", "").replace("\\right", "")
    return text.replace("\\{", "{").replace("\\}", "}")


def _drop_units(text: str) -> str:
    without_text_unit = re.sub(r"\\text{.*?}$", "", text).strip()
    if without_text_unit:
        text = without_text_unit
    for _ in range(2):
        for unit in _UNIT_RES:
            dropped = unit.sub(r"\1\2", text)
            if dropped:
                text = dropped
    return text


def _word_number(text: str) -> str:
    from word2number import w2n

    try:
        return str(w2n.word_to_num(text))
    except ValueError:
        return text


def _infinity(text: str) -> str:
    text = text.replace("infinity", "\\infty")
    if "\\infty" not in text:
        text = text.replace("inf", "\\infty")
    return text.replace("+\\inity", "\\infty")


def _drop_words(text: str) -> str:
    text = re.sub(r"\\mbox{.*?}", "", text.replace("and", "").replace("\\mathbf", ""))
    return text.replace("j", "i") if "j" in text and "i" not in text else text


def _tidy_numbers(text: str) -> str:
    text = re.sub(r"(\d+)\.0*([^\d])", r"\1\2", text)
    text = re.sub(r"(\d+)\.0*$", r"\1", text)
    if not text:
        return text
    text = "0" + text if text.startswith(".") else text
    sides = text.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:
        text = sides[1]
    text = re.sub(r"\\sqrt(\w+)", r"\\sqrt{\1}", text).replace(" ", "")
    return _slash_fraction(_brace_fractions(text))


def _brace_fractions(text: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac1{72}`` -> ``\\frac{1}{72}``; a ``\\frac``
    with fewer than two characters after it leaves the whole string unchanged."""
    head, *parts = text.split("\\frac")
    out = [head]
    for part in parts:
        if part.startswith("{"):
            out.append(part)
        elif len(part) < 2:
            return text
        elif part[1] == "{":
            out.append("{" + part[0] + "}" + part[1:])
        else:
            out.append("{" + part[0] + "}{" + part[1] + "}" + part[2:])
    return "\\frac".join(out)


def _slash_fraction(text: str) -> str:
    parts = text.split("/")
    if len(parts) != 2:
        return text
    try:
        top, bottom = (part if "sqrt" in part else int(part) for part in parts)
    except ValueError:
        return text
    return f"\\frac{{{top}}}{{{bottom}}}" if text == f"{top}/{bottom}" else text


# --- equivalence -----------------------------------------------------------------------

def equal(prediction: str, reference: str) -> bool:
    """The toolkit's ``math_equal(prediction, reference)`` (module docstring, rules 1-8)."""
    if prediction.strip().lower() == reference.strip().lower():
        return True
    if reference in ("A", "B", "C", "D", "E") and _option_letter(prediction) == reference:
        return True
    numbers = _as_number(prediction), _as_number(reference)
    if None not in numbers:
        return _numbers_equal(*numbers)
    if not prediction:
        return False
    prediction, reference = prediction.strip(), reference.strip()
    if "pmatrix" in prediction and "pmatrix" not in reference:
        reference = _column_matrices(reference)
    return (_bracketless_equal(prediction, reference) or _tuples_equal(prediction, reference)
            or _matrices_equal(prediction, reference) or _equations_equal(prediction, reference)
            or symbolic_equal(prediction, reference))


def _option_letter(prediction: str) -> str:
    text = prediction.strip("\n").rstrip(".").rstrip("/").strip(" ").lstrip(":")
    letters = _OPTION_RE.findall(text.upper())
    letter = letters[-1] if letters else text.strip().strip(".")
    return letter.rstrip(".").rstrip("/")


def _as_number(text: str) -> float | None:
    text = text.replace(",", "")
    try:
        return float(text)
    except ValueError:
        pass
    if text.endswith("%"):
        text = text[:-1].removesuffix("\\")
        try:
            return float(text) / 100
        except ValueError:
            return None
    return None


def _numbers_equal(prediction: float, reference: float) -> bool:
    return any(_close(prediction, target) for target in (reference / 100, reference, reference * 100))


def _close(a: float, b: float) -> bool:
    return math.isclose(b, a, rel_tol=_RELATIVE_TOLERANCE)


def _column_matrices(reference: str) -> str:
    rows = re.findall(r"\{.*,.*\}", reference)
    return ", ".join("\\begin{pmatrix}" + row.strip("{}").replace(",", "\\") + "\\end{pmatrix}" for row in rows)


def _bracketless_equal(prediction: str, reference: str) -> bool:
    pred, ref = prediction, reference
    if (prediction.startswith("[") and prediction.endswith("]") and not reference.startswith("(")) or (
            prediction.startswith("(") and prediction.endswith(")") and not reference.startswith("[")):
        pred, ref = pred.strip("[]()"), ref.strip("[]()")
    for mark in "{}()":
        pred, ref = pred.replace(mark, ""), ref.replace(mark, "")
    return pred.lower() == ref.lower()


def _tuples_equal(prediction: str, reference: str) -> bool:
    if not (_TUPLE_RE.match(prediction) and _TUPLE_RE.match(reference)):
        return False
    pred, ref = prediction[1:-1].split(","), reference[1:-1].split(",")
    return len(pred) == len(ref) and all(equal(p, r) for p, r in zip(pred, ref))


def _matrices_equal(prediction: str, reference: str) -> bool:
    if not all(s.startswith(_MATRIX_OPEN) and s.endswith(_MATRIX_CLOSE) for s in (prediction, reference)):
        return False
    pred, ref = _matrix_rows(prediction), _matrix_rows(reference)
    if len(pred) != len(ref):
        return False
    for pred_row, ref_row in zip(pred, ref):
        pred_cells, ref_cells = pred_row.split("&"), ref_row.split("&")
        if len(pred_cells) != len(ref_cells) or not all(equal(p, r) for p, r in zip(pred_cells, ref_cells)):
            return False
    return True


def _matrix_rows(matrix: str) -> list[str]:
    body = matrix[len("\\begin{pmatrix}"):-len("\\end{pmatrix}")]
    return [row.strip() for row in body.split("\\\\") if row.strip()]


def _equations_equal(prediction: str, reference: str) -> bool:
    pred_eq, ref_eq = prediction.count("="), reference.count("=")
    if pred_eq == 1 and ref_eq == 1:
        pred, ref = _as_difference(prediction), _as_difference(reference)
        return symbolic_equal(pred, ref) or symbolic_equal(f"-({pred})", ref)
    if pred_eq == 1 and len(prediction.split("=")[0].strip()) <= 2 and ref_eq == 0:
        return equal(prediction.split("=")[1], reference)
    if ref_eq == 1 and len(reference.split("=")[0].strip()) <= 2 and pred_eq == 0:
        return equal(prediction, reference.split("=")[1])
    return False


def _as_difference(equation: str) -> str:
    lhs, rhs = equation.split("=")
    return f"{lhs.strip()} - ({rhs.strip()})"


# --- symbolic comparison ----------------------------------------------------------------

def symbolic_equal(a: str, b: str) -> bool:
    """Rule 8: both sides parsed, then compared. A side no parser reads stays a string and
    is only compared as a string: SymPy would ``sympify`` it (``N``, ``x - "..."``), which
    evaluates it as Python, whatever ``_parse_sympy_syntax`` refused."""
    left, right = parse(a), parse(b)
    checks = (_same,) if isinstance(left, str) or isinstance(right, str) else _SYMBOLIC_CHECKS
    return any(_attempt(check, left, right) for check in checks)


def _attempt(check, left, right) -> bool:
    # Like the toolkit, any failure of one check moves on to the next; Deadline, a
    # BaseException, still ends the comparison.
    try:
        return bool(check(left, right))
    except Exception:
        return False


def _same(a, b) -> bool:
    return str(a) == str(b) or a == b


def _simplifies_equal(a, b) -> bool:
    from sympy import simplify

    return a.equals(b) or simplify(a - b) == 0


def _equations_match(a, b) -> bool:
    return abs(a.lhs - a.rhs).equals(abs(b.lhs - b.rhs))


def _numerically_equal(a, b) -> bool:
    from sympy import N

    return _close(float(N(a)), float(N(b)))


def _matrices_round_equal(a, b) -> bool:
    return a.shape == b.shape and a.applyfunc(lambda x: round(x, 3)).equals(b.applyfunc(lambda x: round(x, 3)))


_SYMBOLIC_CHECKS = (_same, _simplifies_equal, _equations_match, _numerically_equal, _matrices_round_equal)


def parse(text: str):
    """The first parse of ``text`` by LaTeX, then SymPy syntax, each tried on the string with
    ``\\\\`` read as ``\\`` and then as it is; ``text`` itself when none succeeds."""
    from latex2sympy2_extended import latex2sympy

    for parser in (latex2sympy, _parse_sympy_syntax):
        for candidate in (text.replace("\\\\", "\\"), text):
            try:
                return parser(candidate)
            except Exception:
                continue
    return text


_IDENTIFIER_RE = re.compile(r"[A-Za-z_]\w*")
_SAFE_NAMES = frozenset({
    "sqrt", "root", "exp", "log", "ln", "sin", "cos", "tan", "cot", "sec", "csc", "asin", "acos", "atan", "sinh",
    "cosh", "tanh", "pi", "E", "I", "oo", "Abs", "abs", "factorial", "binomial", "floor", "ceiling", "gcd", "lcm",
    "Rational", "Integer", "Float", "Eq", "Interval", "Matrix", "Symbol", "min", "max", "Min", "Max", "re", "im",
})


def _parse_sympy_syntax(text: str):
    """``sympy.parse_expr``, refused (ValueError) for a string that names a Python or SymPy
    object outside ``_SAFE_NAMES``: parse_expr evaluates its input."""
    import builtins

    import sympy
    from sympy.parsing.sympy_parser import parse_expr

    for name in _IDENTIFIER_RE.findall(text):
        if "__" in name or (name not in _SAFE_NAMES and (hasattr(builtins, name) or hasattr(sympy, name))):
            raise ValueError(f"refused to evaluate {name!r}")
    if any(mark in text for mark in ("'", '"', "`", ";", "\\", "@", "lambda")):
        raise ValueError("refused to evaluate")
    return parse_expr(text)
