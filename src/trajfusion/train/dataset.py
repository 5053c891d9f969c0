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
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

from trajfusion.contracts import FUSED_EXAMPLE, check_records
from trajfusion.io import InputError, read_jsonl
from trajfusion.templates import Template, default_prefix_ids, encode_prompt

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
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


@dataclass
class EncodingStats:
    """What happened to the examples on their way to the trainer."""

    n_examples: int = 0
    n_used: int = 0
    n_truncated: int = 0
    n_dropped_prompt_too_long: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    dropped_problem_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "n_examples": self.n_examples,
            "n_used": self.n_used,
            "n_truncated": self.n_truncated,
            "n_dropped_prompt_too_long": self.n_dropped_prompt_too_long,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "dropped_problem_ids": list(self.dropped_problem_ids),
        }


def load_fused_examples(path: str | Path) -> list[FusedExample]:
    """Read a fused JSONL dataset, checked against its contract; errors name the file, the
    record (with its problem_id) and the field."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file does not exist")
    rows = check_records(read_jsonl(path), TRAINING_EXAMPLE, str(path))
    return [FusedExample(problem_id=row["problem_id"], user=row["messages"][0]["content"],
                         assistant=row["messages"][1]["content"]) for row in rows]


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
    prompt_ids = encode_prompt(tokenizer, prompt, prefix_ids)
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    input_ids = prompt_ids + completion_ids
    labels = [IGNORE_INDEX] * len(prompt_ids) + list(completion_ids)
    truncated = len(input_ids) > max_length
    return {"input_ids": input_ids[:max_length], "labels": labels[:max_length],
            "prompt_len": len(prompt_ids), "truncated": truncated}


def build_training_rows(examples: list[FusedExample], template: Template, tokenizer,
                        max_length: int, source: str = "dataset") -> tuple[list[dict], EncodingStats]:
    """Tokenized rows (``input_ids``, ``labels``) for the trainer, in dataset order.

    An example whose prompt alone fills ``max_length`` has nothing to train on and is
    dropped; one whose completion is cut keeps its first ``max_length`` tokens (it then
    lacks its end-of-turn token). Both are counted in the returned stats.
    """
    from tqdm.auto import tqdm

    prefix_ids = default_prefix_ids(tokenizer)
    stats = EncodingStats(n_examples=len(examples))
    rows = []
    for example in tqdm(examples, desc="tokenizing", unit="ex", mininterval=5):
        prompt, completion = to_prompt_completion(example, template, tokenizer)
        encoded = encode_example(prompt, completion, tokenizer, max_length, prefix_ids)
        if encoded["prompt_len"] >= max_length:
            stats.n_dropped_prompt_too_long += 1
            stats.dropped_problem_ids.append(example.problem_id)
            continue
        stats.n_truncated += int(encoded["truncated"])
        stats.prompt_tokens += encoded["prompt_len"]
        stats.completion_tokens += len(encoded["input_ids"]) - encoded["prompt_len"]
        rows.append({"input_ids": encoded["input_ids"], "labels": encoded["labels"]})
    stats.n_used = len(rows)
    if stats.n_dropped_prompt_too_long:
        log.warning("dropped %d example(s) whose prompt alone reaches max_length=%d",
                    stats.n_dropped_prompt_too_long, max_length)
    if stats.n_truncated:
        log.warning("truncated %d completion(s) to max_length=%d (they lose their end-of-turn token)",
                    stats.n_truncated, max_length)
    if not rows:
        raise InputError(f"{source}: no example fits max_length={max_length}: every prompt is at least that long")
    return rows, stats
