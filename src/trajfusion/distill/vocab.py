"""Teacher and student must share a tokenizer: the divergence compares their next-token
distributions token id by token id.

``shared_vocab_size`` refuses a pair whose tokenizers differ (the vocabulary, the merges,
the added tokens with their ids and special flags) with an error naming both, and returns
the number of token ids the tokenizer defines. Embedding matrices are often padded beyond
it (Qwen2.5: 151,665 tokens; 151,936 rows in the 0.5B-3B models, 152,064 in the 7B and
larger ones); the rows past the tokenizer's ids are never produced by it, so the loss
compares only the first ``shared_vocab_size`` logits of each model. Which special token a
tokenizer *calls* its EOS or pad token (``special_tokens_map``) is not compared: it maps no id
differently, and a base model and its instruct version commonly name different end tokens
of the same vocabulary.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from trajfusion.io import InputError


def tokenizer_signature(tokenizer) -> dict:
    """What makes two tokenizers map text and ids alike: the model part of the ``tokenizers``
    JSON (vocabulary and merges) and the added tokens (id, text, special)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        spec = json.loads(backend.to_str())
        model = spec.get("model", {})
        added = sorted((t["id"], t["content"], bool(t.get("special"))) for t in spec.get("added_tokens", []))
    else:  # a slow (Python) tokenizer: its vocabulary is all there is to compare
        model = {"vocab": tokenizer.get_vocab()}
        added = sorted((i, str(t)) for i, t in tokenizer.added_tokens_decoder.items())
    return {"model": model, "added_tokens": added}


def describe(name: str, tokenizer) -> str:
    """``name``'s vocabulary in one phrase: its size, model type and a digest of its signature."""
    signature = tokenizer_signature(tokenizer)
    digest = hashlib.sha256(json.dumps(signature, sort_keys=True).encode()).hexdigest()[:12]
    kind = signature["model"].get("type", type(tokenizer).__name__)
    return f"{name} ({len(tokenizer)} tokens, {kind}, vocabulary sha256 {digest})"


def _difference(student: dict, teacher: dict) -> str:
    model_s, model_t = student["model"], teacher["model"]
    if model_s.get("vocab") != model_t.get("vocab"):
        return "the vocabularies differ"
    if model_s.get("merges") != model_t.get("merges"):
        return "the merges differ"
    if model_s != model_t:
        return "the tokenizer models' settings differ"
    return "the added tokens differ"


def check_same_tokenizer(student, teacher, student_name: str, teacher_name: str) -> int:
    """The number of token ids both tokenizers define; InputError if they are not the same tokenizer."""
    signature_s, signature_t = tokenizer_signature(student), tokenizer_signature(teacher)
    if signature_s != signature_t:
        raise InputError(f"teacher and student must share a tokenizer: {_difference(signature_s, signature_t)} "
                         f"between student {describe(student_name, student)} and teacher "
                         f"{describe(teacher_name, teacher)}")
    return len(student)


def embedding_rows(model_dir: str) -> int | None:
    """The model's vocabulary size from its config (its embedding rows), None if unknown
    (a folder without config.json: loading the model reports that)."""
    from transformers import AutoConfig

    if Path(model_dir).is_dir() and not (Path(model_dir) / "config.json").is_file():
        return None
    config = AutoConfig.from_pretrained(model_dir)
    return getattr(config.get_text_config(), "vocab_size", None)


def shared_vocab_size(student_dir: str, teacher_dir: str) -> int:
    """Check the pair shares a tokenizer and both models' embeddings cover it; return its size."""
    from transformers import AutoTokenizer

    tokenizers = {}
    for role, path in (("student", student_dir), ("teacher", teacher_dir)):
        try:
            tokenizers[role] = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as exc:
            raise InputError(f"--{role}: cannot load a tokenizer from {path!r} ({type(exc).__name__}: {exc})") \
                from None
    size = check_same_tokenizer(tokenizers["student"], tokenizers["teacher"], str(student_dir), str(teacher_dir))
    for role, path in (("student", student_dir), ("teacher", teacher_dir)):
        rows = embedding_rows(path)
        if rows is not None and rows < size:
            raise InputError(f"{Path(path) / 'config.json'}: vocab_size {rows} is smaller than the tokenizer's "
                             f"{size} tokens ({role})")
    return size
