"""The phrase repository (paper Appendix B.2, Table 5), shared by fusion and evaluation.

A phrase file is a YAML mapping from a category to its list of phrases; the packaged one,
``resources/phrases.yaml``, holds the paper's three categories. Fusion inserts phrases of
those three categories (``load_phrases``); evaluation counts the occurrences of the
``error_recognition`` phrases as reflections (``trajfusion.evaluate.reflections``). Other
top-level keys are ignored.
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
