"""LLaMA-Factory's ``dataset_info.json`` entry of a sharegpt export.

The keys are the ones LLaMA-Factory's data/README.md documents for a sharegpt dataset:
``file_name`` (relative to the folder holding dataset_info.json, LLaMA-Factory's ``dataset_dir``),
``formatting: sharegpt``, ``columns`` (``messages`` and ``system``: the record's column names)
and ``tags`` (``role_tag``, ``content_tag``, ``user_tag``, ``assistant_tag``: the keys and role
values of a turn). An existing dataset_info.json is kept and the entry merged in (an entry of
the same name is replaced); the file is rewritten atomically while a lock on its folder keeps
two exports into one folder from losing each other's entries.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from trajfusion.export.formats import SHAREGPT_COLUMNS, SHAREGPT_TAGS
from trajfusion.io import InputError, atomic_path, decode_json

log = logging.getLogger(__name__)


def sharegpt_entry(info_path: Path, data_file: Path) -> dict:
    return {"file_name": Path(os.path.relpath(data_file, info_path.parent)).as_posix(), "formatting": "sharegpt",
            "columns": dict(SHAREGPT_COLUMNS), "tags": dict(SHAREGPT_TAGS)}


def merged_dataset_info(info_path: Path, name: str, data_file: Path) -> dict:
    """The existing dataset_info.json (if any) with entry ``name`` for ``data_file`` set."""
    info = {}
    if info_path.exists():
        info = decode_json(info_path.read_bytes(), str(info_path))
        if not isinstance(info, dict):
            raise InputError(f"{info_path}: expected a JSON object of dataset entries, got {type(info).__name__}")
        if name in info:
            log.info("%s: replacing the entry %r", info_path, name)
    return {**info, name: sharegpt_entry(info_path, data_file)}


def write_dataset_info(info: dict, info_path: Path) -> None:
    with atomic_path(info_path) as tmp:
        tmp.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


@contextlib.contextmanager
def dataset_info_lock(info_path: Path) -> Iterator[None]:
    """An exclusive lock on the folder of ``info_path`` (created if need be) for the read-merge-write."""
    info_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(info_path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
