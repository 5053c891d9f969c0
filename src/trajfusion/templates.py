"""Prompt templates (paper Appendix B.1) shared by sampling, training and evaluation, and the
token ids of a rendered prompt (the BOS rule), so that a model sees the same prompt tokens
when it is trained, sampled and evaluated.

A ``few_shot`` template (the ICL baselines of Table 1) renders worked examples of a
demonstration set (``resources/few_shot.yaml``) before the problem, as the Qwen2.5-Math
toolkit's ``construct_prompt`` does for its ``cot`` prompt type: each example and the problem
are ``prompt`` (``{input}`` replaced) followed by the example's answer, joined by
``separator``, with the spaces at both ends stripped. A base model continues with further
made-up questions; ``cut`` ends a response at the first of the template's ``stop`` strings
(the toolkit's stop words)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from trajfusion.io import InputError

TEMPLATE_KINDS = ("text", "chat", "few_shot")


@dataclass(frozen=True)
class Template:
    name: str
    kind: str  # "text", "chat" or "few_shot"
    system: str
    prompt: str | None
    response_suffix: str
    shots: tuple[tuple[str, str], ...] = ()  # few_shot: the (question, answer) demonstrations
    separator: str = ""  # few_shot: between demonstrations and before the problem
    stop: tuple[str, ...] = ()  # a response ends at the first of these (cut)

    def render_prompt(self, problem: str, tokenizer=None) -> str:
        """The full prompt text up to where the assistant's response starts."""
        if self.kind == "chat":
            if tokenizer is None or not getattr(tokenizer, "chat_template", None):
                raise InputError(f"template {self.name!r} needs a tokenizer with a chat template")
            messages = [{"role": "system", "content": self.system}, {"role": "user", "content": problem}]
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if self.kind == "few_shot":
            blocks = [self._fill(question) + answer for question, answer in self.shots]
            return self.separator.join([*blocks, self._fill(problem)]).strip(" ")
        return self._fill(problem)

    def _fill(self, problem: str) -> str:
        # Substitute the system text first and the problem last, so that a problem that
        # happens to contain "{system}" is never expanded.
        return self.prompt.replace("{system}", self.system).replace("{input}", problem)

    def cut(self, response: str) -> str | None:
        """The response up to the first stop string, or None when it has none."""
        ends = [response.find(stop) for stop in self.stop]
        ends = [end for end in ends if end >= 0]
        return response[:min(ends)] if ends else None

    def suffix(self, tokenizer=None) -> str:
        if "{eos}" in self.response_suffix:
            eos = getattr(tokenizer, "eos_token", None) or ""
            return self.response_suffix.replace("{eos}", eos)
        return self.response_suffix


def _template_file(path: str | Path | None) -> Path:
    if path:
        return Path(path)
    return _resource("templates.yaml")


def _resource(name: str) -> Path:
    return Path(str(resources.files("trajfusion") / "resources" / name))


@cache
def _load_all(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def load_template(name: str, path: str | Path | None = None) -> Template:
    file = _template_file(path)
    entries = _load_all(str(file))
    if name not in entries:
        raise InputError(f"{file}: unknown template {name!r}; known: {sorted(entries)}")
    entry = entries[name]
    kind = entry.get("kind", "text")
    if kind not in TEMPLATE_KINDS:
        raise InputError(f"{file}: template {name!r}: field 'kind' must be one of {list(TEMPLATE_KINDS)}, "
                         f"got {kind!r}")
    if kind != "chat" and "{input}" not in entry.get("prompt", ""):
        raise InputError(f"{file}: template {name!r}: field 'prompt' must contain '{{input}}'")
    shots = _shots(file, name, entry.get("shots")) if kind == "few_shot" else ()
    return Template(name=name, kind=kind, system=entry.get("system", ""), prompt=entry.get("prompt"),
                    response_suffix=entry.get("response_suffix", ""), shots=shots,
                    separator=entry.get("separator", ""), stop=tuple(entry.get("stop", ())))


def _shots(file: Path, name: str, spec) -> tuple[tuple[str, str], ...]:
    """The first ``spec["n"]`` demonstrations of set ``spec["set"]`` of ``resources/few_shot.yaml``."""
    if not isinstance(spec, dict) or not isinstance(spec.get("set"), str) or not isinstance(spec.get("n"), int):
        raise InputError(f"{file}: template {name!r}: field 'shots' must be {{set: NAME, n: COUNT}}, got {spec!r}")
    demos_file = _resource("few_shot.yaml")
    demos = _load_all(str(demos_file)).get(spec["set"])
    if demos is None or len(demos) < spec["n"]:
        raise InputError(f"{file}: template {name!r}: field 'shots' asks for {spec['n']} examples of set "
                         f"{spec['set']!r}; {demos_file} has {len(demos or [])}")
    return tuple((demo["question"], demo["answer"]) for demo in demos[:spec["n"]])


def default_prefix_ids(tokenizer) -> list[int]:
    """Token ids the tokenizer puts before any text by default (e.g. ``[bos_id]``), or ``[]``."""
    probe = "a"
    with_special = tokenizer(probe)["input_ids"]
    without = tokenizer(probe, add_special_tokens=False)["input_ids"]
    for start in range(len(with_special) - len(without) + 1):
        if with_special[start:start + len(without)] == without:
            return list(with_special[:start])
    return []


def encode_prompt(tokenizer, prompt: str, prefix_ids: list[int] | None = None) -> list[int]:
    """Token ids of a rendered prompt with the tokenizer's leading special tokens (its BOS)
    exactly once.

    Rendered templates may already start with BOS (e.g. ``<|begin_of_text|>``); encoding
    with the tokenizer's default special tokens would then double it. So the prompt is
    encoded without special tokens and the tokenizer's default prefix (``default_prefix_ids``,
    passed in when encoding many prompts) is prepended only if the prompt lacks it.
    """
    prefix = default_prefix_ids(tokenizer) if prefix_ids is None else prefix_ids
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if prefix and ids[:len(prefix)] == prefix:
        return list(ids)
    return list(prefix) + list(ids)


def encode_prompts(tokenizer, prompts: list[str]) -> list[list[int]]:
    """``encode_prompt`` of each prompt."""
    prefix = default_prefix_ids(tokenizer)
    return [encode_prompt(tokenizer, prompt, prefix) for prompt in prompts]
