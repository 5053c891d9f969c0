"""Atomic, deterministic reading and writing of pipeline artifacts.

Every artifact is written to a temporary file beside its destination and renamed into
place, so a killed job never leaves a half-written file that looks like output. A write
that fails (disk full, read-only file system, file size limit) removes its temporary file,
leaves any earlier file at the destination as it was, and raises ``OutputError`` naming
the destination and the reason.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class InputError(ValueError):
    """Bad input: the message names the file, line/record and field."""


class OutputError(OSError):
    """An output could not be written; the message names the output and the reason."""

    def __init__(self, path: str | os.PathLike, cause: BaseException):
        code = _errno_of(cause)  # any library's error may be the cause (e.g. safetensors')
        super().__init__(code, os.strerror(code) if code else str(cause), str(path))

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


# safetensors (Rust) quotes an OS error as "IoError(Os { code: 28, kind: StorageFull, ... })"
# or "I/O error: No space left on device (os error 28)".
_RUST_ERRNO_RE = re.compile(r"Os \{ code: (\d+)|\(os error (\d+)\)")


def _errno_of(exc: BaseException) -> int | None:
    """The OS error number behind ``exc``: its own, its cause's, or the one a library's
    message quotes."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "errno", None):
            return exc.errno
        match = _RUST_ERRNO_RE.search(str(exc))
        if match:
            return int(match.group(1) or match.group(2))
        exc = exc.__cause__ or exc.__context__
    return None


# Failures only a write can cause, whatever the library reports as the file name (pyarrow
# reports none); any other OSError inside a writer (e.g. reading an input lazily) is passed on.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


def is_write_failure(exc: BaseException) -> bool:
    """True when ``exc`` (of any library) reports disk full, quota, file size limit or a
    read-only file system."""
    return _errno_of(exc) in _WRITE_ERRNOS


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputError(path, exc) from exc
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; artifacts follow the umask
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError) and (
                exc.errno in _WRITE_ERRNOS or exc.filename in (str(tmp_path), str(path))):
            raise OutputError(path, exc) from exc
        raise


def write_parquet(df: pd.DataFrame, path: str | os.PathLike, metadata: dict | None = None) -> None:
    """Write ``df`` as Parquet atomically; ``metadata`` lands in the schema under 'trajfusion'."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    if metadata is not None:
        existing = dict(table.schema.metadata or {})
        existing[b"trajfusion"] = json.dumps(metadata, sort_keys=True).encode()
        table = table.replace_schema_metadata(existing)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_parquet_metadata(path: str | os.PathLike) -> dict:
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(b"trajfusion")
    return json.loads(raw) if raw else {}


def write_json(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def write_text(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_jsonl(rows: Iterable[dict], path: str | os.PathLike) -> int:
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    return n


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read JSON Lines; a bad line raises InputError naming file and line number."""
    path = Path(path)
    rows = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if raw.strip():
                rows.append(decode_json(raw, f"{path}:{lineno}", want=dict))
    return rows


def read_table(path: str | os.PathLike, required: Iterable[str] = ()) -> pd.DataFrame:
    """Read a Parquet or JSONL table and check that ``required`` columns are present."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file does not exist")
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
    elif path.suffix in (".jsonl", ".json"):
        df = pd.DataFrame(read_jsonl(path))
    else:
        raise InputError(f"{path}: unsupported table format (expected .parquet or .jsonl)")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing required column(s) {missing}; has {list(df.columns)}")
    return df


def decode_json(raw: bytes | str, where: str, want: type | None = None) -> Any:
    """The JSON value of ``raw`` (bytes are UTF-8); errors are InputErrors naming ``where`` (a file,
    a file's line, a flag) and the position. ``want=dict`` also requires a JSON object."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        position = f"column {exc.colno}" if "\n" not in text.rstrip() else f"line {exc.lineno}, column {exc.colno}"
        raise InputError(f"{where}: malformed JSON ({exc.msg} at {position})") from None
    if want is dict and not isinstance(value, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def parse_json_object(text: str, where: str) -> dict:
    """A JSON object given as text (a flag's value); ``where`` names the flag or file."""
    return decode_json(text, where, want=dict)


def read_json_file(path: str | os.PathLike, what: str = "file") -> Any:
    """A JSON file's value; a missing or malformed file raises InputError naming it (``what``
    says which kind of file, e.g. "alpha file")."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: {what} does not exist")
    return decode_json(path.read_bytes(), str(path))


def check_model_dir(model_dir: str | os.PathLike) -> None:
    """Refuse a model directory whose links point nowhere: a hub model prepared with
    ``cache: hub`` links into the Hugging Face cache, and that cache entry was deleted."""
    dangling = sorted(p.name for p in Path(model_dir).iterdir() if p.is_symlink() and not p.exists())
    if dangling:
        raise InputError(f"{model_dir}: {dangling} link into a Hugging Face cache entry that no longer exists; "
                         "prepare the model again (snakemake --forcerun prepare_model)")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def config_hash(settings: Any) -> str:
    """Short stable hash of a JSON-serialisable settings object."""
    blob = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def library_versions(names: Iterable[str] = ("trajfusion", "torch", "transformers", "trl", "math-verify",
                                              "pandas", "pyarrow", "snakemake")) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def artifact_metadata(settings: Any) -> dict:
    """Metadata recorded with every data artifact: the settings' hash and library versions."""
    return {"config_hash": config_hash(settings), "versions": library_versions()}
