"""The license of each pool source, read from ``resources/licenses.yaml`` (declared there once)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from trajfusion.io import InputError

UNKNOWN = "unknown"  # the Hub's license id for "not known"


@dataclass(frozen=True)
class SourceLicense:
    source: str
    license: str  # Hugging Face Hub license id
    note: str  # the license as data/README.md states it
    origin: str


def default_licenses_path() -> Path:
    return Path(str(resources.files("trajfusion") / "resources" / "licenses.yaml"))


def load_licenses(path: str | Path | None = None) -> dict[str, SourceLicense]:
    """Source name -> its license; a malformed entry raises InputError naming the file and field."""
    path = Path(path) if path else default_licenses_path()
    if not path.exists():
        raise InputError(f"{path}: licenses file does not exist")
    try:
        entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: malformed YAML ({exc})") from None
    if not isinstance(entries, dict):
        raise InputError(f"{path}: expected a mapping of source name to {{license, note, origin}}")
    return {source: _entry(path, source, entry) for source, entry in entries.items()}


def _entry(path: Path, source: str, entry) -> SourceLicense:
    if not isinstance(entry, dict):
        raise InputError(f"{path}: source {source!r}: expected a mapping with license, note and origin")
    for field in ("license", "note", "origin"):
        if not isinstance(entry.get(field), str) or not entry[field].strip():
            raise InputError(f"{path}: source {source!r}: field {field!r} must be a non-empty string")
    return SourceLicense(source, entry["license"], entry["note"], entry["origin"])


def declared_licenses(licenses: dict[str, str] | None) -> dict[str, SourceLicense]:
    """The licenses a config declares for its own datasets, as card entries."""
    return {source: SourceLicense(source, license, license, "declared in the config (`datasets:`)")
            for source, license in (licenses or {}).items()}
