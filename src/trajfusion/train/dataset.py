"""Turn a fused JSONL dataset into tokenized prompt/completion training rows.

Each fused example (``docs/architecture.md``) becomes a prompt, rendered with the backbone's
template (``trajfusion.templates``), and a completion, the assistant text followed by the
template's suffix (the end-of-turn token). Rows are tokenized here rather than by TRL
because TRL's prompt/completion text path does two things we must not do:

* it tokenizes the prompt with the tokenizer's default ``add_special_tokens=True``, so a
  Llama-3 tokenizer prepends ``<|begin_of_text|>`` to a prompt whose template already
  starts with it (a doubled BOS), and
* it appends the tokenizer's EOS to every completion that does not end with it, so a
  ``<|im_end|>``- or ``<|eot_id|>``-terminated completion would gain a second terminator
  the model never emits at inference.

:func:`trajfusion.templates.encode_prompt` (the BOS rule sampling and evaluation use too)
adds the tokenizer's own leading special tokens (BOS for Llama or DeepSeek tokenizers,
nothing for Qwen or SmolLM2) only when the rendered prompt does not already begin with
them; the completion is tokenized without special tokens. Prompt and
completion are tokenized separately and concatenated, which is exactly what the model
sees at inference (prompt tokens, then its own generated tokens); a joint tokenization
could merge tokens across the boundary. Labels are -100 on prompt tokens, so the loss
covers the completion only, suffix included.

Length policy (``--length-policy``). ``drop_errors`` (the default) never cuts a trajectory: an
example longer than ``max_length`` loses its fused errors, last fused first, re-rendered from the
row's spans (``trajfusion.fused_text.without_last_errors``: the remaining errors keep their
phrases; without errors the success phrase goes too, the vanilla RFT layout), until it fits
whole; an example whose correct trajectory alone does not fit is dropped. ``truncate`` keeps the
first ``max_length`` tokens, so the examples with the most errors lose y* and the answer.
``train_meta.json`` counts each case and the mean #Err fused and actually trained on.

A micro-reflective row (``trajfusion.reflect``) with ``loss_on_prefix`` false leaves its kept
erroneous prefix out of the loss: every completion token overlapping ``prefix_span`` (the fast
tokenizer's character offsets) gets label -100.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from trajfusion.contracts import FUSED_EXAMPLE, check_records
from trajfusion.fused_text import span_problem, without_last_errors
from trajfusion.io import InputError, read_jsonl
from trajfusion.templates import Template, default_prefix_ids, encode_prompt
from trajfusion.train.settings import LENGTH_POLICIES

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
DROP_ERRORS, TRUNCATE = LENGTH_POLICIES
PROMPT_TOO_LONG, CORRECT_TOO_LONG = "prompt_too_long", "correct_too_long"
# The fused dataset's contract, restricted to the columns training reads: the fusion's own
# columns (n_errors, alpha, ...) may be absent, e.g. in a hand-made chat dataset.
TRAINING_EXAMPLE = dataclasses.replace(
    FUSED_EXAMPLE, columns=(FUSED_EXAMPLE.column("problem_id"), FUSED_EXAMPLE.column("messages")),
    extra_columns=True, rules=())


@dataclass(frozen=True)
class FusedExample:
    problem_id: str
    user: str
    assistant: str
    error_spans: tuple[tuple[int, int], ...] = ()  # fusion order (trajfusion.fused_text)
    success_span: tuple[int, int] | None = None
    # A micro-reflective row (trajfusion.reflect) with loss_on_prefix false: the kept prefix of
    # y-, whose tokens get label -100.
    unlearned_span: tuple[int, int] | None = None

    @property
    def n_errors(self) -> int:
        return len(self.error_spans)

    def with_errors(self, n_keep: int) -> str:
        """The assistant text with only its first ``n_keep`` fused errors."""
        return without_last_errors(self.assistant, self.error_spans, self.success_span, n_keep)


@dataclass
class EncodingStats:
    """What happened to the examples on their way to the trainer, per reason."""

    length_policy: str = DROP_ERRORS
    n_examples: int = 0
    n_used: int = 0
    n_shortened: int = 0  # drop_errors: fused errors removed until the example fit
    n_truncated: int = 0  # truncate: cut at max_length
    n_dropped_prompt_too_long: int = 0
    n_dropped_correct_too_long: int = 0  # drop_errors: y* alone does not fit
    errors_removed: int = 0
    errors_fused: int = 0  # over all examples
    errors_trained: int = 0  # over the examples used
    prompt_tokens: int = 0
    completion_tokens: int = 0
    dropped_problem_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "length_policy": self.length_policy,
            "n_examples": self.n_examples,
            "n_used": self.n_used,
            "shortened": {"fewer_errors": self.n_shortened, "truncated": self.n_truncated},
            "dropped": {PROMPT_TOO_LONG: self.n_dropped_prompt_too_long,
                        CORRECT_TOO_LONG: self.n_dropped_correct_too_long},
            "errors_removed": self.errors_removed,
            "mean_errors_fused": self.errors_fused / self.n_examples if self.n_examples else 0.0,
            "mean_errors_trained": self.errors_trained / self.n_used if self.n_used else 0.0,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "dropped_problem_ids": list(self.dropped_problem_ids),
        }


def load_fused_examples(path: str | Path) -> list[FusedExample]:
    """Read a fused JSONL dataset, checked against its contract; errors name the file, the
    record (with its problem_id) and the field. The spans are optional (a hand-made chat
    dataset has none) unless the record says it fused errors (``n_errors`` > 0)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file does not exist")
    rows = check_records(read_jsonl(path), TRAINING_EXAMPLE, str(path))
    return [_example(row, f"{path}: record {number} (problem_id={row['problem_id']!r})")
            for number, row in enumerate(rows, start=1)]


def _example(row: dict, where: str) -> FusedExample:
    assistant = row["messages"][1]["content"]
    n_errors = row.get("n_errors", 0)
    error_spans, success_span = row.get("error_spans", []), row.get("success_span")
    if n_errors and "error_spans" not in row:
        raise InputError(f"{where}: field 'error_spans' is missing; a record with n_errors > 0 needs it to shorten "
                         f"an over-long example (rebuild the dataset with `trajfusion fuse`)")
    if not isinstance(error_spans, list) or ("n_errors" in row and len(error_spans) != n_errors):
        raise InputError(f"{where}: field 'error_spans' {error_spans!r}: expected a list of {n_errors} ranges")
    if (success_span is None) != (len(error_spans) == 0):
        raise InputError(f"{where}: field 'success_span' {success_span!r}: expected a range exactly when "
                         f"error_spans is not empty")
    problem = span_problem(assistant, error_spans, success_span)
    if problem:
        raise InputError(f"{where}: field 'error_spans'/'success_span': {problem}")
    return FusedExample(problem_id=row["problem_id"], user=row["messages"][0]["content"], assistant=assistant,
                        error_spans=tuple(tuple(span) for span in error_spans),
                        success_span=None if success_span is None else tuple(success_span),
                        unlearned_span=_unlearned_span(row, assistant, where))


def _unlearned_span(row: dict, assistant: str, where: str) -> tuple[int, int] | None:
    """The prefix span a micro-reflective row leaves out of the loss (``loss_on_prefix`` false)."""
    if row.get("loss_on_prefix", True) is not False:
        return None
    span = row.get("prefix_span")
    problem = "missing" if span is None else span_problem(assistant, [span], None)
    if problem:
        raise InputError(f"{where}: field 'prefix_span': {problem} (needed with loss_on_prefix false)")
    return tuple(span)


def to_prompt_completion(example: FusedExample, template: Template, tokenizer) -> tuple[str, str]:
    """The prompt (template applied to the problem) and completion (response + end-of-turn)."""
    prompt = template.render_prompt(example.user, tokenizer)
    completion = example.assistant + template.suffix(tokenizer)
    return prompt, completion


def encode_example(prompt: str, completion: str, tokenizer, max_length: int,
                   prefix_ids: list[int] | None = None) -> dict:
    """``input_ids`` and ``labels`` (-100 on the prompt), truncated to ``max_length`` from the end.

    Also returns ``prompt_len`` and ``truncated`` so the caller can account for them.
    """
    return _encoded(encode_prompt(tokenizer, prompt, prefix_ids), completion, tokenizer, max_length)


def _encoded(prompt_ids: list[int], completion: str, tokenizer, max_length: int,
             unlearned: tuple[int, int] | None = None) -> dict:
    """``unlearned``: a character range of the completion whose tokens (any token overlapping it)
    get label -100."""
    if unlearned is None or unlearned[0] == unlearned[1]:
        completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        completion_labels = list(completion_ids)
    else:
        encoded = tokenizer(completion, add_special_tokens=False, return_offsets_mapping=True)
        completion_ids, (start, end) = encoded["input_ids"], unlearned
        completion_labels = [IGNORE_INDEX if a < end and b > start else token
                             for token, (a, b) in zip(completion_ids, encoded["offset_mapping"])]
    input_ids = prompt_ids + completion_ids
    labels = [IGNORE_INDEX] * len(prompt_ids) + completion_labels
    truncated = len(input_ids) > max_length
    return {"input_ids": input_ids[:max_length], "labels": labels[:max_length],
            "prompt_len": len(prompt_ids), "truncated": truncated}


def fit_example(prompt_ids: list[int], example: FusedExample, template: Template, tokenizer,
                max_length: int) -> tuple[dict | None, int]:
    """``drop_errors``: the encoding with the most fused errors (removed last-fused-first) that
    fits ``max_length`` whole, and the errors it kept; (None, 0) when y* alone does not fit."""
    suffix = template.suffix(tokenizer)
    for n_keep in range(example.n_errors, -1, -1):
        unlearned = example.unlearned_span if n_keep == example.n_errors else None  # spans of the whole text
        encoded = _encoded(prompt_ids, example.with_errors(n_keep) + suffix, tokenizer, max_length, unlearned)
        if not encoded["truncated"]:
            return encoded, n_keep
    return None, 0


class Fitted(NamedTuple):
    encoded: dict | None  # None: dropped
    n_errors: int  # fused errors kept
    dropped: str | None = None  # why: PROMPT_TOO_LONG or CORRECT_TOO_LONG


def encode_by_policy(example: FusedExample, template: Template, tokenizer, max_length: int,
                     prefix_ids: list[int] | None, length_policy: str) -> Fitted:
    """The example's encoding under ``length_policy`` and the fused errors it keeps."""
    prompt = template.render_prompt(example.user, tokenizer)
    prompt_ids = encode_prompt(tokenizer, prompt, prefix_ids)
    if len(prompt_ids) >= max_length:
        return Fitted(None, 0, PROMPT_TOO_LONG)
    if length_policy == TRUNCATE:
        return Fitted(_encoded(prompt_ids, example.assistant + template.suffix(tokenizer), tokenizer, max_length,
                               example.unlearned_span), example.n_errors)
    encoded, n_errors = fit_example(prompt_ids, example, template, tokenizer, max_length)
    return Fitted(encoded, n_errors, None if encoded else CORRECT_TOO_LONG)


def build_training_rows(examples: list[FusedExample], template: Template, tokenizer, max_length: int,
                        source: str = "dataset", length_policy: str = DROP_ERRORS) -> tuple[list[dict], EncodingStats]:
    """Tokenized rows (``input_ids``, ``labels``) for the trainer, in dataset order.

    An example whose prompt alone fills ``max_length`` has nothing to train on and is dropped.
    An over-long example, with ``drop_errors``, loses its last fused errors until it fits whole
    (re-rendered: the remaining errors keep their phrases) and is dropped when y* alone does not
    fit; with ``truncate`` it keeps its first ``max_length`` tokens (losing the end: y*, the answer
    and the end-of-turn token). Every case is counted in the returned stats.
    """
    from tqdm.auto import tqdm

    prefix_ids = default_prefix_ids(tokenizer)
    stats = EncodingStats(length_policy=length_policy, n_examples=len(examples))
    rows = []
    for example in tqdm(examples, desc="tokenizing", unit="ex", mininterval=5):
        stats.errors_fused += example.n_errors
        encoded, n_errors, dropped = encode_by_policy(example, template, tokenizer, max_length, prefix_ids,
                                                      length_policy)
        if dropped:
            stats.dropped_problem_ids.append(example.problem_id)
            stats.n_dropped_prompt_too_long += int(dropped == PROMPT_TOO_LONG)
            stats.n_dropped_correct_too_long += int(dropped == CORRECT_TOO_LONG)
            continue
        stats.n_truncated += int(encoded["truncated"])
        stats.n_shortened += int(n_errors < example.n_errors)
        stats.errors_removed += example.n_errors - n_errors
        stats.errors_trained += n_errors
        stats.prompt_tokens += encoded["prompt_len"]
        stats.completion_tokens += len(encoded["input_ids"]) - encoded["prompt_len"]
        rows.append({"input_ids": encoded["input_ids"], "labels": encoded["labels"]})
    stats.n_used = len(rows)
    _log_stats(stats, max_length)
    if not rows:
        raise InputError(f"{source}: no example fits max_length={max_length} ({stats.n_dropped_prompt_too_long} "
                         f"prompt(s) at least that long, {stats.n_dropped_correct_too_long} correct "
                         f"trajectory(ies) too long)")
    return rows, stats


def _log_stats(stats: EncodingStats, max_length: int) -> None:
    if stats.n_dropped_prompt_too_long:
        log.warning("dropped %d example(s) whose prompt alone reaches max_length=%d",
                    stats.n_dropped_prompt_too_long, max_length)
    if stats.n_dropped_correct_too_long:
        log.warning("dropped %d example(s) whose correct trajectory alone does not fit max_length=%d",
                    stats.n_dropped_correct_too_long, max_length)
    if stats.n_shortened:
        log.warning("removed %d fused error(s) from %d example(s) to fit max_length=%d; mean #Err trained %.4f "
                    "(fused %.4f)", stats.errors_removed, stats.n_shortened, max_length,
                    stats.as_dict()["mean_errors_trained"], stats.as_dict()["mean_errors_fused"])
    if stats.n_truncated:
        log.warning("truncated %d completion(s) to max_length=%d (they lose their end: y*, the answer and the "
                    "end-of-turn token)", stats.n_truncated, max_length)
