"""The exported record of one fused example, per format.

A fused example is ``{"problem_id", "messages": [user, assistant], ...}`` (``contracts.FUSED_EXAMPLE``);
each format puts the system prompt, the problem and the fused assistant text, all unchanged, where
its trainer reads them:

- ``messages``: OpenAI / TRL conversational language modelling, ``{"messages": [system, user,
  assistant]}`` (LLaMA-Factory reads it too, as its "openai" flavour of sharegpt);
- ``sharegpt``: LLaMA-Factory's sharegpt, ``{"conversations": [{"from": "human", "value"},
  {"from": "gpt", "value"}], "system"}``;
- ``alpaca``: ``{"instruction": problem, "input": "", "output", "system"}`` (LLaMA-Factory joins a
  non-empty ``input`` to the instruction, so it stays empty);
- ``prompt_completion``: TRL's conversational prompt-completion, ``{"prompt": [system, user],
  "completion": [assistant]}``. Conversational, not plain text (a choice): a text prompt would have
  to be rendered with one model's chat template, which needs its tokenizer; as messages, the
  trainer renders it with the chat template of the model it trains, system prompt included, and
  the loss covers the completion only.

With ``provenance`` each record also keeps the fused row's ``PROVENANCE`` columns (the problem id
as ``id``); every format here allows extra columns (TRL and LLaMA-Factory read only their own).
The character spans of the fused errors are not kept: they serve training's length policy only.
"""

from __future__ import annotations

from collections.abc import Callable

# fused-row column -> exported column
PROVENANCE = {"problem_id": "id", "n_errors": "n_errors", "error_indices": "error_indices",
              "correct_index": "correct_index", "alpha": "alpha", "k_max": "k_max", "strategy": "strategy",
              "seed": "seed"}

# LLaMA-Factory's sharegpt keys (its data/README.md: tags role_tag, content_tag, user_tag, assistant_tag).
SHAREGPT_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}
SHAREGPT_COLUMNS = {"messages": "conversations", "system": "system"}


def _chat(role: str, content: str) -> dict:
    return {"role": role, "content": content}


def messages_record(system: str, user: str, assistant: str) -> dict:
    return {"messages": [_chat("system", system), _chat("user", user), _chat("assistant", assistant)]}


def sharegpt_record(system: str, user: str, assistant: str) -> dict:
    role, content = SHAREGPT_TAGS["role_tag"], SHAREGPT_TAGS["content_tag"]
    turns = [{role: SHAREGPT_TAGS["user_tag"], content: user},
             {role: SHAREGPT_TAGS["assistant_tag"], content: assistant}]
    return {SHAREGPT_COLUMNS["messages"]: turns, SHAREGPT_COLUMNS["system"]: system}


def alpaca_record(system: str, user: str, assistant: str) -> dict:
    return {"instruction": user, "input": "", "output": assistant, "system": system}


def prompt_completion_record(system: str, user: str, assistant: str) -> dict:
    return {"prompt": [_chat("system", system), _chat("user", user)], "completion": [_chat("assistant", assistant)]}


# The formats LLaMA-Factory reads through a dataset_info.json entry the export writes beside the file.
DATASET_INFO_FORMATS = ("sharegpt",)

BUILDERS: dict[str, Callable[[str, str, str], dict]] = {
    "messages": messages_record,
    "sharegpt": sharegpt_record,
    "alpaca": alpaca_record,
    "prompt_completion": prompt_completion_record,
}
FORMATS = tuple(BUILDERS)

# What a record of each format holds, for the dataset card.
DESCRIPTIONS = {
    "messages": "`messages`: the system prompt, the problem (user) and the response (assistant) as "
                "`{role, content}` messages (OpenAI / TRL conversational format; LLaMA-Factory reads it as "
                "sharegpt with role/content tags)",
    "sharegpt": "`conversations`: the problem (`from: human`) and the response (`from: gpt`) as `{from, value}` "
                "turns; `system`: the system prompt (LLaMA-Factory's sharegpt format)",
    "alpaca": "`instruction`: the problem; `input`: empty; `output`: the response; `system`: the system prompt "
              "(alpaca format, as LLaMA-Factory reads it)",
    "prompt_completion": "`prompt`: the system prompt and the problem as `{role, content}` messages; `completion`: "
                         "the response as one assistant message (TRL's conversational prompt-completion format: "
                         "the trainer applies its model's chat template, and the loss covers the completion)",
}


def export_record(row: dict, fmt: str, system: str, provenance: bool) -> dict:
    """The record of fused row ``row`` (checked against the fused contract) in format ``fmt``."""
    user, assistant = (message["content"] for message in row["messages"])
    record = BUILDERS[fmt](system, user, assistant)
    if provenance:
        record.update({exported: row[column] for column, exported in PROVENANCE.items()})
    return record
