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

import logging
from dataclasses import dataclass, field
from pathlib import Path

from trajfusion.io import InputError, read_jsonl
from trajfusion.templates import Template, default_prefix_ids, encode_prompt

log = logging.getLogger(__name__)

IGNORE_INDEX = -100


@dataclass(frozen=True)
class FusedExample:
    line: int
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


def _nonblank_line_numbers(path: Path) -> list[int]:
    with open(path, "rb") as fh:
        # Same notion of a blank line as trajfusion.io.read_jsonl, which skips them.
        return [n for n, raw in enumerate(fh, start=1) if raw.decode("utf-8").strip()]


def _message_content(where: str, messages: list, index: int, role: str) -> str:
    message = messages[index]
    if not isinstance(message, dict):
        raise InputError(f"{where}: field 'messages[{index}]' must be an object, got {type(message).__name__}")
    if message.get("role") != role:
        raise InputError(f"{where}: field 'messages[{index}].role' must be {role!r}, got {message.get('role')!r}")
    content = message.get("content")
    if not isinstance(content, str) or not content.strip():
        raise InputError(f"{where}: field 'messages[{index}].content' ({role}) must be a non-empty string, "
                         f"got {content!r}")
    return content


def parse_fused_row(row: dict, where: str) -> tuple[str, str, str]:
    """Check one fused record; return (problem_id, user content, assistant content)."""
    problem_id = row.get("problem_id")
    if not isinstance(problem_id, str) or not problem_id:
        raise InputError(f"{where}: field 'problem_id' must be a non-empty string, got {problem_id!r}")
    if "messages" not in row:
        raise InputError(f"{where}: missing field 'messages' (problem_id {problem_id!r})")
    messages = row["messages"]
    if not isinstance(messages, list) or len(messages) != 2:
        raise InputError(f"{where}: field 'messages' must be a list of one user and one assistant message, "
                         f"got {messages!r:.200}")
    user = _message_content(where, messages, 0, "user")
    assistant = _message_content(where, messages, 1, "assistant")
    return problem_id, user, assistant


def load_fused_examples(path: str | Path) -> list[FusedExample]:
    """Read and validate a fused JSONL dataset; errors name the file, line and field."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file does not exist")
    rows = read_jsonl(path)
    lines = _nonblank_line_numbers(path)
    if not rows:
        raise InputError(f"{path}: no training examples")
    examples = []
    for lineno, row in zip(lines, rows, strict=True):
        problem_id, user, assistant = parse_fused_row(row, f"{path}:{lineno}")
        examples.append(FusedExample(line=lineno, problem_id=problem_id, user=user, assistant=assistant))
    return examples


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
