"""The phrase repository (paper Appendix B.2, Table 5), shared by fusion and evaluation.

A phrase file is a YAML mapping from a category to its list of phrases; the packaged one,
``resources/phrases.yaml``, holds the paper's three categories. Fusion inserts phrases of
those three categories (``load_phrases``); evaluation counts every phrase of every category
as a reflection (``all_phrases``), so a file may add categories only evaluation reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from trajfusion.io import InputError

PHRASE_KEYS = ("error_recognition", "success_confirmation", "certainty")


@dataclass(frozen=True)
class Phrases:
    """The categories fusion draws from; ``certainty`` may be empty."""

    error_recognition: tuple[str, ...]
    success_confirmation: tuple[str, ...]
    certainty: tuple[str, ...]
    source: str


def default_phrases_path() -> Path:
    return Path(str(resources.files("trajfusion") / "resources" / "phrases.yaml"))


def read_phrase_file(path: str | Path | None = None) -> tuple[Path, dict]:
    """The file (default: the packaged Table 5) and its top-level mapping, in file order."""
    import yaml

    file = Path(path) if path else default_phrases_path()
    if not file.exists():
        raise InputError(f"{file}: phrase file does not exist")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{file}: malformed YAML ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise InputError(f"{file}: expected a mapping of phrase categories to lists of phrases")
    return file, data


def load_phrases(path: str | Path | None = None) -> Phrases:
    """Fusion's phrases: each of ``PHRASE_KEYS`` a list of non-empty strings, the first two
    holding at least one phrase."""
    file, data = read_phrase_file(path)
    lists = {}
    for key in PHRASE_KEYS:
        values = data.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
            raise InputError(f"{file}: field '{key}' must be a list of non-empty strings")
        if key != "certainty" and not values:
            raise InputError(f"{file}: field '{key}' must hold at least one phrase")
        lists[key] = tuple(values)
    return Phrases(**lists, source=str(file))


def all_phrases(path: str | Path | None = None) -> list[str]:
    """Every non-blank string listed (at any depth) under the file's top-level keys, in file
    order; each key must list at least one."""
    file, data = read_phrase_file(path)
    phrases = []
    for key, value in data.items():
        found = _strings_in_lists(value)
        if not found:
            raise InputError(f"{file}: key {key!r}: expected a list of phrase strings, got {value!r}")
        phrases.extend(found)
    return phrases


def _strings_in_lists(value) -> list[str]:
    if isinstance(value, list):
        out = []
        for item in value:
            out.extend([item] if isinstance(item, str) else _strings_in_lists(item))
        return [s for s in out if s.strip()]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings_in_lists(v)]
    return []
