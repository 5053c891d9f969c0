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
from trajfusion.data.declared import load_declared
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


class _Loader:
    """Loads built-in sources from the data directory and declared datasets from their specs,
    keeping each declared one's fingerprint for the provenance."""

    def __init__(self, data_dir, datasets: dict | None, own_benchmarks: dict | None):
        self.data_dir, self.datasets, self.own_benchmarks = data_dir, datasets or {}, own_benchmarks or {}
        self.fingerprints: dict[str, dict] = {}

    def source(self, name: str, options: dict) -> pd.DataFrame:
        return self._declared(name, self.datasets[name]) if name in self.datasets else \
            load_source(name, self.data_dir, **options)

    def benchmark(self, name: str) -> pd.DataFrame:
        if name in self.own_benchmarks:
            return self._declared(name, self.own_benchmarks[name])
        return load_source(name, self.data_dir, **_DECONTAMINATION_OPTIONS.get(name, {}))

    def _declared(self, name: str, spec: dict) -> pd.DataFrame:
        table, self.fingerprints[name] = load_declared(name, spec)
        return table


def build_pool(spec: dict, data_dir: str | os.PathLike, seed: int, datasets: dict | None = None,
               own_benchmarks: dict | None = None) -> tuple[pd.DataFrame, dict]:
    """Build the pool ``spec`` describes; returns (problem table sorted by id, report).

    Sources are built-in ones or ``datasets`` (name -> declared dataset spec); benchmarks to
    decontaminate against are built-in ones or ``own_benchmarks`` (name -> dataset spec),
    all of both by default. Per source: load, drop problems whose normalized text occurs in
    a listed benchmark, then keep ``n`` of them (``random``: seeded by (seed, source name);
    ``shortest``: fewest characters, ties by problem_id). ``size`` then subsamples the union
    with ``seed``.
    """
    loader = _Loader(data_dir, datasets, own_benchmarks)
    sources, size, against = _check_spec(spec, loader)
    benchmark_texts = _benchmark_texts(against, loader)
    parts, per_source = [], {}
    for entry in sources:
        frame, counts = _pool_part(entry, loader, seed, benchmark_texts)
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
              "removed_contaminated": sum(c["removed_contaminated"] for c in per_source.values()),
              "datasets": loader.fingerprints}
    return pool, report


def _check_spec(spec, loader: _Loader) -> tuple[list[dict], int | None, tuple[str, ...]]:
    if not isinstance(spec, dict):
        raise InputError(f"pool spec: expected a JSON object, got {type(spec).__name__}")
    unknown = sorted(set(spec) - _SPEC_KEYS)
    if unknown:
        raise InputError(f"pool spec: unknown key(s) {unknown}; allowed: {sorted(_SPEC_KEYS)}")
    sources = spec.get("sources")
    if not isinstance(sources, list) or not sources:
        raise InputError("pool spec: 'sources' must be a non-empty list")
    entries = [_check_source(i, entry, loader) for i, entry in enumerate(sources)]
    names = [e["name"] for e in entries]
    if len(set(names)) != len(names):
        raise InputError(f"pool spec: a source is listed twice in {names}")
    size = _optional_count(spec.get("size"), "pool spec: 'size'")
    known = [*BENCHMARKS, *loader.own_benchmarks]
    against = spec.get("decontaminate_against", known)
    if not isinstance(against, list) or any(b not in known for b in against):
        raise InputError(f"pool spec: 'decontaminate_against' must list benchmarks from {known}, got {against!r}")
    return entries, size, tuple(dict.fromkeys(against))


def _check_source(index: int, entry, loader: _Loader) -> dict:
    where = f"pool spec: sources[{index}]"
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected an object, got {entry!r}")
    unknown = sorted(set(entry) - _SOURCE_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(_SOURCE_KEYS)}")
    name = entry.get("name")
    if name not in SOURCES and name not in loader.datasets:
        raise InputError(f"{where}: 'name' must be a built-in source {list(SOURCES)} or a declared dataset "
                         f"{sorted(loader.datasets)}, got {name!r}")
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


def _benchmark_texts(benchmarks, loader: _Loader) -> dict[str, str]:
    """Normalized problem text -> the first benchmark problem_id that has it."""
    texts: dict[str, str] = {}
    for name in benchmarks:
        table = loader.benchmark(name)
        for problem_id, problem in zip(table["problem_id"], table["problem"]):
            texts.setdefault(normalize_problem_text(problem), problem_id)
    return texts


def _pool_part(entry: dict, loader: _Loader, seed: int,
               benchmark_texts: dict[str, str]) -> tuple[pd.DataFrame, dict]:
    name = entry["name"]
    table = loader.source(name, entry["options"])
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


def benchmark_table(name: str, data_dir: str | os.PathLike,
                    settings: BenchmarkSettings) -> tuple[pd.DataFrame, dict | None]:
    """Benchmark ``name`` as a problem table, cut to ``settings.limit`` problems if given, and
    the fingerprint of its declared dataset (None for a built-in benchmark).

    ``keep_pictures`` only applies to theoremqa (its picture questions are dropped by default).
    """
    fingerprint = None
    if settings.dataset is not None:
        if settings.keep_pictures:
            raise InputError(f"--keep-pictures only applies to theoremqa, not the declared benchmark {name}")
        table, fingerprint = load_declared(name, settings.dataset)
    else:
        if name not in BENCHMARKS:
            raise InputError(f"unknown benchmark {name!r}; built-in benchmarks: {list(BENCHMARKS)} "
                             "(a benchmark of one's own needs --dataset)")
        options = {}
        if settings.keep_pictures:
            if name != "theoremqa":
                raise InputError(f"--keep-pictures only applies to theoremqa, not {name}")
            options["keep_pictures"] = True
        table = load_source(name, data_dir, **options)
    return select_rows(table, settings.limit, settings.selection, settings.seed, name), fingerprint
