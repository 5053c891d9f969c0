"""Problem sets declared in the config (``datasets:``): a local JSONL, JSON, CSV or Parquet
file, or a Hugging Face Hub dataset, with the columns that hold the problem, the gold answer
and (optionally) an id, and the rule that turns the answer column into the gold.

``load_declared(name, spec)`` returns (problem table, fingerprint): the table has
``source = name`` and ids ``name/<id>`` (``name/<row number>`` without an id column); the
fingerprint (a local file's SHA-256, a Hub dataset's resolved commit) goes into the
artifact's provenance.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trajfusion.data import answers
from trajfusion.data.registry import _as_text, _json_array_file, _non_empty, _Records
from trajfusion.data.table import problem_frame, problem_row
from trajfusion.io import InputError, read_jsonl, sha256_file

# The answer rules (config/schema.yaml `answer_rule` lists the same names): the gold is the
# column as it is, its last \boxed{}, or the number after `####`.
ANSWER_RULES = {"raw": None, "boxed": answers.last_boxed, "gsm8k": answers.gsm8k_final_answer}
_RULE_EXPECTS = {"boxed": "a \\boxed{...}", "gsm8k": "a last line '#### <answer>'"}
FILE_FORMATS = (".jsonl", ".json", ".csv", ".parquet")
SPEC_KEYS = {"path", "hub", "split", "subset", "revision", "columns", "answer_rule", "license"}


def load_declared(name: str, spec: dict) -> tuple[pd.DataFrame, dict]:
    """The problem table of declared dataset ``name`` and its fingerprint."""
    _check_spec(name, spec)
    if "path" in spec:
        path = Path(spec["path"])
        records = _Records(path, _non_empty(path, _read_file(path)))
        fingerprint = {"path": spec["path"], "sha256": sha256_file(path)}
    else:
        rows, fingerprint = _read_hub(name, spec)
        records = _Records(Path(f"{spec['hub']} ({spec['split']})"), _non_empty(Path(spec["hub"]), rows))
    return _problem_table(name, spec, records), fingerprint


def _check_spec(name: str, spec: dict) -> None:
    where = f"dataset {name!r}"
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(SPEC_KEYS)}")
    if ("path" in spec) == ("hub" in spec):
        raise InputError(f"{where}: give exactly one of 'path' (a local file) and 'hub' (a Hub dataset)")
    if "hub" in spec and "split" not in spec:
        raise InputError(f"{where}: a Hub dataset needs 'split'")
    columns = spec.get("columns")
    if not isinstance(columns, dict) or not {"problem", "answer"} <= set(columns):
        raise InputError(f"{where}: 'columns' must map 'problem' and 'answer' (and optionally 'id') to "
                         f"column names, got {columns!r}")
    if spec.get("answer_rule", "raw") not in ANSWER_RULES:
        raise InputError(f"{where}: 'answer_rule' must be one of {list(ANSWER_RULES)}, got {spec['answer_rule']!r}")


def _read_file(path: Path) -> list[dict]:
    if path.suffix not in FILE_FORMATS:
        raise InputError(f"{path}: unsupported file type {path.suffix!r}; expected one of {list(FILE_FORMATS)}")
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    if path.suffix == ".jsonl":
        return read_jsonl(path)
    if path.suffix == ".json":
        return _json_array_file(path)
    if path.suffix == ".csv":
        try:  # every cell as text, so that "007" or "1/2" stay as written
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise InputError(f"{path}: not a readable CSV file ({exc})") from None
        return frame.to_dict("records")
    try:
        return pd.read_parquet(path).to_dict("records")
    except Exception as exc:  # pyarrow raises several kinds for a damaged file
        raise InputError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None


def _read_hub(name: str, spec: dict) -> tuple[list[dict], dict]:
    """The split's rows, from the dataset repository fetched into (or found offline in) the
    shared Hugging Face cache; the fingerprint names the resolved commit."""
    import datasets
    from huggingface_hub import snapshot_download

    repo, revision = spec["hub"], spec.get("revision")
    try:
        snapshot = Path(snapshot_download(repo_id=repo, repo_type="dataset", revision=revision))
        table = datasets.load_dataset(str(snapshot), spec.get("subset"), split=spec["split"])
    except Exception as exc:  # network, auth, cache miss, unknown subset or split
        raise InputError(f"dataset {name!r}: cannot load {repo!r} (subset {spec.get('subset')}, split "
                         f"{spec['split']}, revision {revision or 'main'}): {type(exc).__name__}: {exc}") from None
    fingerprint = {"hub": repo, "subset": spec.get("subset"), "split": spec["split"],
                   "revision": revision or "main", "commit": snapshot.name}
    return table.to_pandas().to_dict("records"), fingerprint


def _problem_table(name: str, spec: dict, records: _Records) -> pd.DataFrame:
    columns, rule = spec["columns"], spec.get("answer_rule", "raw")
    width = len(str(len(records.records) - 1))
    rows = []
    for recno, record in records:
        problem = records.text(recno, record, columns["problem"])
        gold = records.gold(recno, columns["answer"], _gold_value(records, recno, record, columns["answer"], rule))
        row_id = (_id_text(records, recno, record, columns["id"]) if "id" in columns
                  else f"{recno - 1:0{width}d}")
        rows.append(problem_row(f"{name}/{row_id}", problem, gold, name,
                                answer_type=answers.infer_answer_type(gold), record=recno))
    return problem_frame(rows, str(records.path))


def _gold_value(records: _Records, recno: int, record: dict, column: str, rule_name: str):
    value = records.field(recno, record, column, allow_empty=True)
    rule = ANSWER_RULES[rule_name]
    if rule is None or _blank(value):
        return value
    gold = rule(records.text(recno, record, column))
    if gold is None:
        raise InputError(f"{records.path}: record {recno}: no gold answer in field {column!r} by answer_rule "
                         f"{rule_name} (expected {_RULE_EXPECTS[rule_name]})")
    return gold


def _blank(value) -> bool:
    return _as_text(value) is None or not str(_as_text(value)).strip()


def _id_text(records: _Records, recno: int, record: dict, column: str) -> str:
    value = _as_text(records.field(recno, record, column))
    if "/" in value or not value.strip():
        raise InputError(f"{records.path}: record {recno}: field {column!r} must be an id without '/', got {value!r}")
    return value.strip()
