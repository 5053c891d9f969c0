"""Settings of ``trajfusion prepare-model`` (``ModelSettings``, declared once: trajfusion.settings)."""

from __future__ import annotations

from dataclasses import dataclass

from trajfusion.settings import Settings, setting

# Fields each model source needs (config/schema.yaml checks the same for configs).
REQUIRED_FIELDS = {"gguf_package": ("package", "gguf_file"), "tiny": ("package", "gguf_file"),
                   "hub": ("hub_id",), "local": ("path",)}
# Where a hub model's files live: "hub" (the default) links the output directory's files to
# the snapshot in the shared Hugging Face cache (HF_HUB_CACHE); "copy" copies them under
# results/ (the download also stays in the cache). config/schema.yaml declares the same.
HUB_CACHE_MODES = ("hub", "copy")


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
    if source != "hub" and "cache" in spec:
        raise ValueError(f"field 'cache' applies to source 'hub' only, not {source!r}")
    if source == "hub":
        spec = {**spec, "cache": spec.get("cache", HUB_CACHE_MODES[0])}
        if spec["cache"] not in HUB_CACHE_MODES:
            raise ValueError(f"field 'cache' must be one of {list(HUB_CACHE_MODES)}, got {spec['cache']!r}")
    return spec


@dataclass(frozen=True)
class ModelSettings(Settings):
    spec: dict = setting(help="model source as JSON: source (gguf_package, tiny, hub, local) and its fields "
                         "(package/gguf_file, hub_id/revision/cache, path, config)", parse=model_spec)
    seed: int = setting(0, help="seed for random-init (tiny) models")
