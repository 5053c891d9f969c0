"""Resumable generation: a sampling or evaluation job keeps its completed batches in a partial
file beside (not at) its output, ``<output>.partial.jsonl``, so a killed job resumes from them.

Line 1 is a header with the job's fingerprint (its settings, inputs and model); each further
line is one completed batch: its prompts' keys and their completions, appended, flushed and
fsynced when the batch is done. A partial file whose fingerprint differs (the settings or an
input changed) is discarded; a last line cut off by the kill is dropped. Because every batch
is seeded on its own (``trajfusion.sample.backends``), a resumed job's output is
byte-identical to an uninterrupted run's. The job removes the file once its output is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from trajfusion.io import OutputError, sha256_file
from trajfusion.sample.backends import Completion

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial.jsonl"


def partial_path(output: str | os.PathLike) -> Path:
    return Path(f"{output}{PARTIAL_SUFFIX}")


def model_fingerprint(model_dir: str | os.PathLike) -> str:
    """Names, sizes and modification times of the model directory's files: cheap for weights of
    many GB, and a re-prepared model (new mtimes) only costs the partial work."""
    entries = sorted((str(p.relative_to(model_dir)), p.stat().st_size, p.stat().st_mtime_ns)
                     for p in Path(model_dir).rglob("*") if p.is_file())
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def job_fingerprint(provenance: dict, inputs: list[str | os.PathLike], model_dir: str | os.PathLike) -> dict:
    return {"settings": provenance, "inputs_sha256": [sha256_file(path) for path in inputs],
            "model": model_fingerprint(model_dir)}


class PartialBatches:
    """The completed batches of one job: ``done`` (batch keys -> completions) to skip,
    ``record`` for each new batch, ``remove`` once the output is written."""

    def __init__(self, output: str | os.PathLike, fingerprint: dict):
        self.path = partial_path(output)
        self.header = json.dumps({"fingerprint": fingerprint}, sort_keys=True)
        self.done: dict[tuple, list[list[Completion]]] = {}
        self._file = None
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        if lines[0].decode("utf-8", "replace") != self.header:
            log.warning("%s: written by another job (settings or inputs differ); starting afresh", self.path)
            self.path.unlink()
            return
        kept = len(lines[0]) + 1
        for line in lines[1:-1]:  # the last piece has no newline: empty, or cut off by the kill
            try:
                record = json.loads(line)
                groups = [[Completion(*c) for c in group] for group in record["groups"]]
                self.done[tuple(record["keys"])] = groups
            except (ValueError, KeyError, TypeError):
                break
            kept += len(line) + 1
        if kept < len(raw):
            with open(self.path, "r+b") as fh:
                fh.truncate(kept)
        log.info("%s: resuming with %d completed batch(es)", self.path, len(self.done))

    def record(self, keys: list, groups: list[list[Completion]]) -> None:
        line = json.dumps({"keys": list(keys), "groups": [[[c.text, c.n_tokens, c.finish_reason] for c in group]
                                                          for group in groups]}, ensure_ascii=False)
        try:
            if self._file is None:
                fresh = not self.path.exists()
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")
                if fresh:
                    self._file.write(self.header + "\n")
            self._file.write(line + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise OutputError(self.path, exc) from exc

    def remove(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)
