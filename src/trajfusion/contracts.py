"""Table contracts: every table the stages exchange, declared once as data.

A ``Contract`` lists a table's columns (``Column``: dtype, nullability, allowed values or
pattern, bounds, description), its key, whether other columns may ride along, whether it
may be empty, and named cross-column ``Rule``s. ``Contract.check`` validates a DataFrame
with vectorised pandas operations and raises ``trajfusion.io.InputError`` with one line
naming the source, the 1-based record with its key and the field; ``read`` and ``write``
wrap ``trajfusion.io.read_table`` / ``write_parquet`` with it. JSON Lines contracts (the
fused dataset) check records against the JSON schema their columns imply; the report
manifest is a JSON schema (``MANIFEST_SCHEMA``, ``check_document``).

Dtypes are the ones the writers produce (pandas 3): ``str`` is pandas' string dtype (an
object column of strings and nulls is accepted too: an all-null column reads back as
object), ``Int64`` is the nullable integer, ``json`` a string holding a JSON document.
``docs/architecture.md``'s "Tables" section is generated from these declarations:
``python -m trajfusion.contracts --markdown`` prints it, ``--update-doc PATH`` rewrites it.

pandera was not used: it is not installed, would be a new dependency of every stage, and
its errors (a failure-case frame per check) would still need translating into the
project's one-line messages, which is most of the work here.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from trajfusion.io import InputError, read_jsonl, read_table, write_jsonl, write_parquet, write_text
from trajfusion.vocabulary import (
    ANSWER_TYPES,
    DISTILL_METHODS,
    FINISH_REASONS,
    GRADERS,
    METHODS,
    REFLECT_CONSTRUCTORS,
    STATUSES,
    STRATEGIES,
)

DTYPES = ("str", "int64", "Int64", "float64", "bool", "json")


# ----------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Column:
    """One column: ``dtype`` as the writer produces it (one of ``DTYPES``)."""

    name: str
    dtype: str
    description: str
    nullable: bool = False
    values: tuple[str, ...] | None = None  # allowed values
    pattern: str | None = None  # a regular expression every value must match in full
    nonblank: bool = False  # strings must contain a non-space character
    minimum: float | None = None
    maximum: float | None = None
    schema: dict | None = None  # dtype "json" (and JSONL values): JSON schema of the value

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"column {self.name!r}: unknown dtype {self.dtype!r}")


@dataclass(frozen=True)
class Rule:
    """A cross-column condition; ``violations(df)`` flags the rows that break it. Messages
    name the first of ``columns`` as the field."""

    name: str
    description: str
    columns: tuple[str, ...]
    violations: Callable[[pd.DataFrame], Any]


@dataclass(frozen=True)
class Contract:
    """A table: its columns in order, key, and what else it allows (see the module docstring)."""

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    extra_columns: bool = False
    empty_ok: bool = False
    rules: tuple[Rule, ...] = ()
    format: str = "parquet"  # or "jsonl" (records)
    produced_by: str = ""

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"the {self.name} has no column {name!r}")

    def check(self, df: pd.DataFrame, source: str, columns: Iterable[str] | None = None,
              exact: bool = False, record_numbers: Sequence[int] | None = None) -> pd.DataFrame:
        """Raise InputError at the first violation; return ``df`` unchanged.

        ``columns`` restricts the check to the columns a reader uses (the key is checked for
        duplicates only when all its columns are among them); ``exact`` also requires each
        column's dtype to be the declared one (``write`` uses it), where a reader accepts
        any representation of the right values (e.g. a JSONL integer column with nulls,
        read as float64). ``record_numbers`` (one per row) replace the row positions in
        messages, e.g. the records of the raw file a frame was built from."""
        checked = self.names if columns is None else list(columns)
        _check_columns(self, df, source, checked, whole=columns is None)
        if df.empty and not self.empty_ok:
            raise InputError(f"{source}: the table has no rows")
        frame = _Frame(df, source, self.key, record_numbers)
        for name in checked:
            _check_column(frame, self.column(name), exact)
        if set(self.key) <= set(checked):
            _check_key(frame, self.key)
        for rule in self.rules:
            if set(rule.columns) <= set(checked):
                _check_rule(frame, rule)
        return df

    def conform(self, df: pd.DataFrame, columns: Iterable[str] | None = None) -> pd.DataFrame:
        """``df`` (already checked) with its contract columns cast to the declared dtypes,
        e.g. a JSONL table's float or object columns; columns already right are kept as they are."""
        names = self.names if columns is None else list(columns)
        wanted = {name: _PANDAS_DTYPES[self.column(name).dtype] for name in names}
        casts = {name: dtype for name, dtype in wanted.items() if not _dtype_is(df[name], self.column(name).dtype)}
        return df.astype(casts) if casts else df

    def json_schema(self) -> dict:
        """The JSON schema of one record of a JSON Lines contract."""
        return {"type": "object", "required": self.names, "additionalProperties": self.extra_columns,
                "properties": {c.name: _value_schema(c) for c in self.columns}}


# ------------------------------------------------------------------------------ checking


class _Frame:
    """A frame under check: names records (1-based, with their key) in messages."""

    def __init__(self, df: pd.DataFrame, source: str, key: tuple[str, ...], numbers: Sequence[int] | None = None):
        self.df, self.source, self.numbers = df, source, numbers
        self.key = [name for name in key if name in df.columns]

    def number(self, position: int) -> int:
        return position + 1 if self.numbers is None else int(self.numbers[position])

    def label(self, position: int) -> str:
        values = ", ".join(f"{name}={_plain(self.df[name].iloc[position])!r}" for name in self.key)
        return f"record {self.number(position)}" + (f" ({values})" if values else "")

    def fail_first(self, mask, problem: str, field: str | None = None) -> None:
        """Raise at the first flagged row; ``{value}`` in ``problem`` becomes its value of ``field``."""
        hits = np.flatnonzero(np.asarray(mask, dtype=bool))
        if len(hits):
            self.fail_at(int(hits[0]), problem, field)

    def fail_at(self, position: int, problem: str, field: str | None = None) -> None:
        if field is not None:
            problem = f"field '{field}' " + problem.replace("{value}", _short(self.df[field].iloc[position]))
        raise InputError(f"{self.source}: {self.label(position)}: {problem}")


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _short(value) -> str:
    text = repr(_plain(value))
    return text if len(text) <= 80 else text[:77] + "..."


def _check_columns(contract: Contract, df: pd.DataFrame, source: str, checked: list[str], whole: bool) -> None:
    missing = [name for name in checked if name not in df.columns]
    if missing:
        raise InputError(f"{source}: missing required column(s) {missing}; has {list(df.columns)}")
    extra = [name for name in df.columns if name not in contract.names]
    if whole and extra and not contract.extra_columns:
        raise InputError(f"{source}: unexpected column(s) {extra}; the {contract.name} has only {contract.names}")


def _check_column(frame: _Frame, column: Column, exact: bool) -> None:
    values = frame.df[column.name]
    null = values.isna().to_numpy()
    if not column.nullable:
        frame.fail_first(null, "is null", column.name)
    if exact and not _dtype_is(values, column.dtype):
        raise InputError(f"{frame.source}: column '{column.name}' has dtype {values.dtype}, "
                         f"the contract says {column.dtype}")
    present = ~null
    _KIND_CHECKS[column.dtype](frame, column, values, present)
    if column.values is not None:
        frame.fail_first(present & ~values.isin(column.values).to_numpy(),
                         f"must be one of {list(column.values)}, got {{value}}", column.name)
    if column.pattern is not None:
        matches = values.astype("str").str.fullmatch(column.pattern).fillna(False).to_numpy(dtype=bool)
        frame.fail_first(present & ~matches, f"must match {column.pattern}, got {{value}}", column.name)
    if column.nonblank:
        blank = values.astype("str").str.strip().eq("").fillna(False).to_numpy(dtype=bool)
        frame.fail_first(present & blank, "must not be blank, got {value}", column.name)
    if column.minimum is not None or column.maximum is not None:
        _check_bounds(frame, column, pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64"))


def _check_bounds(frame: _Frame, column: Column, numbers: np.ndarray) -> None:
    with np.errstate(invalid="ignore"):
        if column.minimum is not None:
            frame.fail_first(numbers < column.minimum, f"must be >= {column.minimum:g}, got {{value}}", column.name)
        if column.maximum is not None:
            frame.fail_first(numbers > column.maximum, f"must be <= {column.maximum:g}, got {{value}}", column.name)


def _dtype_is(values: pd.Series, dtype: str) -> bool:
    if dtype in ("str", "json"):
        return pd.api.types.is_string_dtype(values.dtype)  # includes object columns of strings/nulls
    return str(values.dtype) == dtype


def _is_instance(values: pd.Series, types: tuple, present: np.ndarray) -> np.ndarray:
    """Rows holding a value that is not one of ``types`` (bools are no numbers here)."""
    ok = values.map(lambda v: isinstance(v, types) and (bool in types or not isinstance(v, (bool, np.bool_))))
    return present & ~ok.to_numpy(dtype=bool)


def _check_str(frame: _Frame, column: Column, values: pd.Series, present: np.ndarray) -> None:
    if isinstance(values.dtype, pd.StringDtype):
        return
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return
    frame.fail_first(_is_instance(values, (str,), present), "must be a string, got {value}", column.name)


def _check_int(frame: _Frame, column: Column, values: pd.Series, present: np.ndarray) -> None:
    if pd.api.types.is_integer_dtype(values.dtype):
        return
    if pd.api.types.is_float_dtype(values.dtype):
        fraction = (values != np.floor(values)).fillna(False).to_numpy(dtype=bool)
        frame.fail_first(present & fraction, "must be an integer, got {value}", column.name)
        return
    numbers = (int, float, np.integer, np.floating)
    whole = values.map(lambda v: isinstance(v, numbers) and not isinstance(v, (bool, np.bool_))
                       and float(v).is_integer())
    frame.fail_first(present & ~whole.to_numpy(dtype=bool), "must be an integer, got {value}", column.name)


def _check_float(frame: _Frame, column: Column, values: pd.Series, present: np.ndarray) -> None:
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return
    frame.fail_first(_is_instance(values, (int, float, np.integer, np.floating), present),
                     "must be a number, got {value}", column.name)


def _check_bool(frame: _Frame, column: Column, values: pd.Series, present: np.ndarray) -> None:
    if pd.api.types.is_bool_dtype(values.dtype):
        return
    frame.fail_first(_is_instance(values, (bool, np.bool_), present), "must be true or false, got {value}",
                     column.name)


def _check_json(frame: _Frame, column: Column, values: pd.Series, present: np.ndarray) -> None:
    _check_str(frame, column, values, present)
    schema = _Schema(column.schema) if column.schema else None
    # Each distinct document once (e.g. the many "[]" of problems without incorrect answers).
    for text in pd.unique(values[present].to_numpy(dtype=object)):
        problem = _json_problem(text, schema)
        if problem is not None:
            frame.fail_first(present & (values == text).fillna(False).to_numpy(dtype=bool), problem, column.name)


def _json_problem(text: str, schema: _Schema | None) -> str | None:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"is not JSON ({exc.msg})"
    error = schema.error(document) if schema is not None else None
    return None if error is None else f"JSON {_path(error)}: {error.message}"


_PANDAS_DTYPES = {"str": "str", "json": "str", "int64": "int64", "Int64": "Int64", "float64": "float64",
                  "bool": "bool"}
_KIND_CHECKS = {"str": _check_str, "int64": _check_int, "Int64": _check_int, "float64": _check_float,
                "bool": _check_bool, "json": _check_json}


def _check_rule(frame: _Frame, rule: Rule) -> None:
    frame.fail_first(rule.violations(frame.df), f"breaks rule '{rule.name}': {rule.description}", rule.columns[0])


def _check_key(frame: _Frame, key: tuple[str, ...]) -> None:
    repeated = frame.df.duplicated(list(key)).to_numpy()
    if not repeated.any():
        return
    second = int(np.flatnonzero(repeated)[0])
    same = np.logical_and.reduce([(frame.df[name] == frame.df[name].iloc[second]).to_numpy(dtype=bool)
                                  for name in key])
    first = int(np.flatnonzero(same)[0])
    raise InputError(f"{frame.source}: {frame.label(second)}: duplicate key ({', '.join(key)}), "
                     f"also record {frame.number(first)}")


# ------------------------------------------------------------------- JSON records, documents


class _Schema:
    """A draft-7 JSON schema: fastjsonschema (compiled to Python, ~50x faster) says whether a
    document fits, jsonschema's best-matching error explains one that does not."""

    def __init__(self, schema: dict):
        import fastjsonschema
        import jsonschema

        self._fits = fastjsonschema.compile(schema)
        self._failure = fastjsonschema.JsonSchemaException
        self._explain = jsonschema.Draft7Validator(schema)

    def error(self, document):
        """jsonschema's best-matching ValidationError, None when ``document`` fits."""
        try:
            self._fits(document)
            return None
        except self._failure:
            return _best_error(self._explain, document)


def _best_error(validator, document):
    import jsonschema

    return jsonschema.exceptions.best_match(validator.iter_errors(document))


def _path(error) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".") \
        or "(top level)"


_JSON_TYPES = {"str": "string", "int64": "integer", "Int64": "integer", "float64": "number", "bool": "boolean"}


def _value_schema(column: Column) -> dict:
    if column.dtype == "json":
        schema = dict(column.schema or {})
    else:
        schema = {"type": _JSON_TYPES[column.dtype]}
        if column.values is not None:
            schema["enum"] = list(column.values)
        if column.pattern is not None:
            schema["pattern"] = f"^(?:{column.pattern})$"
        if column.nonblank:
            schema["pattern"] = r"\S"
        if column.minimum is not None:
            schema["minimum"] = column.minimum
        if column.maximum is not None:
            schema["maximum"] = column.maximum
    return {"anyOf": [schema, {"type": "null"}]} if column.nullable else schema


def check_records(rows: Iterable[dict], contract: Contract, source: str) -> Iterator[dict]:
    """Yield ``rows`` unchanged while checking each against ``contract.json_schema()``; the
    key and the rules are checked once the last row has passed (a streamed write aborts)."""
    schema = _Schema(contract.json_schema())
    seen: dict[tuple, int] = {}
    rule_columns = sorted({name for rule in contract.rules for name in rule.columns})
    collected: dict[str, list] = {name: [] for name in [*contract.key, *rule_columns]}
    number = 0
    for number, row in enumerate(rows, start=1):
        key = tuple(row.get(name) for name in contract.key)
        label = f"record {number} ({', '.join(f'{n}={v!r}' for n, v in zip(contract.key, key))})"
        error = schema.error(row)
        if error is not None:
            raise InputError(f"{source}: {label}: field '{_path(error)}' {error.message}")
        if key in seen:
            raise InputError(f"{source}: {label}: duplicate key ({', '.join(contract.key)}), "
                             f"also record {seen[key]}")
        seen[key] = number
        for name, values in collected.items():
            values.append(row[name])
        yield row
    if number == 0 and not contract.empty_ok:
        raise InputError(f"{source}: the table has no rows")
    if contract.rules:
        frame = _Frame(pd.DataFrame(collected), source, contract.key)
        for rule in contract.rules:
            _check_rule(frame, rule)


def check_document(document: Any, schema: dict, source: str) -> Any:
    """Raise InputError naming ``source`` and the field path unless ``document`` fits ``schema``."""
    import jsonschema

    error = _best_error(jsonschema.Draft202012Validator(schema), document)
    if error is not None:
        raise InputError(f"{source}: {_path(error)}: {error.message}")
    return document


# ------------------------------------------------------------------------------ file level


def read(path: str | os.PathLike, contract: Contract, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """Read a table (Parquet: only ``columns`` when given) and check it."""
    if contract.format == "jsonl":
        rows = read_jsonl(path)
        list(check_records(rows, contract, str(path)))
        return pd.DataFrame(rows, columns=contract.names if not rows else None)
    columns = None if columns is None else list(columns)
    if columns is not None and str(path).endswith(".parquet") and os.path.exists(path):
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
        missing = [c for c in columns if c not in names]
        if missing:
            raise InputError(f"{path}: missing required column(s) {missing}; has {names}")
        df = pd.read_parquet(path, columns=columns)
    else:
        df = read_table(path)
    return contract.check(df, str(path), columns)


def write(df: pd.DataFrame, path: str | os.PathLike, contract: Contract, metadata: dict | None = None,
          columns: Iterable[str] | None = None) -> None:
    """Check ``df`` strictly (declared dtypes), put the contract's columns first in contract
    order (extra columns after them, as they came) and write it atomically as Parquet.
    ``columns`` restricts the check and that ordering to these contract columns, for a table
    built from a partial input (e.g. the verification of bare samples)."""
    checked = contract.names if columns is None else [name for name in contract.names if name in set(columns)]
    contract.check(df, str(path), columns=columns, exact=True)
    extra = [name for name in df.columns if name not in checked]
    ordered = checked + extra
    write_parquet(df if list(df.columns) == ordered else df[ordered], path, metadata=metadata)


def write_records(rows: Iterable[dict], path: str | os.PathLike, contract: Contract) -> int:
    """Write JSON Lines atomically, checking each record as it streams; returns the count."""
    return write_jsonl(check_records(rows, contract, str(path)), path)


# ------------------------------------------------------------------------------- contracts

_PROBLEM_ID = Column("problem_id", "str", "stable, unique id, e.g. `gsm8k_train/00042`, "
                     "`math_train/algebra/1.json`", nonblank=True)
_SAMPLE_IDX = Column("sample_idx", "int64", "sample number within the problem, 0..K-1", minimum=0)
_RESPONSE = Column("response", "str", "the generated text")
_N_TOKENS = Column("n_tokens", "int64", "generated tokens, stop token included", minimum=0)
_FINISH = Column("finish_reason", "str", "`length` when max_new_tokens was hit", values=FINISH_REASONS)
_GOLD = Column("gold", "str", "the problem's gold answer (the problem table's `answer`)")
_COUNT = {"dtype": "int64", "minimum": 0}


def _uneven_samples(df: pd.DataFrame):
    """Rows of problems whose samples are not 0..N-1, N the first problem's count."""
    if df.empty:
        return np.zeros(0, dtype=bool)
    grouped = df.groupby("problem_id", sort=False)["sample_idx"]
    size, low, high = (grouped.transform(how) for how in ("size", "min", "max"))
    return ((size != size.iloc[0]) | (low != 0) | (high != size - 1)).to_numpy(dtype=bool)


def _second_gold(df: pd.DataFrame):
    """Rows whose gold differs from the first gold of their problem."""
    return (df["gold"] != df.groupby("problem_id", sort=False)["gold"].transform("first")).to_numpy(dtype=bool)


def _second_teacher(df: pd.DataFrame):
    return (df["teacher"] != df["teacher"].iloc[0]).to_numpy(dtype=bool) if len(df) else np.zeros(0, dtype=bool)


SAMPLES_RULE = Rule("samples-0-to-n-1", "every problem has samples 0..N-1, with the same N for all problems",
                    ("sample_idx", "problem_id"), _uneven_samples)
GOLD_RULE = Rule("one-gold-per-problem", "all rows of a problem have the same `gold`", ("gold", "problem_id"),
                 _second_gold)
TEACHER_RULE = Rule("one-teacher", "all rows have the same `teacher`", ("teacher",), _second_teacher)


def _status_ok(df: pd.DataFrame) -> pd.Series:
    return df["status"].astype("str") == "ok"


def _correct_needs_ok(df: pd.DataFrame):
    return df["correct"].eq(True).to_numpy(dtype=bool) & ~_status_ok(df).to_numpy(dtype=bool)


def _ok_needs_answer(df: pd.DataFrame):
    return _status_ok(df).to_numpy(dtype=bool) & df["answer"].isna().to_numpy()


def _incorrect_needs_group(df: pd.DataFrame):
    wrong = _status_ok(df).to_numpy(dtype=bool) & ~df["correct"].eq(True).to_numpy(dtype=bool)
    return wrong & df["answer_group"].isna().to_numpy()


VERDICT_RULES = (
    Rule("correct-only-if-ok", "`correct` is true only when `status` is `ok`", ("correct", "status"),
         _correct_needs_ok),
    Rule("ok-has-answer", "a response with `status` `ok` has an `answer`", ("answer", "status"), _ok_needs_answer),
)
INCORRECT_GROUP_RULE = Rule(
    "incorrect-has-group", "an incorrect `ok` response has an `answer_group`", ("answer_group", "status", "correct"),
    _incorrect_needs_group)



def _ok_needs_group(df: pd.DataFrame):
    return _status_ok(df).to_numpy(dtype=bool) & df["answer_group"].isna().to_numpy()


OK_GROUP_RULE = Rule("ok-has-group", "a response with `status` `ok` has an `answer_group`",
                     ("answer_group", "status"), _ok_needs_group)

PROBLEMS = Contract(
    "problem table", "Pools and benchmarks, one row per problem, sorted by `problem_id`. Benchmarks may carry "
    "source-specific columns after these (e.g. `license`, `unit`, `tolerance`).",
    (_PROBLEM_ID,
     Column("problem", "str", "the question text", nonblank=True),
     Column("answer", "str", "the gold answer", nonblank=True),
     Column("source", "str", "registry name of the dataset"),
     Column("level", "str", "difficulty level", nullable=True),
     Column("subject", "str", "subject or topic", nullable=True),
     Column("year", "Int64", "contest year", nullable=True),
     Column("answer_type", "str", "how the verifier reads the gold", nullable=True, values=ANSWER_TYPES),
     Column("flags", "str", "e.g. `picture` (the question needs a picture)", nullable=True)),
    key=("problem_id",), extra_columns=True, produced_by="`build-pool`, `prepare-benchmark`")

SAMPLE_SHARD = Contract(
    "sample shard", "One shard of K teacher samples per problem; a shard of an empty slice of the pool has no rows.",
    (_PROBLEM_ID, _SAMPLE_IDX, _RESPONSE, _N_TOKENS, _FINISH,
     Column("teacher", "str", "teacher name"),
     Column("seed", "int64", "the base seed; a problem's samples are seeded from (seed, problem_id)")),
    key=("problem_id", "sample_idx"), empty_ok=True, rules=(SAMPLES_RULE, TEACHER_RULE), produced_by="`sample`")

MERGED_SAMPLES = Contract(
    "merged samples", "The shards joined with the pool's `problem`, `answer` (as `gold`), `answer_type` and "
    "`source`, sorted by `(problem_id, sample_idx)`; `merge-samples` checks that every pool problem has its "
    "K = `--k` samples.",
    (_PROBLEM_ID, _SAMPLE_IDX,
     Column("problem", "str", "the question text"), _GOLD,
     Column("answer_type", "str", "from the pool (null when the pool has none)", nullable=True, values=ANSWER_TYPES),
     Column("source", "str", "registry name of the problem's dataset"),
     _RESPONSE, _N_TOKENS, _FINISH, SAMPLE_SHARD.column("teacher"), SAMPLE_SHARD.column("seed")),
    key=("problem_id", "sample_idx"), rules=(SAMPLES_RULE, GOLD_RULE, TEACHER_RULE), produced_by="`merge-samples`")

VERIFIED = Contract(
    "verified table", "The input samples' columns plus the verdict columns.",
    (*MERGED_SAMPLES.columns,
     Column("answer", "str", "normalized extracted answer", nullable=True),
     Column("correct", "bool", "only true when `status == \"ok\"`"),
     Column("status", "str", "`ok`, `timeout` or `error` of the verification, or `filtered:<reason>` of an output "
            "filter", values=STATUSES),
     Column("answer_group", "str", "for an incorrect `ok` response, the representative answer of its "
            "incorrect-answer group (normalized strings merged when math-verify finds them equivalent)",
            nullable=True)),
    key=("problem_id", "sample_idx"), extra_columns=True,
    rules=(GOLD_RULE, TEACHER_RULE, *VERDICT_RULES, INCORRECT_GROUP_RULE),
    produced_by="`verify`")

_ANSWER_GROUPS_SCHEMA = {"type": "array", "items": {
    "type": "object", "required": ["answer", "size"], "additionalProperties": False,
    "properties": {"answer": {"type": "string"}, "size": {"type": "integer", "minimum": 1}}}}


def _counts_disagree(df: pd.DataFrame):
    return (df["n_correct"] + df["n_incorrect"] != df["K"]).to_numpy(dtype=bool)


def _error_rate_undefined(df: pd.DataFrame):
    return (df["error_rate"].isna() != (df["K"] == 0)).to_numpy(dtype=bool)


STATISTICS = Contract(
    "statistics table", "Per-problem sampling statistics of a verified table, one row per problem sorted by "
    "`problem_id`; `K + n_filtered + n_timeout + n_error` is the number of responses.",
    (_PROBLEM_ID,
     Column("source", "str", "the problem's first non-null `source` (null without one)", nullable=True),
     Column("K", description="responses with `status == \"ok\"`", **_COUNT),
     Column("n_correct", description="correct `ok` responses", **_COUNT),
     Column("n_incorrect", description="incorrect `ok` responses", **_COUNT),
     Column("error_rate", "float64", "r = n_incorrect / K; null (NaN) when K = 0", nullable=True,
            minimum=0, maximum=1),
     Column("n_distinct_incorrect", description="u, the number of incorrect-answer groups", **_COUNT),
     Column("entropy", "float64", "Shannon entropy (nats) of the incorrect-answer group sizes; 0 without incorrect "
            "answers, null (NaN) when K = 0", nullable=True, minimum=0),
     Column("n_filtered", description="responses an output filter dropped", **_COUNT),
     Column("n_timeout", description="verifications that timed out", **_COUNT),
     Column("n_error", description="verifications that crashed", **_COUNT),
     Column("answer_groups", "json", "list of `{\"answer\", \"size\"}`, largest first, ties by answer",
            schema=_ANSWER_GROUPS_SCHEMA)),
    key=("problem_id",),
    rules=(Rule("counts-add-up", "`n_correct + n_incorrect == K`", ("n_incorrect", "K", "n_correct"),
                _counts_disagree),
           Rule("error-rate-iff-k", "`error_rate` is null exactly when `K == 0`", ("error_rate", "K"),
                _error_rate_undefined)),
    produced_by="`stats`")

_MESSAGES_SCHEMA = {"type": "array", "minItems": 2, "maxItems": 2, "items": [
    {"type": "object", "required": ["role", "content"], "additionalProperties": False,
     "properties": {"role": {"const": role}, "content": {"type": "string", "pattern": r"\S"}}}
    for role in ("user", "assistant")]}


def _errors_miscounted(df: pd.DataFrame):
    return (df["error_indices"].map(len) != df["n_errors"]).to_numpy(dtype=bool)


def _errors_beyond_k_max(df: pd.DataFrame):
    return (df["n_errors"] > df["k_max"]).to_numpy(dtype=bool)


def _spans_miscounted(df: pd.DataFrame):
    no_success = df["success_span"].isna().to_numpy(dtype=bool)
    return ((df["error_spans"].map(len) != df["n_errors"]).to_numpy(dtype=bool)
            | (no_success != (df["n_errors"] == 0).to_numpy(dtype=bool)))


_SPAN_SCHEMA = {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer", "minimum": 0}}


FUSED_EXAMPLE = Contract(
    "fused dataset", "One chat example per problem, sorted by `problem_id`. Template-neutral: training "
    "applies the backbone's template (`trajfusion.templates`). The `.summary.json` beside it holds problems, mean "
    "#Err, the distribution of k, mean response characters/tokens and the alpha used.",
    (_PROBLEM_ID,
     Column("messages", "json", "`[{\"role\": \"user\", \"content\": problem}, {\"role\": \"assistant\", "
            "\"content\": fused_text}]`", schema=_MESSAGES_SCHEMA),
     Column("n_errors", description="incorrect trajectories fused (k, or fewer when they run out)", **_COUNT),
     Column("error_indices", "json", "`sample_idx` of the fused errors, in fusion order",
            schema={"type": "array", "items": {"type": "integer", "minimum": 0}}),
     Column("correct_index", "int64", "`sample_idx` of the correct trajectory y*", minimum=0),
     Column("alpha", "str", "alpha as exact text (`0.5`, `16/21`); null for RFT built without alpha",
            nullable=True, pattern=r"[0-9]+(\.[0-9]+)?|[0-9]+/[0-9]+"),
     Column("k_max", description="maximum fused errors; 0 is vanilla RFT", **_COUNT),
     Column("strategy", "str", "error selection", values=STRATEGIES),
     Column("seed", "int64", "fusion seed"),
     Column("error_spans", "json", "per fused error, in fusion order, the `[start, end)` character range of its "
            "reasoning and phrase in the assistant text: training removes the last ones from an over-long example "
            "(`trajfusion.fused_text`)", schema={"type": "array", "items": _SPAN_SCHEMA}),
     Column("success_span", "json", "the range of the success (and certainty) phrase, removed with the last "
            "error; null without errors", nullable=True, schema=_SPAN_SCHEMA)),
    key=("problem_id",), format="jsonl",
    rules=(Rule("errors-listed", "`n_errors` equals the length of `error_indices`", ("n_errors", "error_indices"),
                _errors_miscounted),
           Rule("errors-within-k-max", "`n_errors <= k_max`", ("n_errors", "k_max"), _errors_beyond_k_max),
           Rule("spans-listed", "`error_spans` has `n_errors` ranges; `success_span` is null exactly when "
                "`n_errors` is 0", ("n_errors", "error_spans", "success_span"), _spans_miscounted)),
    produced_by="`fuse`")

REFLECTED_EXAMPLE = Contract(
    "micro-reflective dataset", "TAPO's micro-reflective trajectories (`trajfusion.reflect`): one chat example per "
    "constructed problem, sorted by `problem_id`, in the fused dataset's columns (so `trajfusion train` reads it "
    "unchanged: no fused errors, `k_max` 0, the RFT values of `alpha` and `strategy`) plus its provenance. "
    "The `.summary.json` beside it counts candidates, constructions and rejections per reason and names "
    "the constructor.",
    (*FUSED_EXAMPLE.columns,
     Column("incorrect_index", "int64", "`sample_idx` of the incorrect trajectory y- whose prefix is kept",
            minimum=0),
     Column("failure_step", "int64", "the 1-based step of y- where it first goes wrong; steps before it are kept",
            minimum=1),
     Column("n_steps", "int64", "steps of y- (`reflect.step_split`)", minimum=1),
     Column("constructor", "str", "what built the trajectory", values=REFLECT_CONSTRUCTORS),
     Column("prefix_span", "json", "the `[start, end)` character range of the kept prefix of y- in the assistant "
            "text (empty when `failure_step` is 1)", schema=_SPAN_SCHEMA),
     Column("loss_on_prefix", "bool", "false: training gives the prefix's tokens label -100")),
    key=("problem_id",), format="jsonl", rules=FUSED_EXAMPLE.rules, produced_by="`reflect`")

VERDICTS = Contract(
    "verdict table", "One row per (problem, sample) of an evaluation, sorted by `(problem_id, sample_idx)`.",
    (_PROBLEM_ID, _SAMPLE_IDX, _RESPONSE, _N_TOKENS, _FINISH, _GOLD,
     VERIFIED.column("answer"), VERIFIED.column("correct"), VERIFIED.column("status"),
     Column("n_reflections", description="reflections: occurrences of the phrase file's error-recognition phrases "
            "(case-insensitive, whole phrases; `trajfusion.evaluate.reflections`)", **_COUNT),
     Column("n_markers", description="generic self-correction markers (\"wait\", \"hmm\", ...; "
            "`GENERIC_MARKERS`) outside the reflections", **_COUNT),
     Column("answer_group", "str", "the answer group maj@k votes for: the normalized gold for every correct "
            "response (one group), the verifier's incorrect-answer group for an incorrect `ok` response (as in "
            "the verified table); null when `status` is not `ok`", nullable=True),
     Column("grader", "str", "the grader of `answer`, `correct`, `status` and `answer_group` (the evaluate "
            "setting `grader`)", values=GRADERS),
     Column("other_answer", "str", "the answer the other grader extracts (normalized its way)", nullable=True),
     Column("other_correct", "bool", "the other grader's verdict (`qwen25_math` when `grader` is `math_verify`, "
            "and the reverse); false on its timeout, error or missing answer")),
    key=("problem_id", "sample_idx"), rules=(SAMPLES_RULE, GOLD_RULE, *VERDICT_RULES, OK_GROUP_RULE),
    produced_by="`evaluate`")

TABLES = (PROBLEMS, SAMPLE_SHARD, MERGED_SAMPLES, VERIFIED, STATISTICS, FUSED_EXAMPLE, REFLECTED_EXAMPLE,
          VERDICTS)

TABLE_NAMES = ("table1", "table2", "table3", "figure3", "figure4", "evaluations")
# An experiment of one's own (no `table:`) gets a results table of its own, named by this
# prefix and the experiment's name.
RESULTS_TABLE_PREFIX = "results-"


def results_table(experiment: str) -> str:
    return RESULTS_TABLE_PREFIX + experiment


# An experiment with `reflection_metrics:` gets a table of DSR, ERR and Pass@k (trajfusion.report.reflection).
REFLECTION_TABLE_PREFIX = "reflection-"


def reflection_table(experiment: str) -> str:
    return REFLECTION_TABLE_PREFIX + experiment


# An experiment with distillation runs gets a diagnostics figure and table of this name; the
# paired tests of its distilled models against the SFT runs are one table for all experiments.
DISTILL_REPORT_PREFIX = "distill-"
DISTILL_SIGNIFICANCE = "significance-distill"


def distill_report(experiment: str) -> str:
    return DISTILL_REPORT_PREFIX + experiment


def _text(description: str, optional: bool = False, **extra) -> dict:
    """A string field of the manifest (non-empty unless it has ``extra`` constraints)."""
    if optional:
        return {"type": ["string", "null"], "description": description}
    return {"type": "string", **(extra or {"minLength": 1}), "description": description}


MANIFEST_SCHEMA = {
    "type": "object",
    "description": "`results/report/manifest.json`, written by `rules/report.smk`, read by `trajfusion report`; "
                   "paths are relative to the working directory.",
    "required": ["smoke_test", "evals"],
    "additionalProperties": False,
    "properties": {
        "smoke_test": {"type": "boolean", "description": "true adds a caveat to every output"},
        "provenance": {"type": "object", "description": "config hash, git commit, library versions, data "
                       "checksums, executor, command line (recorded at run time)"},
        "evals": {"type": "array", "description": "one entry per verdict table", "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["experiment", "tables", "backbone", "variant", "method", "pool", "data_size", "context",
                         "checkpoint", "samples_seen", "benchmark", "path"],
            "properties": {
                "experiment": _text("experiment name"),
                "backbone": _text("the fine-tuned base model"),
                "variant": _text("fused-data variant the model was trained on"),
                "pool": _text("training pool (empty for an untrained baseline)", type="string"),
                "data_size": {"type": ["string", "null"], "minLength": 1,
                              "description": "`15k`, `100k`, `embedded`, ... (null: none)"},
                "context": _text("`4k`, `32k`, ... (empty when not applicable)", type="string"),
                "benchmark": _text("benchmark name (aliases in paper_results.yaml)"),
                "path": _text("the verdict table"),
                "teacher": _text("disambiguates the fusion summary lookup", optional=True),
                "profile": _text("training profile (informational)", optional=True),
                "backbone_label": _text("display name (default: backbone)", optional=True),
                "variant_label": _text("display name (default: variant)", optional=True),
                "tables": {"type": "array", "uniqueItems": True,
                           "items": {"anyOf": [{"enum": list(TABLE_NAMES)},
                                               {"type": "string", "pattern": f"^{RESULTS_TABLE_PREFIX}[A-Za-z0-9]"}]},
                           "description": "the tables and figures the run feeds (`results-<experiment>`: the "
                                          "results table of an experiment without `table:`)"},
                "method": {"enum": list(METHODS), "description": "how the training data was built (`icl`, "
                           "`instruct`: an untrained baseline)"},
                "checkpoint": {"type": "string", "pattern": "^(final|ckpt-[0-9]+)$",
                               "description": "the evaluated checkpoint"},
                "samples_seen": {"type": ["integer", "null"], "minimum": 0,
                                 "description": "training examples seen at the checkpoint"},
                "paper_backbone": _text("paper backbone to compare with (default: by alias)", optional=True),
                "paper_row": _text("Table 2 row this run reproduces", optional=True),
                "train_meta": _text("the run's `train_meta.json` (Table 2's trained #Err)", optional=True),
            }}},
        "fusion_summaries": {"type": "array", "description": "the fusion summaries (Table 2's #Err)", "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["pool", "teacher", "variant", "path"],
            "properties": {"pool": _text("training pool"), "teacher": _text("teacher"),
                           "variant": _text("fused-data variant"), "path": _text("the `.summary.json`"),
                           "variant_label": _text("display name", optional=True),
                           "k_max": {"type": ["integer", "null"], "description": "the summary's own value wins"},
                           "strategy": _text("the summary's own value wins", optional=True)}}},
        "distill_runs": {"type": "array", "description": "the distillation runs (their diagnostics figure and "
                         "table per experiment)", "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["experiment", "backbone", "student", "method", "label", "path"],
            "properties": {"experiment": _text("experiment name"), "backbone": _text("the student's backbone"),
                           "student": _text("`base` or the SFT variant the student started from"),
                           "method": {"enum": list(DISTILL_METHODS), "description": "the distillation loss"},
                           "label": _text("display name, e.g. `TOPD (from TrajFusion)`"),
                           "path": _text("the run's `diagnostics.jsonl`")}}},
        "stats": {"type": "array", "description": "the statistics tables (Figure 1)", "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["teacher", "pool", "path"],
            "properties": {"teacher": _text("teacher"), "pool": _text("training pool"),
                           "path": _text("the statistics table")}}},
        "reflection_metrics": {"type": "array", "description": "the experiments whose `reflection-<experiment>` "
                               "table (DSR, ERR, Pass@k) the report writes", "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["experiment", "pass_k"],
            "properties": {"experiment": _text("experiment name (its final-checkpoint `evals`)"),
                           "pass_k": {"type": "array", "minItems": 1, "uniqueItems": True,
                                      "items": {"type": "integer", "minimum": 1},
                                      "description": "the k of Pass@k, each at most the samples per problem"}}}},
    },
}


# ------------------------------------------------------------------------------------ docs

DOC_BEGIN = "<!-- contracts:begin (generated by `python -m trajfusion.contracts --update-doc`) -->"
DOC_END = "<!-- contracts:end -->"


def _constraints(column: Column) -> str:
    parts = []
    if column.values is not None:
        parts.append(" \\| ".join(f"`{v}`" for v in column.values))
    if column.pattern is not None:
        parts.append(f"matches `{column.pattern.replace('|', chr(92) + '|')}`")
    if column.nonblank:
        parts.append("non-blank")
    bounds = [f">= {column.minimum:g}" if column.minimum is not None else "",
              f"<= {column.maximum:g}" if column.maximum is not None else ""]
    parts += [b for b in bounds if b]
    return "; ".join(parts)


def contract_markdown(contract: Contract) -> str:
    extra = ", other columns allowed after these" if contract.extra_columns else ""
    empty = ", may be empty" if contract.empty_ok else ""
    kind = "JSON Lines" if contract.format == "jsonl" else "Parquet"
    lines = [f"**{contract.name[0].upper()}{contract.name[1:]}** ({contract.produced_by}; {kind}; key "
             f"`({', '.join(contract.key)})`{extra}{empty}). {contract.description}", "",
             "| column | dtype | null | values | description |", "|---|---|---|---|---|"]
    lines += [f"| `{c.name}` | {c.dtype} | {'yes' if c.nullable else 'no'} | {_constraints(c)} | "
              f"{c.description.replace('|', chr(92) + '|')} |" for c in contract.columns]
    if contract.rules:
        lines += ["", "Rules: " + "; ".join(f"`{r.name}`: {r.description}" for r in contract.rules) + "."]
    return "\n".join(lines)


def _schema_type(schema: dict) -> str:
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    text = " or ".join(kind) if isinstance(kind, list) else kind
    if "items" in schema and "enum" in schema["items"]:
        text += " of " + _schema_type(schema["items"])
    if "pattern" in schema:
        text += f" matching `{schema['pattern'].replace('|', chr(92) + '|')}`"
    return text


def manifest_markdown(schema: dict = MANIFEST_SCHEMA) -> str:
    lines = [f"**Report manifest** (JSON, schema `trajfusion.contracts.MANIFEST_SCHEMA`). {schema['description']}",
             "", "| field | type | required | description |", "|---|---|---|---|"]
    for name, prop in schema["properties"].items():
        required = "yes" if name in schema["required"] else "no"
        lines.append(f"| `{name}` | {_schema_type(prop)} | {required} | {prop.get('description', '')} |")
        items = prop.get("items", {})
        for sub, sub_prop in items.get("properties", {}).items():
            sub_required = "yes" if sub in items["required"] else "no"
            lines.append(f"| `{name}[].{sub}` | {_schema_type(sub_prop)} | {sub_required} | "
                         f"{sub_prop.get('description', '')} |")
    return "\n".join(lines)


def markdown() -> str:
    """The "Tables" section of docs/architecture.md, between the marker comments."""
    intro = ("Generated from `trajfusion.contracts`: dtypes are those the writers produce (`str` is pandas' "
             "string dtype, `Int64` the nullable integer, `json` a string holding JSON; in JSON Lines the JSON "
             "types). Records are numbered from 1 in error messages.")
    blocks = [intro, *(contract_markdown(c) for c in TABLES), manifest_markdown()]
    return "\n\n".join(blocks) + "\n"


def replace_doc_section(text: str, section: str) -> str:
    begin, end = text.find(DOC_BEGIN), text.find(DOC_END)
    if begin < 0 or end < begin:
        raise ValueError(f"marker comments {DOC_BEGIN!r} ... {DOC_END!r} not found")
    return text[:begin + len(DOC_BEGIN)] + "\n\n" + section + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trajfusion.contracts", description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--markdown", action="store_true", help="print the generated Tables section")
    action.add_argument("--update-doc", metavar="PATH", help="rewrite the section between the markers in PATH")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(), end="")
    else:
        with open(args.update_doc, encoding="utf-8") as fh:
            text = fh.read()
        write_text(replace_doc_section(text, markdown()), args.update_doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
