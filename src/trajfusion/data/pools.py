"""Training pools: training sources subsampled, decontaminated and unioned."""

from __future__ import annotations

import hashlib
import logging
import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from trajfusion.contracts import PROBLEMS
from trajfusion.data.answers import normalize_problem_text
from trajfusion.data.registry import BENCHMARKS, SOURCES, load_source
from trajfusion.data.table import typed
from trajfusion.io import InputError

if TYPE_CHECKING:
    from trajfusion.data.settings import BenchmarkSettings

log = logging.getLogger(__name__)

SELECTIONS = ("all", "random", "shortest")
_SPEC_KEYS = {"sources", "size", "decontaminate_against"}
_SOURCE_KEYS = {"name", "n", "select", "options"}
# Benchmark options used for decontamination: every benchmark problem counts, even the
# picture questions that evaluation drops.
_DECONTAMINATION_OPTIONS = {"theoremqa": {"keep_pictures": True}}


def build_pool(spec: dict, data_dir: str | os.PathLike, seed: int) -> tuple[pd.DataFrame, dict]:
    """Build the pool ``spec`` describes; returns (problem table sorted by id, report).

    Per source: load, drop problems whose normalized text occurs in a listed benchmark, then
    keep ``n`` of them (``random``: seeded by (seed, source name); ``shortest``: fewest
    characters, ties by problem_id). ``size`` then subsamples the union with ``seed``.
    """
    sources, size, against = _check_spec(spec)
    benchmark_texts = _benchmark_texts(against, data_dir)
    parts, per_source = [], {}
    for entry in sources:
        frame, counts = _pool_part(entry, data_dir, seed, benchmark_texts)
        parts.append(frame)
        per_source[entry["name"]] = counts
    pool = pd.concat(parts, ignore_index=True)
    union_size = len(pool)
    if union_size == 0:
        counts = ", ".join(f"{name}: {c['loaded']} loaded, {c['removed_contaminated']} removed as benchmark "
                           f"duplicates" for name, c in per_source.items())
        raise InputError(f"pool spec: the pool is empty, no source provides a problem ({counts})")
    if size is not None:
        if size > union_size:
            raise InputError(f"pool spec: size={size} exceeds the {union_size} problems the sources provide")
        pool = pool.iloc[_random_indices(union_size, size, seed, "pool-size")]
    pool = typed(pool[PROBLEMS.names]).sort_values("problem_id", kind="stable").reset_index(drop=True)
    report = {"seed": seed, "spec": spec, "sources": per_source, "decontaminated_against": list(against),
              "union_size": union_size, "size": len(pool),
              "removed_contaminated": sum(c["removed_contaminated"] for c in per_source.values())}
    return pool, report


def _check_spec(spec) -> tuple[list[dict], int | None, tuple[str, ...]]:
    if not isinstance(spec, dict):
        raise InputError(f"pool spec: expected a JSON object, got {type(spec).__name__}")
    unknown = sorted(set(spec) - _SPEC_KEYS)
    if unknown:
        raise InputError(f"pool spec: unknown key(s) {unknown}; allowed: {sorted(_SPEC_KEYS)}")
    sources = spec.get("sources")
    if not isinstance(sources, list) or not sources:
        raise InputError("pool spec: 'sources' must be a non-empty list")
    entries = [_check_source(i, entry) for i, entry in enumerate(sources)]
    names = [e["name"] for e in entries]
    if len(set(names)) != len(names):
        raise InputError(f"pool spec: a source is listed twice in {names}")
    size = _optional_count(spec.get("size"), "pool spec: 'size'")
    against = spec.get("decontaminate_against", list(BENCHMARKS))
    if not isinstance(against, list) or any(b not in BENCHMARKS for b in against):
        raise InputError(f"pool spec: 'decontaminate_against' must list benchmarks from {list(BENCHMARKS)}, "
                         f"got {against!r}")
    return entries, size, tuple(dict.fromkeys(against))


def _check_source(index: int, entry) -> dict:
    where = f"pool spec: sources[{index}]"
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected an object, got {entry!r}")
    unknown = sorted(set(entry) - _SOURCE_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(_SOURCE_KEYS)}")
    name = entry.get("name")
    if name not in SOURCES:
        raise InputError(f"{where}: 'name' must be one of {list(SOURCES)}, got {name!r}")
    n = _optional_count(entry.get("n"), f"{where} ({name}): 'n'")
    select = entry.get("select", "all" if n is None else "random")
    if select not in SELECTIONS:
        raise InputError(f"{where} ({name}): 'select' must be one of {list(SELECTIONS)}, got {select!r}")
    if select == "all" and n is not None:
        raise InputError(f"{where} ({name}): select 'all' cannot be combined with n={n}; "
                         f"use 'random' or 'shortest'")
    options = entry.get("options") or {}
    if not isinstance(options, dict):
        raise InputError(f"{where} ({name}): 'options' must be an object, got {options!r}")
    return {"name": name, "n": n, "select": select, "options": options}


def _optional_count(value, what: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"{what} must be a positive integer or null, got {value!r}")
    return value


def _benchmark_texts(benchmarks, data_dir) -> dict[str, str]:
    """Normalized problem text -> the first benchmark problem_id that has it."""
    texts: dict[str, str] = {}
    for name in benchmarks:
        table = load_source(name, data_dir, **_DECONTAMINATION_OPTIONS.get(name, {}))
        for problem_id, problem in zip(table["problem_id"], table["problem"]):
            texts.setdefault(normalize_problem_text(problem), problem_id)
    return texts


def _pool_part(entry: dict, data_dir, seed: int, benchmark_texts: dict[str, str]) -> tuple[pd.DataFrame, dict]:
    name = entry["name"]
    table = load_source(name, data_dir, **entry["options"])
    matches = table["problem"].map(lambda text: benchmark_texts.get(normalize_problem_text(text)))
    contaminated = matches.notna()
    for problem_id, benchmark_id in zip(table["problem_id"][contaminated], matches[contaminated]):
        log.info("%s: removing %s: same text as benchmark problem %s", name, problem_id, benchmark_id)
    clean = table[~contaminated].reset_index(drop=True)
    selected = select_rows(clean, entry["n"], entry["select"], seed, name)
    counts = {"loaded": len(table), "removed_contaminated": int(contaminated.sum()),
              "after_decontamination": len(clean), "selected": len(selected), "select": entry["select"],
              "n": entry["n"],
              "removed": [{"problem_id": p, "benchmark_problem_id": b}
                          for p, b in zip(table["problem_id"][contaminated], matches[contaminated])]}
    return selected, counts


def select_rows(table: pd.DataFrame, n: int | None, select: str, seed: int, stream: str) -> pd.DataFrame:
    """``n`` rows of a problem table by ``select`` (all, random, shortest), sorted by problem_id."""
    ordered = table.sort_values("problem_id", kind="stable").reset_index(drop=True)
    if n is None or select == "all":
        return ordered
    if n > len(ordered):
        raise InputError(f"{stream}: {n} problems requested but only {len(ordered)} are available")
    if select == "shortest":
        # ``ordered`` is sorted by problem_id, so a stable sort by length breaks ties by id.
        by_length = ordered["problem"].str.len().sort_values(kind="stable")
        keep = sorted(by_length.index[:n])
    else:
        keep = _random_indices(len(ordered), n, seed, stream)
    return ordered.iloc[keep].reset_index(drop=True)


def _random_indices(total: int, n: int, seed: int, stream: str) -> list[int]:
    """``n`` distinct sorted indices out of ``total``, from a generator seeded by (seed, stream)."""
    digest = hashlib.sha256(f"{seed}:{stream}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    return sorted(rng.choice(total, size=n, replace=False).tolist())


def benchmark_table(name: str, data_dir: str | os.PathLike, settings: BenchmarkSettings) -> pd.DataFrame:
    """Benchmark ``name`` as a problem table, cut to ``settings.limit`` problems if given.

    ``keep_pictures`` only applies to theoremqa (its picture questions are dropped by default).
    """
    if name not in BENCHMARKS:
        raise InputError(f"unknown benchmark {name!r}; benchmarks: {list(BENCHMARKS)}")
    options = {}
    if settings.keep_pictures:
        if name != "theoremqa":
            raise InputError(f"--keep-pictures only applies to theoremqa, not {name}")
        options["keep_pictures"] = True
    table = load_source(name, data_dir, **options)
    return select_rows(table, settings.limit, settings.selection, settings.seed, name)
