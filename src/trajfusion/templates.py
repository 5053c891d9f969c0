"""Prompt templates (paper Appendix B.1) shared by sampling, training and evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from trajfusion.io import InputError


@dataclass(frozen=True)
class Template:
    name: str
    kind: str  # "text" or "chat"
    system: str
    prompt: str | None
    response_suffix: str

    def render_prompt(self, problem: str, tokenizer=None) -> str:
        """The full prompt text up to where the assistant's response starts."""
        if self.kind == "chat":
            if tokenizer is None or not getattr(tokenizer, "chat_template", None):
                raise InputError(f"template {self.name!r} needs a tokenizer with a chat template")
            messages = [{"role": "system", "content": self.system}, {"role": "user", "content": problem}]
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # Substitute the system text first and the problem last, so that a problem that
        # happens to contain "{system}" is never expanded.
        return self.prompt.replace("{system}", self.system).replace("{input}", problem)

    def suffix(self, tokenizer=None) -> str:
        if "{eos}" in self.response_suffix:
            eos = getattr(tokenizer, "eos_token", None) or ""
            return self.response_suffix.replace("{eos}", eos)
        return self.response_suffix


def _template_file(path: str | Path | None) -> Path:
    if path:
        return Path(path)
    return Path(str(resources.files("trajfusion") / "resources" / "templates.yaml"))


@lru_cache(maxsize=None)
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
    if kind not in ("text", "chat"):
        raise InputError(f"{file}: template {name!r}: field 'kind' must be 'text' or 'chat', got {kind!r}")
    if kind == "text" and "{input}" not in entry.get("prompt", ""):
        raise InputError(f"{file}: template {name!r}: field 'prompt' must contain '{{input}}'")
    return Template(name=name, kind=kind, system=entry.get("system", ""), prompt=entry.get("prompt"),
                    response_suffix=entry.get("response_suffix", ""))
