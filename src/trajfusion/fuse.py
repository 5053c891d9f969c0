"""Fused training data: vanilla RFT, TrajFusion and its ablations (paper §3.2–3.3, App. A.2).

Per problem x, only trajectories with ``status == "ok"`` count: they form K, the correct
set Y+ and the incorrect set Y−. Problems without a correct trajectory are dropped. With
r = |Y−|/K and u = the number of distinct incorrect-answer groups, TrajFusion fuses

    k(x) = min(k_max, floor(alpha * r * u))

incorrect trajectories, computed exactly with ``fractions.Fraction``; k_max = 0 is vanilla
RFT. Incorrect-answer groups are ordered by size (largest first), then by the n_tokens of
their shortest member, then by the group's answer string. Within a group, members are
ordered by n_tokens, then sample_idx. ``highdiv`` (the paper's method) takes the shortest
unused member of each group in turn (round robin, continuing into second-shortest members
once every group gave one); ``lowdiv`` (Table 2 ablation) exhausts the largest group first
and spills into the next. Fewer than k errors are fused when Y− runs out.

The correct trajectory y* is drawn from Y+ (sorted by sample_idx) with an RNG keyed on
(seed, problem_id) only, so RFT and every TrajFusion variant built with one seed share y*.
Phrases come from a second RNG keyed on (seed, problem_id, "phrases").

The assistant text (trajectories lose their trailing whitespace; parts joined by "\\n"):

    <think>\\n{error 1}\\n{error phrase}\\n...\\n{error k}\\n{error phrase}\\n{correct}\\n
    {success phrase}[\\n{certainty phrase}]\\n</think>\\nThe answer is \\boxed{answer}.

and with k = 0 exactly ``<think>\\n{correct}\\n</think>\\nThe answer is \\boxed{answer}.``
(no phrases), where {answer} is y*'s extracted ``answer``. Errors appear in fusion order.
The rows carry alpha as exact text ("0.5", "16/21"; null for RFT built without alpha).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import random
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from trajfusion.io import InputError, artifact_metadata, read_table, sha256_file, write_json, write_jsonl

log = logging.getLogger(__name__)

STRATEGIES = ("highdiv", "lowdiv")
META_COLUMNS = ("problem_id", "sample_idx", "n_tokens", "answer", "correct", "status")
TEXT_COLUMNS = ("problem", "response")
GROUP_COLUMN = "answer_group"
PHRASE_KEYS = ("error_recognition", "success_confirmation", "certainty")


# ---------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Phrases:
    error_recognition: tuple[str, ...]
    success_confirmation: tuple[str, ...]
    certainty: tuple[str, ...]
    source: str


def default_phrases_path() -> Path:
    return Path(str(resources.files("trajfusion") / "resources" / "phrases.yaml"))


def load_phrases(path: str | Path | None = None) -> Phrases:
    """Read a phrase repository (default: the paper's Table 5, resources/phrases.yaml)."""
    import yaml

    file = Path(path) if path else default_phrases_path()
    if not file.exists():
        raise InputError(f"{file}: phrase file does not exist")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{file}: malformed YAML ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{file}: expected a mapping with keys {list(PHRASE_KEYS)}")
    lists = {}
    for key in PHRASE_KEYS:
        values = data.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
            raise InputError(f"{file}: field '{key}' must be a list of non-empty strings")
        if key != "certainty" and not values:
            raise InputError(f"{file}: field '{key}' must hold at least one phrase")
        lists[key] = tuple(values)
    return Phrases(**lists, source=str(file))


def parse_alpha(value, source: str = "alpha") -> Fraction:
    """alpha as an exact Fraction: floats go through str() so 0.1 means 1/10."""
    if isinstance(value, Fraction):
        alpha = value
    else:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InputError(f"{source}: alpha must be a number or a decimal/fraction string, got {value!r}")
        try:
            alpha = Fraction(str(value).strip())
        except (ValueError, ZeroDivisionError):
            raise InputError(f"{source}: alpha {value!r} is not a finite decimal or fraction") from None
    if alpha <= 0:
        raise InputError(f"{source}: alpha must be > 0, got {format_alpha(alpha)}")
    return alpha


def format_alpha(alpha: Fraction) -> str:
    """Exact text for a Fraction: a decimal when one exists (0.125), else 'p/q' (16/21)."""
    den = alpha.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        return f"{alpha.numerator}/{alpha.denominator}"
    places = max(twos, fives)
    scaled = abs(alpha.numerator) * 10**places // alpha.denominator
    sign = "-" if alpha < 0 else ""
    if places == 0:
        return f"{sign}{scaled}"
    whole, frac = divmod(scaled, 10**places)
    return f"{sign}{whole}.{str(frac).zfill(places).rstrip('0')}"


def check_k_max(k_max) -> int:
    if isinstance(k_max, bool) or not isinstance(k_max, (int, np.integer)) or k_max < 0:
        raise InputError(f"--k-max: must be a non-negative integer, got {k_max!r}")
    return int(k_max)


def check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise InputError(f"--strategy: unknown strategy {strategy!r}; known: {list(STRATEGIES)}")
    return strategy


@dataclass(frozen=True)
class FuseSettings:
    k_max: int
    alpha: Fraction | None  # None only for k_max = 0 (vanilla RFT)
    strategy: str = "highdiv"
    seed: int = 0
    certainty_prob: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "k_max", check_k_max(self.k_max))
        check_strategy(self.strategy)
        if self.alpha is None:
            if self.k_max > 0:
                raise InputError("--alpha: required when --k-max > 0 (give --alpha or --alpha-file)")
        else:
            object.__setattr__(self, "alpha", parse_alpha(self.alpha))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise InputError(f"--seed: must be an integer, got {self.seed!r}")
        if not (isinstance(self.certainty_prob, (int, float)) and 0.0 <= self.certainty_prob <= 1.0):
            raise InputError(f"--certainty-prob: must be within [0, 1], got {self.certainty_prob!r}")

    @property
    def alpha_text(self) -> str | None:
        return None if self.alpha is None else format_alpha(self.alpha)


# ---------------------------------------------------------------------- input checks


def _record_error(meta: pd.DataFrame, mask, source: str, field: str, problem: str) -> InputError:
    i = int(np.flatnonzero(np.asarray(mask))[0])
    row = {key: value.item() if isinstance(value, np.generic) else value for key, value in meta.iloc[i].items()}
    return InputError(f"{source}: record {row['_pos'] + 1} (problem_id={row['problem_id']!r}, "
                      f"sample_idx={row['sample_idx']!r}): field '{field}' {problem}")


def _non_string(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
        return values.isna().to_numpy()
    return ~values.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)


def _integer_column(meta: pd.DataFrame, field: str, required, source: str) -> pd.Series:
    values = pd.to_numeric(meta[field], errors="coerce") if meta[field].dtype == object else meta[field]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise _record_error(meta, np.ones(len(meta), bool), source, field, "is not an integer")
    as_float = values.astype("float64")
    bad = required & (as_float.isna() | (as_float != np.floor(as_float)) | (as_float < 0)).to_numpy()
    if bad.any():
        raise _record_error(meta, bad, source, field, "must be a non-negative integer")
    return as_float.fillna(0).astype("int64")


def _bool_column(meta: pd.DataFrame, field: str, required, source: str) -> pd.Series:
    values = meta[field]
    if values.dtype == bool:
        return values
    is_bool = values.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
    bad = required & ~is_bool
    if bad.any():
        raise _record_error(meta, bad, source, field, "must be true or false")
    return values.where(is_bool, False).astype(bool)


def validate_verified(df: pd.DataFrame, source: str = "<table>") -> pd.DataFrame:
    """Check a verified table and return its normalised metadata with ``_pos`` (row number)
    and ``_group`` (incorrect-answer group of ok incorrect rows, else null)."""
    missing = [c for c in META_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{source}: missing required column(s) {missing}; has {list(df.columns)}")
    columns = list(META_COLUMNS) + ([GROUP_COLUMN] if GROUP_COLUMN in df.columns else [])
    meta = df[columns].reset_index(drop=True)
    meta.insert(0, "_pos", np.arange(len(meta), dtype=np.int64))
    everywhere = np.ones(len(meta), dtype=bool)
    for field in ("problem_id", "status"):
        bad = _non_string(meta[field])
        if bad.any():
            raise _record_error(meta, bad, source, field, "must be a string")
    meta["sample_idx"] = _integer_column(meta, "sample_idx", everywhere, source)
    dup = meta.duplicated(["problem_id", "sample_idx"]).to_numpy()
    if dup.any():
        raise _record_error(meta, dup, source, "sample_idx", "repeats within its problem")
    ok = (meta["status"] == "ok").to_numpy(dtype=bool)
    meta["n_tokens"] = _integer_column(meta, "n_tokens", ok, source)
    meta["correct"] = _bool_column(meta, "correct", ok, source)
    wrongly_correct = meta["correct"].to_numpy() & ~ok
    if wrongly_correct.any():
        raise _record_error(meta, wrongly_correct, source, "correct",
                            "is true although status is not 'ok'")
    bad = ok & _non_string(meta["answer"])
    if bad.any():
        raise _record_error(meta, bad, source, "answer", "must be a string for a trajectory with status 'ok'")
    meta["_group"] = _incorrect_groups(meta, ok, source)
    return meta


def _incorrect_groups(meta: pd.DataFrame, ok: np.ndarray, source: str) -> pd.Series:
    incorrect = ok & ~meta["correct"].to_numpy()
    field = GROUP_COLUMN if GROUP_COLUMN in meta.columns else "answer"
    bad = incorrect & _non_string(meta[field])
    if bad.any():
        raise _record_error(meta, bad, source, field, "must be a string for an ok incorrect trajectory")
    return meta[field].astype("str").where(incorrect, None)


# ------------------------------------------------------------------------- selection


def fusion_count(n_incorrect: int, n_ok: int, n_groups: int, alpha: Fraction | None, k_max: int) -> int:
    """k(x) = min(k_max, floor(alpha * (n_incorrect / n_ok) * n_groups)), exactly."""
    if alpha is None or k_max == 0 or n_incorrect == 0:
        return 0
    return min(k_max, (alpha.numerator * n_incorrect * n_groups) // (alpha.denominator * n_ok))


def problem_statistics(meta: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Per kept problem (sorted by problem_id): K, n_correct, n_incorrect, u; plus the
    number of problems dropped for having no correct ok trajectory."""
    ok = meta[meta["status"] == "ok"]
    grouped = ok.groupby("problem_id", sort=True)
    stats = pd.DataFrame({"K": grouped.size(), "n_correct": grouped["correct"].sum()})
    incorrect = ok[~ok["correct"]]
    stats["n_incorrect"] = stats["K"] - stats["n_correct"]
    stats["u"] = incorrect.groupby("problem_id")["_group"].nunique().reindex(stats.index, fill_value=0)
    kept = stats[stats["n_correct"] > 0].astype("int64")
    dropped = int(meta["problem_id"].nunique()) - len(kept)
    return kept, dropped


def _fusion_counts(stats: pd.DataFrame, settings: FuseSettings) -> pd.Series:
    counts = [fusion_count(n_inc, k, u, settings.alpha, settings.k_max)
              for n_inc, k, u in zip(stats["n_incorrect"].tolist(), stats["K"].tolist(), stats["u"].tolist())]
    return pd.Series(counts, index=stats.index, dtype="int64")


def _rank_in_runs(keys: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... restarting at each run of equal values of an already sorted array."""
    n = len(keys)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if n else np.zeros(0, np.int64)
    return np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))


def fusion_priority(problem: np.ndarray, group, n_tokens: np.ndarray, sample_idx: np.ndarray,
                    strategy: str) -> np.ndarray:
    """For incorrect ok trajectories (problem codes, answer groups, lengths, sample
    indices): each one's rank in its problem's fusion order (0 = fused first)."""
    answer = pd.factorize(np.asarray(group, dtype=object), sort=True)[0]  # code order = string order
    order = np.lexsort((sample_idx, n_tokens, answer, problem))
    prob, ans = problem[order], answer[order]
    new_group = np.r_[True, (prob[1:] != prob[:-1]) | (ans[1:] != ans[:-1])] if len(order) else np.zeros(0, bool)
    group_id = np.cumsum(new_group) - 1
    member_rank = _rank_in_runs(group_id)
    size = np.bincount(group_id)
    shortest = n_tokens[order][new_group]  # members are sorted by length, so the first is shortest
    group_prob, group_ans = prob[new_group], ans[new_group]
    by_priority = np.lexsort((group_ans, shortest, -size, group_prob))
    group_rank = np.empty(len(size), dtype=np.int64)
    group_rank[by_priority] = _rank_in_runs(group_prob[by_priority])
    row_group_rank = group_rank[group_id]
    if strategy == "highdiv":  # round robin: all groups' shortest members, then second shortest, ...
        fuse_order = np.lexsort((row_group_rank, member_rank, prob))
    else:  # lowdiv: the largest group's members first, then the next group's
        fuse_order = np.lexsort((member_rank, row_group_rank, prob))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order[fuse_order]] = _rank_in_runs(prob[fuse_order])
    return rank


def _seeded_rng(*key) -> random.Random:
    digest = hashlib.sha256(":".join(str(part) for part in key).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def choose_correct(meta: pd.DataFrame, stats: pd.DataFrame, seed: int) -> pd.DataFrame:
    """y* per kept problem: one of Y+ (sorted by sample_idx) drawn by an RNG keyed on
    (seed, problem_id), independent of every fusion setting."""
    correct = meta[(meta["status"] == "ok") & meta["correct"]]
    code = stats.index.get_indexer(correct["problem_id"])
    correct = correct.iloc[np.lexsort((correct["sample_idx"].to_numpy(), code))]
    counts = np.bincount(code, minlength=len(stats))
    starts = np.cumsum(counts) - counts
    picks = [_seeded_rng(seed, pid).randrange(n) for pid, n in zip(stats.index.tolist(), counts.tolist())]
    chosen = correct.iloc[starts + np.asarray(picks, dtype=np.int64)]
    return chosen.set_index("problem_id")[["_pos", "sample_idx", "n_tokens", "answer"]]


def select_errors(meta: pd.DataFrame, problems: pd.Index, k: np.ndarray, strategy: str):
    """Per problem of ``problems``: the first k[i] incorrect trajectories in fusion order,
    as (row positions, sample indices, total n_tokens) lists aligned with ``problems``."""
    if len(problems) == 0:
        return [], [], np.zeros(0, dtype=np.int64)
    incorrect = meta[(meta["status"] == "ok") & ~meta["correct"]]
    code = problems.get_indexer(incorrect["problem_id"])
    wanted = (code >= 0) & (k[np.maximum(code, 0)] > 0)
    incorrect, code = incorrect[wanted], code[wanted]
    rank = fusion_priority(code, incorrect["_group"].to_numpy(), incorrect["n_tokens"].to_numpy(),
                           incorrect["sample_idx"].to_numpy(), strategy)
    keep = rank < k[code]
    code, rank = code[keep], rank[keep]
    order = np.lexsort((rank, code))
    bounds = np.cumsum(np.bincount(code, minlength=len(problems)))[:-1]
    positions = np.split(incorrect["_pos"].to_numpy()[keep][order], bounds)
    indices = np.split(incorrect["sample_idx"].to_numpy()[keep][order], bounds)
    tokens = np.bincount(code, weights=incorrect["n_tokens"].to_numpy()[keep], minlength=len(problems))
    return [p.tolist() for p in positions], [i.tolist() for i in indices], tokens.astype(np.int64)


def plan_fusion(meta: pd.DataFrame, settings: FuseSettings) -> tuple[pd.DataFrame, int]:
    """Which trajectories make up each fused example (no text yet).

    Returns one row per kept problem, indexed by sorted problem_id, with ``k`` (the
    formula), ``correct_pos``/``correct_index``/``answer`` of y*, ``error_pos`` and
    ``error_indices`` (lists in fusion order), ``fused_tokens``; and the dropped count."""
    stats, dropped = problem_statistics(meta)
    k = _fusion_counts(stats, settings)
    chosen = choose_correct(meta, stats, settings.seed)
    plan = pd.DataFrame({"k": k, "correct_pos": chosen["_pos"], "correct_index": chosen["sample_idx"],
                         "answer": chosen["answer"], "correct_tokens": chosen["n_tokens"]})
    positions, indices, tokens = select_errors(meta, plan.index, k.to_numpy(), settings.strategy)
    plan["error_pos"] = pd.Series(positions, index=plan.index, dtype=object)
    plan["error_indices"] = pd.Series(indices, index=plan.index, dtype=object)
    plan["error_tokens"] = tokens
    plan["n_errors"] = plan["error_indices"].map(len).astype("int64")
    plan["fused_tokens"] = plan["correct_tokens"] + plan["error_tokens"]
    return plan, dropped


# ---------------------------------------------------------------------- construction


def fuse_text(errors: Sequence[str], correct: str, answer: str, error_phrases: Sequence[str] = (),
              success_phrase: str | None = None, certainty_phrase: str | None = None) -> str:
    """The fused assistant reply of Appendix A.2 (see the module docstring for the layout)."""
    if len(error_phrases) != len(errors):
        raise ValueError("one error-recognition phrase is needed per fused error")
    parts = ["<think>"]
    for error, phrase in zip(errors, error_phrases):
        parts += [error.rstrip(), phrase]
    parts.append(correct.rstrip())
    if errors:
        parts.append(success_phrase)
        if certainty_phrase:
            parts.append(certainty_phrase)
    parts += ["</think>", f"The answer is \\boxed{{{answer}}}."]
    return "\n".join(parts)


def draw_phrases(problem_id: str, n_errors: int, phrases: Phrases, seed: int,
                 certainty_prob: float) -> tuple[list[str], str | None, str | None]:
    """Error phrases, success phrase and optional certainty phrase for one example."""
    if n_errors == 0:
        return [], None, None
    rng = _seeded_rng(seed, problem_id, "phrases")
    error_phrases = [rng.choice(phrases.error_recognition) for _ in range(n_errors)]
    success = rng.choice(phrases.success_confirmation)
    certainty = None
    if certainty_prob > 0 and rng.random() < certainty_prob:
        certainty = rng.choice(phrases.certainty)
    return error_phrases, success, certainty


class FrameTexts:
    """Texts of an in-memory verified table, addressed by row position."""

    def __init__(self, df: pd.DataFrame, source: str = "<table>"):
        missing = [c for c in TEXT_COLUMNS if c not in df.columns]
        if missing:
            raise InputError(f"{source}: missing required column(s) {missing}; has {list(df.columns)}")
        self.df = df.reset_index(drop=True)

    def take(self, column: str, positions: np.ndarray) -> list:
        return self.df[column].iloc[np.asarray(positions, dtype=np.int64)].tolist()


class ParquetTexts:
    """Texts of a Parquet verified table, read batch by batch for only the rows needed,
    so the full response column (gigabytes at paper scale) is never held in memory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def take(self, column: str, positions: np.ndarray) -> list:
        import pyarrow as pa
        import pyarrow.parquet as pq

        positions = np.asarray(positions, dtype=np.int64)
        order = np.argsort(positions, kind="stable")
        wanted = positions[order]
        out: list = [None] * len(positions)
        start = 0
        # Small batches: a batch of long responses is decoded whole (8192 x ~2 KB).
        reader = pq.ParquetFile(self.path, buffer_size=1 << 20)
        for batch in reader.iter_batches(batch_size=8192, columns=[column]):
            end = start + batch.num_rows
            lo, hi = np.searchsorted(wanted, [start, end])
            if hi > lo:
                values = batch.column(0).take(pa.array(wanted[lo:hi] - start)).to_pylist()
                for slot, value in zip(order[lo:hi].tolist(), values):
                    out[slot] = value
            start = end
        return out


def _check_texts(values: list, positions, source: str, field: str, meta: pd.DataFrame) -> None:
    for value, pos in zip(values, positions):
        if not isinstance(value, str):
            raise _record_error(meta, (meta["_pos"] == pos).to_numpy(), source, field, "must be a string")


def build_examples(plan: pd.DataFrame, meta: pd.DataFrame, texts, settings: FuseSettings,
                   phrases: Phrases, source: str = "<table>", progress: bool = False) -> Iterator[dict]:
    """Yield the fused dataset rows (contract: docs/architecture.md, 'Fused dataset')."""
    from tqdm import tqdm

    if settings.certainty_prob > 0 and not phrases.certainty:
        raise InputError(f"{phrases.source}: field 'certainty' is empty but --certainty-prob > 0")
    correct_pos = plan["correct_pos"].to_numpy()
    error_lists = plan["error_pos"].tolist()
    error_pos = np.fromiter((p for lst in error_lists for p in lst), dtype=np.int64)
    problems = texts.take("problem", correct_pos)
    _check_texts(problems, correct_pos, source, "problem", meta)
    responses = texts.take("response", np.concatenate([correct_pos, error_pos]))
    _check_texts(responses, np.concatenate([correct_pos, error_pos]), source, "response", meta)
    correct_texts, error_texts = responses[:len(correct_pos)], responses[len(correct_pos):]
    offset = 0
    rows = zip(plan.index.tolist(), problems, correct_texts, plan["answer"].tolist(),
               plan["correct_index"].tolist(), plan["error_indices"].tolist())
    for pid, problem, correct, answer, correct_index, error_indices in tqdm(
            rows, total=len(plan), desc="fuse", unit="problem", disable=not progress):
        errors = error_texts[offset:offset + len(error_indices)]
        offset += len(error_indices)
        error_phrases, success, certainty = draw_phrases(pid, len(errors), phrases, settings.seed,
                                                         settings.certainty_prob)
        content = fuse_text(errors, correct, answer, error_phrases, success, certainty)
        yield {"problem_id": pid,
               "messages": [{"role": "user", "content": problem}, {"role": "assistant", "content": content}],
               "n_errors": len(errors), "error_indices": [int(i) for i in error_indices],
               "correct_index": int(correct_index), "alpha": settings.alpha_text,
               "k_max": settings.k_max, "strategy": settings.strategy, "seed": int(settings.seed)}


class SummaryAccumulator:
    """Collects the dataset summary while rows stream to disk."""

    def __init__(self):
        self.chars = 0
        self.rows = 0

    def watch(self, rows: Iterator[dict]) -> Iterator[dict]:
        for row in rows:
            self.chars += len(row["messages"][1]["content"])
            self.rows += 1
            yield row


_SETTING_KEYS = ("alpha", "k_max", "strategy", "seed", "certainty_prob", "phrases_sha256")


def summarize(plan: pd.DataFrame, dropped: int, response_chars: int, settings: FuseSettings,
              phrases: Phrases) -> dict:
    n = len(plan)
    k_counts = Counter(plan["n_errors"].tolist())
    return {
        "problems": n,
        "dropped_no_correct": dropped,
        "mean_errors": float(Fraction(int(plan["n_errors"].sum()), n)) if n else 0.0,
        "k_distribution": {str(k): k_counts[k] for k in sorted(k_counts)},
        "problems_short_of_k": int((plan["n_errors"] < plan["k"]).sum()),
        "mean_response_chars": float(Fraction(response_chars, n)) if n else 0.0,
        "mean_fused_tokens": float(Fraction(int(plan["fused_tokens"].sum()), n)) if n else 0.0,
        "alpha": settings.alpha_text,
        "k_max": settings.k_max,
        "strategy": settings.strategy,
        "seed": int(settings.seed),
        "certainty_prob": settings.certainty_prob,
        "phrases": Path(phrases.source).name,
        "phrases_sha256": sha256_file(phrases.source),
    }


def fuse_frame(df: pd.DataFrame, settings: FuseSettings, phrases: Phrases | None = None,
               source: str = "<table>") -> tuple[list[dict], dict]:
    """Fuse an in-memory verified table: (rows sorted by problem_id, summary)."""
    phrases = phrases or load_phrases()
    meta = validate_verified(df, source)
    plan, dropped = plan_fusion(meta, settings)
    accumulator = SummaryAccumulator()
    rows = list(accumulator.watch(build_examples(plan, meta, FrameTexts(df, source), settings, phrases, source)))
    return rows, summarize(plan, dropped, accumulator.chars, settings, phrases)


# ------------------------------------------------------------------------ file level


def read_verified(path: str | Path) -> tuple[pd.DataFrame, object]:
    """Validated metadata of a verified table plus a text source for its long columns.
    Parquet is read without the problem/response columns, which are fetched on demand."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file does not exist")
    meta, texts = _read_verified(path)
    if meta.empty:
        raise InputError(f"{path}: no trajectories (the table has no rows)")
    return meta, texts


def _read_verified(path: Path) -> tuple[pd.DataFrame, object]:
    import pyarrow.parquet as pq

    if path.suffix == ".parquet":
        names = pq.read_schema(path).names
        missing = [c for c in (*META_COLUMNS, *TEXT_COLUMNS) if c not in names]
        if missing:
            raise InputError(f"{path}: missing required column(s) {missing}; has {names}")
        columns = list(META_COLUMNS) + ([GROUP_COLUMN] if GROUP_COLUMN in names else [])
        return validate_verified(pd.read_parquet(path, columns=columns), str(path)), ParquetTexts(path)
    df = read_table(path, required=(*META_COLUMNS, *TEXT_COLUMNS))
    return validate_verified(df, str(path)), FrameTexts(df, str(path))


def default_summary_path(output: str | Path) -> Path:
    output = Path(output)
    stem = output.name[:-len(".jsonl")] if output.name.endswith(".jsonl") else output.name
    return output.with_name(f"{stem}.summary.json")


def fuse_file(input_path: str | Path, output: str | Path, settings: FuseSettings,
              phrases_path: str | Path | None = None, summary_path: str | Path | None = None,
              progress: bool = True) -> dict:
    """Build one fused dataset file (JSONL) and its summary JSON; returns the summary."""
    phrases = load_phrases(phrases_path)
    meta, texts = read_verified(input_path)
    plan, dropped = plan_fusion(meta, settings)
    accumulator = SummaryAccumulator()
    rows = build_examples(plan, meta, texts, settings, phrases, str(input_path), progress=progress)
    write_jsonl(accumulator.watch(rows), output)
    summary = summarize(plan, dropped, accumulator.chars, settings, phrases)
    provenance = {"command": "fuse", "settings": {k: summary[k] for k in _SETTING_KEYS},
                  "input_sha256": sha256_file(input_path)}
    write_json({**summary, **artifact_metadata(provenance)}, summary_path or default_summary_path(output))
    log.info("fused %d problems (%d dropped without a correct trajectory), mean #Err %.4f -> %s",
             summary["problems"], dropped, summary["mean_errors"], output)
    return summary


# ---------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class AlphaCalibration:
    alpha: Fraction  # smallest alpha whose mean #Err reaches the target
    alpha_next: Fraction | None  # where the mean steps up next (alpha stays valid below it)
    achieved_mean_errors: Fraction
    mean_errors_below: Fraction  # attainable mean just below alpha
    mean_errors_next: Fraction | None
    max_mean_errors: Fraction
    problems: int


def error_breakpoints(stats: pd.DataFrame, k_max: int) -> list[tuple[Fraction, int]]:
    """(alpha, how many problems gain one fused error there), sorted by alpha.

    A problem with c = r*u fuses min(k_max, |Y−|, floor(alpha*c)) errors, which steps up
    by one at alpha = m/c for m = 1..min(k_max, |Y−|). The count is the same for every
    strategy: strategies choose which errors, not how many."""
    gains: Counter = Counter()
    combos = stats.groupby(["n_incorrect", "K", "u"]).size()
    for (n_inc, k, u), count in combos.items():
        if n_inc == 0:
            continue
        c = Fraction(int(n_inc) * int(u), int(k))
        for m in range(1, min(k_max, int(n_inc)) + 1):
            gains[m / c] += int(count)
    return sorted(gains.items())


def calibrate(meta: pd.DataFrame, k_max: int, target_mean_errors, strategy: str = "highdiv",
              source: str = "<table>") -> AlphaCalibration:
    """The smallest alpha whose mean #Err over kept problems is >= the target (exact)."""
    k_max = check_k_max(k_max)
    check_strategy(strategy)
    target = parse_target(target_mean_errors)
    stats, _ = problem_statistics(meta)
    n = len(stats)
    if n == 0:
        raise InputError(f"{source}: no problem has a correct trajectory; nothing to calibrate")
    points = error_breakpoints(stats, k_max)
    alphas = [alpha for alpha, _ in points]
    totals = np.cumsum([gain for _, gain in points]).tolist()
    needed = math.ceil(target * n)
    maximum = Fraction(totals[-1] if totals else 0, n)
    if not totals or totals[-1] < needed:
        raise InputError(f"{source}: target mean #Err {float(target):g} is unattainable with k_max={k_max}; "
                         f"the maximum is {float(maximum):.6g} over {n} problems")
    i = next(i for i, total in enumerate(totals) if total >= needed)
    return AlphaCalibration(
        alpha=alphas[i], alpha_next=alphas[i + 1] if i + 1 < len(alphas) else None,
        achieved_mean_errors=Fraction(totals[i], n),
        mean_errors_below=Fraction(totals[i - 1] if i else 0, n),
        mean_errors_next=Fraction(totals[i + 1], n) if i + 1 < len(totals) else None,
        max_mean_errors=maximum, problems=n)


def parse_target(value) -> Fraction:
    try:
        target = Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError):
        raise InputError(f"--target-errors: {value!r} is not a number") from None
    if target <= 0:
        raise InputError(f"--target-errors: must be > 0, got {value!r}")
    return target


def calibrate_alpha(verified_df: pd.DataFrame, k_max: int, target_mean_errors,
                    strategy: str = "highdiv") -> Fraction:
    """Smallest alpha at which the mean number of fused errors reaches the target."""
    return calibrate(validate_verified(verified_df), k_max, target_mean_errors, strategy).alpha


def calibration_record(result: AlphaCalibration, target, k_max: int, strategy: str) -> dict:
    def number(value):
        return None if value is None else float(value)

    return {"alpha": format_alpha(result.alpha),
            "alpha_next": None if result.alpha_next is None else format_alpha(result.alpha_next),
            "achieved_mean_errors": number(result.achieved_mean_errors),
            "mean_errors_below": number(result.mean_errors_below),
            "mean_errors_next": number(result.mean_errors_next),
            "max_mean_errors": number(result.max_mean_errors),
            "target": float(parse_target(target)), "k_max": k_max, "strategy": strategy,
            "problems": result.problems}


def read_alpha_file(path: str | Path) -> Fraction:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: alpha file does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: malformed JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or "alpha" not in data:
        raise InputError(f"{path}: missing field 'alpha'")
    return parse_alpha(data["alpha"], f"{path}: field 'alpha'")


# ------------------------------------------------------------------------------- CLI


def _run_fuse(args: argparse.Namespace) -> int:
    alpha = read_alpha_file(args.alpha_file) if args.alpha_file else (
        parse_alpha(args.alpha, "--alpha") if args.alpha is not None else None)
    settings = FuseSettings(k_max=args.k_max, alpha=alpha, strategy=args.strategy, seed=args.seed,
                            certainty_prob=args.certainty_prob)
    fuse_file(args.input, args.output, settings, args.phrases, args.summary)
    return 0


def _run_calibrate(args: argparse.Namespace) -> int:
    meta, _ = read_verified(args.input)
    result = calibrate(meta, args.k_max, args.target_errors, args.strategy, str(args.input))
    record = calibration_record(result, args.target_errors, check_k_max(args.k_max), args.strategy)
    write_json(record, args.output)
    log.info("alpha %s reaches mean #Err %.4f (target %s; just below: %.4f)", record["alpha"],
             record["achieved_mean_errors"], args.target_errors, record["mean_errors_below"])
    return 0


def register(sub) -> None:
    fuse = sub.add_parser("fuse", help="build a vanilla RFT / TrajFusion dataset from a verified table",
                          description=__doc__.splitlines()[0])
    fuse.add_argument("--input", required=True, help="verified table (.parquet or .jsonl)")
    fuse.add_argument("--output", required=True, help="fused dataset (.jsonl)")
    fuse.add_argument("--k-max", type=int, required=True, help="maximum fused errors; 0 = vanilla RFT")
    source = fuse.add_mutually_exclusive_group()
    source.add_argument("--alpha", help="diversity sensitivity, a decimal or fraction (e.g. 0.5, 16/21)")
    source.add_argument("--alpha-file", help="JSON written by calibrate-alpha")
    fuse.add_argument("--strategy", choices=STRATEGIES, default="highdiv")
    fuse.add_argument("--seed", type=int, required=True)
    fuse.add_argument("--phrases", help="phrase repository YAML (default: the paper's Table 5)")
    fuse.add_argument("--certainty-prob", type=float, default=0.0,
                      help="probability of a certainty phrase after the success phrase")
    fuse.add_argument("--summary", help="summary JSON (default: OUTPUT with .summary.json)")
    fuse.set_defaults(func=_run_fuse)

    cal = sub.add_parser("calibrate-alpha", help="find the alpha reaching a target mean #Err")
    cal.add_argument("--input", required=True, help="verified table (.parquet or .jsonl)")
    cal.add_argument("--k-max", type=int, required=True)
    cal.add_argument("--target-errors", required=True, help="target mean fused errors per problem")
    cal.add_argument("--strategy", choices=STRATEGIES, default="highdiv",
                     help="recorded only: the number of fused errors does not depend on it")
    cal.add_argument("--output", required=True, help="ALPHA.json")
    cal.set_defaults(func=_run_calibrate)
