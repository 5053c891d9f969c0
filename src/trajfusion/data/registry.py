"""Dataset registry: every training source and benchmark as a normalized problem table.

``load_source(name, data_dir, **options)`` is the one entry point. Bundled files are
checked against ``<data_dir>/SHA256SUMS`` before they are parsed. The gold-answer rule of
each source is documented in data/README.md.
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import math
import numbers
import os
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from trajfusion.data import answers, synthetic
from trajfusion.data.checksums import verified_path
from trajfusion.data.table import problem_frame, problem_row
from trajfusion.io import InputError, read_jsonl

log = logging.getLogger(__name__)

SOURCES = ("gsm8k_train", "math_train", "aime_1983_2023", "deepmath_103k", "synthetic_arith")
BENCHMARKS = ("gsm8k", "math", "math500", "college_math", "deepmind_math", "olympiadbench",
              "theoremqa", "aime24", "aime25", "hmmt25", "synthetic_arith_test")
DEEPMATH_HUB_ID = "zwhe99/DeepMath-103K"


class _Records:
    """Records of one file, with errors that name the file, record and field."""

    def __init__(self, path: Path, records: list[dict]):
        self.path = path
        self.records = records

    def __iter__(self):
        return iter(enumerate(self.records, start=1))

    def field(self, recno: int, record: dict, name: str, *, allow_empty: bool = False):
        if name not in record:
            raise InputError(f"{self.path}: record {recno}: missing field {name!r}")
        value = record[name]
        if not allow_empty and _is_empty(value):
            raise InputError(f"{self.path}: record {recno}: empty field {name!r}")
        return value

    def text(self, recno: int, record: dict, name: str) -> str:
        """A required, non-empty string field."""
        value = self.field(recno, record, name)
        if not isinstance(value, str):
            raise self.wrong_type(recno, name, "a string", value)
        return value

    def optional_text(self, recno: int, record: dict, name: str) -> str | None:
        """A metadata string field that may be absent or null."""
        value = record.get(name)
        if _is_empty(value):
            return None
        if not isinstance(value, str):
            raise self.wrong_type(recno, name, "a string or null", value)
        return value

    def integer(self, recno: int, record: dict, name: str) -> int:
        """A required integer field (a JSON integer or a string of digits)."""
        value = self.field(recno, record, name)
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if not _is_integer(value):
            raise self.wrong_type(recno, name, "an integer", value)
        return int(value)

    def number(self, recno: int, record: dict, name: str) -> float | None:
        """An optional numeric field (a JSON number or numeric string), else None."""
        value = record.get(name)
        if _is_empty(value):
            return None
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            raise self.wrong_type(recno, name, "a number or null", value) from None
        if not math.isfinite(number):
            raise self.wrong_type(recno, name, "a finite number", value)
        return number

    def gold(self, recno: int, field: str, value) -> str:
        if not (value is None or isinstance(value, str) or _is_number(value)):
            raise self.wrong_type(recno, field, "a string or a number (the gold answer)", value)
        value = _as_text(value)
        if value is None or not value.strip():
            raise InputError(f"{self.path}: record {recno}: no gold answer in field {field!r}")
        return value.strip()

    def wrong_type(self, recno: int, name: str, expected: str, value) -> InputError:
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return InputError(f"{self.path}: record {recno}: field {name!r} must be {expected}, "
                          f"got {_json_type(value)} {shown}")


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _json_type(value) -> str:
    """The JSON name of a value's type, as a data file author would say it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, numbers.Real):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_empty(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, (str, list)):
        return not (value.strip() if isinstance(value, str) else value)
    return False


def _non_empty(path: Path, records: list) -> list:
    if not records:
        raise InputError(f"{path}: no records (the file is empty)")
    return records


def _jsonl(data_dir, relative: str) -> _Records:
    path = verified_path(data_dir, relative)
    return _Records(path, _non_empty(path, read_jsonl(path)))


def _utf8_text(path: Path) -> str:
    """The file's text; bytes that are not UTF-8 raise InputError naming the line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{path}:{line}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def _json_array(data_dir, relative: str) -> _Records:
    path = verified_path(data_dir, relative)
    return _Records(path, _non_empty(path, _json_array_file(path)))


def _json_array_file(path: Path) -> list[dict]:
    """The objects of a file holding one JSON array of objects."""
    try:
        records = json.loads(_utf8_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(records, list):
        raise InputError(f"{path}: expected a JSON array of objects, got {_json_type(records)}")
    for recno, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise InputError(f"{path}: record {recno}: expected a JSON object, got {_json_type(record)}")
    return records


# --- training sources -------------------------------------------------------------------

def _gsm8k(data_dir, relative: str, source: str, width: int) -> pd.DataFrame:
    records = _jsonl(data_dir, relative)
    rows = []
    for recno, rec in records:
        problem = records.text(recno, rec, "question")
        rationale = records.text(recno, rec, "answer")
        gold = records.gold(recno, "answer", answers.gsm8k_final_answer(rationale))
        rows.append(problem_row(f"{source}/{recno - 1:0{width}d}", problem, gold, source,
                                answer_type=answers.infer_answer_type(gold), record=recno))
    return problem_frame(rows, str(records.path))


def load_gsm8k_train(data_dir) -> pd.DataFrame:
    return _gsm8k(data_dir, "train/gsm8k_train.jsonl", "gsm8k_train", 5)


def _math_level(level) -> str | None:
    text = str(level).removeprefix("Level ").strip()
    return text if text.isdigit() else None


def load_math_train(data_dir) -> pd.DataFrame:
    """MATH train; gold is the last box of ``solution``. Two solutions upstream end in an
    empty ``\\boxed{}`` (number_theory/7115 and 7117): such records are dropped and logged.
    A solution without any box raises InputError."""
    records = _jsonl(data_dir, "train/math_train.jsonl")
    rows = []
    for recno, rec in records:
        unique_id = records.text(recno, rec, "unique_id")
        boxed = answers.last_boxed(records.text(recno, rec, "solution"))
        if boxed is not None and not boxed.strip():
            log.info("math_train: dropping %s (record %d): its solution ends in an empty box", unique_id, recno)
            continue
        gold = records.gold(recno, "solution", boxed)
        rows.append(problem_row(f"math_train/{unique_id.removeprefix('train/')}",
                                records.text(recno, rec, "problem"), gold, "math_train",
                                level=_math_level(rec.get("level")),
                                subject=records.optional_text(recno, rec, "type"),
                                answer_type="latex", record=recno))
    return problem_frame(rows, str(records.path))


def load_aime_1983_2023(data_dir, *, max_year: int = 2023, ambiguous: str = "first") -> pd.DataFrame:
    """AIME 1983..max_year from the CSV. ``ambiguous`` handles 2022-II-8, whose answer is
    "080 or 081 (both were accepted)": ``first`` keeps it with gold 80 and flag
    ``alternate_answer:81``; ``drop`` removes it."""
    if ambiguous not in ("first", "drop"):
        raise InputError(f"aime_1983_2023: option ambiguous must be 'first' or 'drop', got {ambiguous!r}")
    path = verified_path(data_dir, "train/aime_1983_2024.csv")
    text = _utf8_text(path)
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from None
    records = _Records(path, _non_empty(path, table.to_dict("records")))
    rows = []
    for recno, rec in records:
        row = _aime_row(records, recno, rec, max_year, ambiguous)
        if row is not None:
            rows.append(row)
    return problem_frame(rows, str(path))


def _aime_row(records: _Records, recno: int, rec: dict, max_year: int, ambiguous: str) -> dict | None:
    year_text = records.field(recno, rec, "Year")
    if not year_text.isdigit():
        raise InputError(f"{records.path}: record {recno}: field 'Year' is not a year: {year_text!r}")
    if int(year_text) > max_year:
        return None
    problem_key = records.field(recno, rec, "ID")
    raw = records.gold(recno, "Answer", rec.get("Answer"))
    gold, flags = answers.integer_string(raw), None
    if gold is None:
        accepted = [answers.integer_string(part) for part in raw.split(" (")[0].split(" or ")]
        if len(accepted) < 2 or None in accepted:
            raise InputError(f"{records.path}: record {recno} ({problem_key}): field 'Answer' "
                             f"is not an integer: {raw!r}")
        if ambiguous == "drop":
            log.info("aime_1983_2023: dropping %s: answer %r has several accepted values", problem_key, raw)
            return None
        log.info("aime_1983_2023: %s: answer %r -> gold %s", problem_key, raw, accepted[0])
        gold, flags = accepted[0], "alternate_answer:" + ",".join(accepted[1:])
    return problem_row(f"aime_1983_2023/{problem_key}", records.field(recno, rec, "Question"), gold,
                       "aime_1983_2023", year=int(year_text), subject="AIME",
                       answer_type="integer", flags=flags, record=recno)


def load_deepmath_103k(data_dir=None, *, location: str = DEEPMATH_HUB_ID) -> pd.DataFrame:
    """DeepMath-103K from the Hub id or a local ``.jsonl``/``.parquet`` file of the same shape
    (fields question, final_answer, difficulty, topic, r1_solution_1..3).

    ``data_dir`` is unused: the data set is not bundled. Problem ids follow record order.
    """
    path = Path(location)
    if path.suffix in (".jsonl", ".parquet") or path.exists():
        records = _Records(path, _non_empty(path, _read_local_table(path)))
    else:
        records = _Records(Path(location), _non_empty(Path(location), _load_from_hub(location)))
    rows = []
    for recno, rec in records:
        gold = records.gold(recno, "final_answer", records.field(recno, rec, "final_answer", allow_empty=True))
        difficulty = records.number(recno, rec, "difficulty")
        rows.append(problem_row(f"deepmath_103k/{recno - 1:06d}", records.text(recno, rec, "question"),
                                gold, "deepmath_103k",
                                level=None if difficulty is None else answers.format_number(difficulty),
                                subject=records.optional_text(recno, rec, "topic"),
                                answer_type=answers.infer_answer_type(gold), record=recno))
    return problem_frame(rows, str(records.path))


def _as_text(value) -> str | None:
    if _is_empty(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return answers.format_number(value)
    return str(value)


def _read_local_table(path: Path) -> list[dict]:
    if not path.is_file():
        raise InputError(f"{path}: file does not exist")
    if path.suffix == ".parquet":
        return pd.read_parquet(path).to_dict("records")
    if path.suffix == ".jsonl":
        return read_jsonl(path)
    raise InputError(f"{path}: unsupported format for deepmath_103k (expected .jsonl or .parquet)")


def _load_from_hub(hub_id: str) -> list[dict]:
    import datasets

    try:
        dataset = datasets.load_dataset(hub_id, split="train")
    except Exception as exc:  # the datasets library raises many kinds of errors offline
        raise InputError(f"deepmath_103k: could not load {hub_id!r} from the Hugging Face Hub "
                         f"({type(exc).__name__}: {exc}); set option location to a local "
                         f".jsonl or .parquet copy") from None
    return dataset.to_pandas().to_dict("records")


def load_synthetic_arith(data_dir=None, **options) -> pd.DataFrame:
    return problem_frame(synthetic.generate("train", **options), "synthetic_arith")


# --- benchmarks -------------------------------------------------------------------------

def load_gsm8k(data_dir) -> pd.DataFrame:
    return _gsm8k(data_dir, "eval/gsm8k_test.jsonl", "gsm8k", 4)


def load_math(data_dir) -> pd.DataFrame:
    records = _jsonl(data_dir, "eval/math_test.jsonl")
    rows = []
    for recno, rec in records:
        gold = records.gold(recno, "solution", answers.last_boxed(records.text(recno, rec, "solution")))
        idx = records.integer(recno, rec, "idx")
        rows.append(problem_row(f"math/{idx:04d}", records.text(recno, rec, "problem"), gold, "math",
                                level=_math_level(rec.get("level")),
                                subject=records.optional_text(recno, rec, "type"),
                                answer_type="latex", record=recno))
    return problem_frame(rows, str(records.path))


def load_math500(data_dir) -> pd.DataFrame:
    records = _jsonl(data_dir, "eval/math500_test.jsonl")
    rows = []
    for recno, rec in records:
        gold = records.gold(recno, "answer", records.field(recno, rec, "answer", allow_empty=True))
        unique_id = records.text(recno, rec, "unique_id")
        rows.append(problem_row(f"math500/{unique_id.removeprefix('test/')}",
                                records.text(recno, rec, "problem"), gold, "math500",
                                level=_math_level(rec.get("level")),
                                subject=records.optional_text(recno, rec, "subject"),
                                answer_type="latex", record=recno))
    return problem_frame(rows, str(records.path))


def load_college_math(data_dir) -> pd.DataFrame:
    records = _jsonl(data_dir, "eval/college_math_test.jsonl")
    rows = []
    for recno, rec in records:
        raw = records.gold(recno, "answer", records.field(recno, rec, "answer", allow_empty=True))
        gold, wrapped = answers.strip_dollar_wrapper(raw)
        if wrapped:
            answer_type = "latex"
        else:
            inferred = answers.infer_answer_type(gold)
            answer_type = inferred if inferred != "latex" else "text"
        topic = records.optional_text(recno, rec, "data_topic")
        rows.append(problem_row(f"college_math/{recno - 1:04d}", records.text(recno, rec, "question"),
                                gold, "college_math",
                                subject=topic.removeprefix("college_math.") if topic else None,
                                answer_type=answer_type, license=records.optional_text(recno, rec, "license"),
                                record=recno))
    return problem_frame(rows, str(records.path))


def load_deepmind_math(data_dir) -> pd.DataFrame:
    """Lists of prime factors (``[3, 5]``) become ``3, 5``; sorted sequences (``12 3 0``)
    become ``12, 3, 0``; numbers and expressions such as ``-20*x`` are kept."""
    records = _json_array(data_dir, "eval/deepmind_mathematics.json")
    rows = []
    for recno, rec in records:
        raw = records.gold(recno, "answer", records.field(recno, rec, "answer", allow_empty=True))
        gold, answer_type = _deepmind_answer(raw)
        rows.append(problem_row(f"deepmind_math/{recno - 1:04d}", records.text(recno, rec, "question"),
                                gold, "deepmind_math", answer_type=answer_type, record=recno))
    return problem_frame(rows, str(records.path))


def _deepmind_answer(raw: str) -> tuple[str, str]:
    if raw.startswith("[") and raw.endswith("]"):
        items = [item.strip() for item in raw[1:-1].split(",") if item.strip()]
        return ", ".join(items), "list" if len(items) > 1 else answers.infer_answer_type(items[0])
    parts = raw.split()
    if len(parts) > 1 and all(answers.integer_string(p) is not None for p in parts):
        return ", ".join(parts), "list"
    return raw, answers.infer_answer_type(raw)


def load_olympiadbench(data_dir) -> pd.DataFrame:
    """Gold is ``final_answer[0]`` (all elements joined with ", " when ``is_multiple_answer``),
    with ``$`` delimiters removed. Extra columns: ``unit`` and ``tolerance`` (from ``error``)."""
    records = _jsonl(data_dir, "eval/olympiadbench_test.jsonl")
    rows = []
    for recno, rec in records:
        finals = records.field(recno, rec, "final_answer")
        if not isinstance(finals, list) or not all(isinstance(f, str) for f in finals):
            raise InputError(f"{records.path}: record {recno}: field 'final_answer' must be a list of strings")
        multiple = bool(rec.get("is_multiple_answer"))
        parts = [answers.join_math_segments(f) for f in (finals if multiple else finals[:1])]
        gold = records.gold(recno, "final_answer", ", ".join(p for p in parts if p))
        question = records.text(recno, rec, "question")
        context = records.optional_text(recno, rec, "context")
        if context:
            question = f"{context}\n\n{question}"
        rows.append(problem_row(f"olympiadbench/{records.integer(recno, rec, 'id'):04d}", question, gold,
                                "olympiadbench", subject=records.optional_text(recno, rec, "subfield"),
                                answer_type="list" if multiple else answers.infer_answer_type(gold),
                                unit=records.optional_text(recno, rec, "unit"),
                                tolerance=records.number(recno, rec, "error"), record=recno))
    return problem_frame(rows, str(records.path))


_THEOREMQA_TYPES = {"integer": "integer", "float": "number", "bool": "bool", "option": "option",
                    "list of integer": "list", "list of float": "list"}


def load_theoremqa(data_dir, *, keep_pictures: bool = False) -> pd.DataFrame:
    """TheoremQA; the 53 questions that need a picture are flagged ``picture`` and, by
    default, dropped (the models here read text only)."""
    records = _json_array(data_dir, "eval/theoremqa_test.json")
    rows = []
    for recno, rec in records:
        answer_type = records.text(recno, rec, "Answer_type")
        if answer_type not in _THEOREMQA_TYPES:
            raise InputError(f"{records.path}: record {recno}: unknown Answer_type {answer_type!r}")
        value = records.field(recno, rec, "Answer", allow_empty=True)
        gold = records.gold(recno, "Answer", _theoremqa_answer(records, recno, value, answer_type))
        picture = rec.get("Picture") not in (None, "", "None")
        if picture and not keep_pictures:
            continue
        rows.append(problem_row(f"theoremqa/{records.text(recno, rec, 'id')}",
                                records.text(recno, rec, "Question"), gold, "theoremqa",
                                subject=records.optional_text(recno, rec, "field"),
                                answer_type=_THEOREMQA_TYPES[answer_type],
                                flags="picture" if picture else None, record=recno))
    return problem_frame(rows, str(records.path))


_OPTION_RE = re.compile(r"\([a-z]\)")
# What the Answer field must hold for each Answer_type: (description, check).
_THEOREMQA_ANSWER_SHAPES = {
    "integer": ("an integer", lambda v: _is_integer(v) or (_is_number(v) and float(v).is_integer())),
    "float": ("a number", _is_number),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "option": ("an option such as '(a)'", lambda v: isinstance(v, str) and bool(_OPTION_RE.fullmatch(v.strip()))),
    "list of integer": ("a non-empty list of integers",
                        lambda v: isinstance(v, list) and bool(v) and all(map(_is_integer, v))),
    "list of float": ("a non-empty list of numbers",
                      lambda v: isinstance(v, list) and bool(v) and all(map(_is_number, v))),
}


def _theoremqa_answer(records: _Records, recno: int, value, answer_type: str) -> str | None:
    """The gold text of an ``Answer`` that matches its declared ``Answer_type``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None  # reported as a missing gold answer
    expected, matches = _THEOREMQA_ANSWER_SHAPES[answer_type]
    if not matches(value):
        raise records.wrong_type(recno, "Answer", f"{expected} (its Answer_type is {answer_type!r})", value)
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list):
        return "[" + ", ".join(answers.format_number(v) for v in value) + "]"
    return value.strip() if isinstance(value, str) else answers.format_number(value)


def load_aime24(data_dir) -> pd.DataFrame:
    return _aime_benchmark(data_dir, "eval/aime24_test.jsonl", "aime24", 2024)


def load_aime25(data_dir) -> pd.DataFrame:
    return _aime_benchmark(data_dir, "eval/aime25_test.jsonl", "aime25", 2025)


def _aime_benchmark(data_dir, relative: str, source: str, year: int) -> pd.DataFrame:
    records = _jsonl(data_dir, relative)
    rows = []
    for recno, rec in records:
        raw = records.gold(recno, "answer", records.field(recno, rec, "answer", allow_empty=True))
        gold = answers.integer_string(raw)
        if gold is None:
            raise InputError(f"{records.path}: record {recno}: field 'answer' is not an integer: {raw!r}")
        rows.append(problem_row(f"{source}/{records.integer(recno, rec, 'id'):02d}",
                                records.text(recno, rec, "problem"), gold, source, year=year,
                                subject="AIME", answer_type="integer", record=recno))
    return problem_frame(rows, str(records.path))


HMMT25_DIR = "eval/hmmt_feb_2025"
_TIKZ = "\\begin{tikzpicture}"


def load_hmmt25(data_dir) -> pd.DataFrame:
    """HMMT February 2025 (MathArena's files): ``answers.csv`` (id, answer) and one
    ``problems/<id>.tex`` per problem. The gold is ``answer`` as written (LaTeX, stripped);
    problem 10's two comma-separated values are both required (answer_type ``list``). A
    problem whose text holds a TikZ figure (#24) is kept, flagged ``tikz``."""
    path = verified_path(data_dir, f"{HMMT25_DIR}/answers.csv")
    try:
        table = pd.read_csv(io.StringIO(_utf8_text(path)), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from None
    records = _Records(path, _non_empty(path, table.to_dict("records")))
    rows = []
    for recno, rec in records:
        number = records.integer(recno, rec, "id")
        gold = records.gold(recno, "answer", records.field(recno, rec, "answer", allow_empty=True))
        problem_path = verified_path(data_dir, f"{HMMT25_DIR}/problems/{number}.tex")
        problem = _utf8_text(problem_path)
        if not problem.strip():
            raise InputError(f"{problem_path}: empty problem text (answers.csv record {recno})")
        rows.append(problem_row(f"hmmt25/{number:02d}", problem, gold, "hmmt25", year=2025,
                                subject="HMMT February", answer_type=_hmmt_answer_type(gold),
                                flags="tikz" if _TIKZ in problem else None, record=recno))
    return problem_frame(rows, str(path))


def _hmmt_answer_type(gold: str) -> str:
    """``list`` for several comma-separated values (none of the golds has a comma inside a
    value), else the type the text shows."""
    return "list" if "," in gold else answers.infer_answer_type(gold)


def load_synthetic_arith_test(data_dir=None, **options) -> pd.DataFrame:
    return problem_frame(synthetic.generate("test", **options), "synthetic_arith_test")


# --- dispatch ---------------------------------------------------------------------------

_LOADERS: dict[str, Callable[..., pd.DataFrame]] = {
    "gsm8k_train": load_gsm8k_train, "math_train": load_math_train,
    "aime_1983_2023": load_aime_1983_2023, "deepmath_103k": load_deepmath_103k,
    "synthetic_arith": load_synthetic_arith, "gsm8k": load_gsm8k, "math": load_math,
    "math500": load_math500, "college_math": load_college_math,
    "deepmind_math": load_deepmind_math, "olympiadbench": load_olympiadbench,
    "theoremqa": load_theoremqa, "aime24": load_aime24, "aime25": load_aime25,
    "hmmt25": load_hmmt25, "synthetic_arith_test": load_synthetic_arith_test,
}
_SYNTHETIC_OPTIONS = ("n", "min_steps", "max_steps", "max_number", "seed")


def source_options(name: str) -> tuple[str, ...]:
    """The option names ``load_source`` accepts for ``name``."""
    loader = _loader(name)
    if name in ("synthetic_arith", "synthetic_arith_test"):
        return _SYNTHETIC_OPTIONS
    params = inspect.signature(loader).parameters.values()
    return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def load_source(name: str, data_dir: str | os.PathLike, **options) -> pd.DataFrame:
    """The problem table of training source or benchmark ``name`` (see SOURCES, BENCHMARKS)."""
    allowed = source_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InputError(f"{name}: unknown option(s) {unknown}; allowed: {list(allowed)}")
    return _loader(name)(data_dir, **options)


def _loader(name: str) -> Callable[..., pd.DataFrame]:
    if name not in _LOADERS:
        raise InputError(f"unknown data source {name!r}; sources: {list(SOURCES)}, "
                         f"benchmarks: {list(BENCHMARKS)}")
    return _LOADERS[name]
