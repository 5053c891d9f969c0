"""Dataset registry: every training source and benchmark as a normalized problem table.

``load_source(name, data_dir, **options)`` is the one entry point. Bundled files are
checked against ``<data_dir>/SHA256SUMS`` before they are parsed. The gold-answer rule of
each source is documented in data/README.md.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
from pathlib import Path
from typing import Callable

import pandas as pd

from trajfusion.data import answers, synthetic
from trajfusion.data.checksums import verified_path
from trajfusion.data.table import problem_frame, problem_row
from trajfusion.io import InputError, read_jsonl

log = logging.getLogger(__name__)

SOURCES = ("gsm8k_train", "math_train", "aime_1983_2023", "deepmath_103k", "synthetic_arith")
BENCHMARKS = ("gsm8k", "math", "math500", "college_math", "deepmind_math", "olympiadbench",
              "theoremqa", "aime24", "aime25", "synthetic_arith_test")
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

    def gold(self, recno: int, field: str, value) -> str:
        value = _as_text(value)
        if value is None or not value.strip():
            raise InputError(f"{self.path}: record {recno}: no gold answer in field {field!r}")
        return value.strip()


def _is_empty(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, (str, list)):
        return not (value.strip() if isinstance(value, str) else value)
    return False


def _jsonl(data_dir, relative: str) -> _Records:
    path = verified_path(data_dir, relative)
    return _Records(path, read_jsonl(path))


def _json_array(data_dir, relative: str) -> _Records:
    path = verified_path(data_dir, relative)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: malformed JSON ({exc})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InputError(f"{path}: expected a JSON array of objects")
    return _Records(path, records)


# --- training sources -------------------------------------------------------------------

def _gsm8k(data_dir, relative: str, source: str, width: int) -> pd.DataFrame:
    records = _jsonl(data_dir, relative)
    rows = []
    for recno, rec in records:
        problem = records.field(recno, rec, "question")
        rationale = records.field(recno, rec, "answer")
        gold = records.gold(recno, "answer", answers.gsm8k_final_answer(rationale))
        rows.append(problem_row(f"{source}/{recno - 1:0{width}d}", problem, gold, source,
                                answer_type=answers.infer_answer_type(gold)))
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
        unique_id = records.field(recno, rec, "unique_id")
        boxed = answers.last_boxed(records.field(recno, rec, "solution"))
        if boxed is not None and not boxed.strip():
            log.info("math_train: dropping %s (record %d): its solution ends in an empty box", unique_id, recno)
            continue
        gold = records.gold(recno, "solution", boxed)
        rows.append(problem_row(f"math_train/{unique_id.removeprefix('train/')}",
                                records.field(recno, rec, "problem"), gold, "math_train",
                                level=_math_level(rec.get("level")), subject=rec.get("type"),
                                answer_type="latex"))
    return problem_frame(rows, str(records.path))


def load_aime_1983_2023(data_dir, *, max_year: int = 2023, ambiguous: str = "first") -> pd.DataFrame:
    """AIME 1983..max_year from the CSV. ``ambiguous`` handles 2022-II-8, whose answer is
    "080 or 081 (both were accepted)": ``first`` keeps it with gold 80 and flag
    ``alternate_answer:81``; ``drop`` removes it."""
    if ambiguous not in ("first", "drop"):
        raise InputError(f"aime_1983_2023: option ambiguous must be 'first' or 'drop', got {ambiguous!r}")
    path = verified_path(data_dir, "train/aime_1983_2024.csv")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from None
    records = _Records(path, table.to_dict("records"))
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
                       answer_type="integer", flags=flags)


def load_deepmath_103k(data_dir=None, *, location: str = DEEPMATH_HUB_ID) -> pd.DataFrame:
    """DeepMath-103K from the Hub id or a local ``.jsonl``/``.parquet`` file of the same shape
    (fields question, final_answer, difficulty, topic, r1_solution_1..3).

    ``data_dir`` is unused: the data set is not bundled. Problem ids follow record order.
    """
    path = Path(location)
    if path.suffix in (".jsonl", ".parquet") or path.exists():
        records = _Records(path, _read_local_table(path))
    else:
        records = _Records(Path(location), _load_from_hub(location))
    rows = []
    for recno, rec in records:
        gold = records.gold(recno, "final_answer", records.field(recno, rec, "final_answer", allow_empty=True))
        difficulty = rec.get("difficulty")
        rows.append(problem_row(f"deepmath_103k/{recno - 1:06d}", records.field(recno, rec, "question"),
                                gold, "deepmath_103k",
                                level=None if difficulty is None else answers.format_number(float(difficulty)),
                                subject=rec.get("topic"), answer_type=answers.infer_answer_type(gold)))
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
        gold = records.gold(recno, "solution", answers.last_boxed(records.field(recno, rec, "solution")))
        idx = records.field(recno, rec, "idx")
        rows.append(problem_row(f"math/{int(idx):04d}", records.field(recno, rec, "problem"), gold, "math",
                                level=_math_level(rec.get("level")), subject=rec.get("type"),
                                answer_type="latex"))
    return problem_frame(rows, str(records.path))


def load_math500(data_dir) -> pd.DataFrame:
    records = _jsonl(data_dir, "eval/math500_test.jsonl")
    rows = []
    for recno, rec in records:
        gold = records.gold(recno, "answer", records.field(recno, rec, "answer", allow_empty=True))
        unique_id = records.field(recno, rec, "unique_id")
        rows.append(problem_row(f"math500/{unique_id.removeprefix('test/')}",
                                records.field(recno, rec, "problem"), gold, "math500",
                                level=_math_level(rec.get("level")), subject=rec.get("subject"),
                                answer_type="latex"))
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
        topic = rec.get("data_topic")
        rows.append(problem_row(f"college_math/{recno - 1:04d}", records.field(recno, rec, "question"),
                                gold, "college_math",
                                subject=topic.removeprefix("college_math.") if topic else None,
                                answer_type=answer_type, license=rec.get("license")))
    return problem_frame(rows, str(records.path))


def load_deepmind_math(data_dir) -> pd.DataFrame:
    """Lists of prime factors (``[3, 5]``) become ``3, 5``; sorted sequences (``12 3 0``)
    become ``12, 3, 0``; numbers and expressions such as ``-20*x`` are kept."""
    records = _json_array(data_dir, "eval/deepmind_mathematics.json")
    rows = []
    for recno, rec in records:
        raw = records.gold(recno, "answer", records.field(recno, rec, "answer", allow_empty=True))
        gold, answer_type = _deepmind_answer(raw)
        rows.append(problem_row(f"deepmind_math/{recno - 1:04d}", records.field(recno, rec, "question"),
                                gold, "deepmind_math", answer_type=answer_type))
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
        question = records.field(recno, rec, "question")
        if rec.get("context"):
            question = f"{rec['context']}\n\n{question}"
        tolerance = rec.get("error")
        rows.append(problem_row(f"olympiadbench/{int(records.field(recno, rec, 'id')):04d}", question, gold,
                                "olympiadbench", subject=rec.get("subfield"),
                                answer_type="list" if multiple else answers.infer_answer_type(gold),
                                unit=rec.get("unit"),
                                tolerance=None if tolerance in (None, "") else float(tolerance)))
    return problem_frame(rows, str(records.path))


_THEOREMQA_TYPES = {"integer": "integer", "float": "number", "bool": "bool", "option": "option",
                    "list of integer": "list", "list of float": "list"}


def load_theoremqa(data_dir, *, keep_pictures: bool = False) -> pd.DataFrame:
    """TheoremQA; the 53 questions that need a picture are flagged ``picture`` and, by
    default, dropped (the models here read text only)."""
    records = _json_array(data_dir, "eval/theoremqa_test.json")
    rows = []
    for recno, rec in records:
        answer_type = records.field(recno, rec, "Answer_type")
        if answer_type not in _THEOREMQA_TYPES:
            raise InputError(f"{records.path}: record {recno}: unknown Answer_type {answer_type!r}")
        value = records.field(recno, rec, "Answer", allow_empty=True)
        gold = records.gold(recno, "Answer", _theoremqa_answer(records, recno, value))
        picture = rec.get("Picture") not in (None, "", "None")
        if picture and not keep_pictures:
            continue
        rows.append(problem_row(f"theoremqa/{records.field(recno, rec, 'id')}",
                                records.field(recno, rec, "Question"), gold, "theoremqa",
                                subject=rec.get("field"), answer_type=_THEOREMQA_TYPES[answer_type],
                                flags="picture" if picture else None))
    return problem_frame(rows, str(records.path))


def _theoremqa_answer(records: _Records, recno: int, value) -> str | None:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return answers.format_number(value)
    if isinstance(value, list):
        if not value or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise InputError(f"{records.path}: record {recno}: field 'Answer' must be a non-empty list of numbers")
        return "[" + ", ".join(answers.format_number(v) for v in value) + "]"
    if isinstance(value, str) or value is None:
        return value
    raise InputError(f"{records.path}: record {recno}: field 'Answer' has unsupported type {type(value).__name__}")


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
        rows.append(problem_row(f"{source}/{int(records.field(recno, rec, 'id')):02d}",
                                records.field(recno, rec, "problem"), gold, source, year=year,
                                subject="AIME", answer_type="integer"))
    return problem_frame(rows, str(records.path))


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
    "synthetic_arith_test": load_synthetic_arith_test,
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
