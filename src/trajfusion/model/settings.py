"""Settings of ``trajfusion prepare-model`` (``ModelSettings``, declared once: trajfusion.settings)."""

from __future__ import annotations

from dataclasses import dataclass

from trajfusion.settings import Settings, setting

# Fields each model source needs (config/schema.yaml checks the same for configs).
REQUIRED_FIELDS = {"gguf_package": ("package", "gguf_file"), "tiny": ("package", "gguf_file"),
                   "hub": ("hub_id",), "local": ("path",)}


def model_spec(spec) -> dict:
    """A model source spec with its source and required fields checked (ValueError if not)."""
    if not isinstance(spec, dict):
        raise ValueError(f"expected a JSON object, got {type(spec).__name__}")
    source = spec.get("source")
    if source not in REQUIRED_FIELDS:
        raise ValueError(f"field 'source' must be one of {list(REQUIRED_FIELDS)}, got {source!r}")
    for field in REQUIRED_FIELDS[source]:
        if not isinstance(spec.get(field), str) or not spec[field].strip():
            raise ValueError(f"field {field!r} (a non-empty string) is required for source {source!r}")
    return spec


@dataclass(frozen=True)
class ModelSettings(Settings):
    spec: dict = setting(help="model source as JSON: source (gguf_package, tiny, hub, local) and its fields "
                         "(package/gguf_file, hub_id, path, config)", parse=model_spec)
    seed: int = setting(0, help="seed for random-init (tiny) models")
