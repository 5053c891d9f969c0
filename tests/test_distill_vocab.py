"""The shared-tokenizer check of the distillation stage, on real tokenizers."""

from __future__ import annotations

import pytest

from trajfusion.distill.vocab import shared_vocab_size
from trajfusion.io import InputError


@pytest.fixture(scope="module")
def padded_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model with its embedding matrix padded by 64 rows, the same tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model.resize_token_embeddings(model.config.vocab_size + 64, mean_resizing=False)
    out = tmp_path_factory.mktemp("padded")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def other_tokenizer_dir(root):
    """A word-level tokenizer of five words, built with the ``tokenizers`` library."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<eos>": 1, "the": 2, "answer": 3, "is": 4}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="<eos>").save_pretrained(root)
    return root


def test_same_tokenizer_is_accepted(tiny_model_dir):
    from transformers import AutoTokenizer

    assert shared_vocab_size(tiny_model_dir, tiny_model_dir) == len(AutoTokenizer.from_pretrained(tiny_model_dir))


def test_padded_embeddings_share_the_tokenizer_part(tiny_model_dir, padded_model_dir):
    from transformers import AutoConfig, AutoTokenizer

    tokens = len(AutoTokenizer.from_pretrained(tiny_model_dir))
    rows = [AutoConfig.from_pretrained(path).vocab_size for path in (tiny_model_dir, padded_model_dir)]
    assert rows[1] == rows[0] + 64
    assert shared_vocab_size(tiny_model_dir, padded_model_dir) == tokens
    assert shared_vocab_size(padded_model_dir, tiny_model_dir) == tokens


def test_a_different_tokenizer_is_refused_naming_both(tiny_model_dir, tmp_path):
    other = other_tokenizer_dir(tmp_path / "other")
    with pytest.raises(InputError) as caught:
        shared_vocab_size(tiny_model_dir, other)
    message = str(caught.value)
    assert "vocabularies differ" in message
    assert f"student {tiny_model_dir} (49152 tokens, BPE" in message
    assert f"teacher {other} (5 tokens, WordLevel" in message


def test_an_extra_special_token_is_refused(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|step|>"]})
    tokenizer.save_pretrained(tmp_path / "extra")
    with pytest.raises(InputError, match="added tokens differ"):
        shared_vocab_size(tmp_path / "extra", tiny_model_dir)


def test_another_eos_name_of_the_same_vocabulary_is_accepted(tiny_model_dir, tmp_path):
    """A base model and its instruct version often name different end tokens (e.g. Qwen2.5's
    <|endoftext|> and <|im_end|>); the ids map alike, so the pair is accepted."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    other_eos = next(token for token in tokenizer.all_special_tokens if token != tokenizer.eos_token)
    tokenizer.eos_token = other_eos
    tokenizer.save_pretrained(tmp_path / "eos")
    assert AutoTokenizer.from_pretrained(tmp_path / "eos").eos_token == other_eos
    assert shared_vocab_size(tmp_path / "eos", tiny_model_dir) == len(tokenizer)


def test_no_tokenizer_is_an_input_error(tiny_model_dir, tmp_path):
    with pytest.raises(InputError, match="--teacher: cannot load a tokenizer"):
        shared_vocab_size(tiny_model_dir, tmp_path)
