"""The length policy: an over-long fused example loses its last fused errors (never y* or the
answer) or is dropped when y* alone does not fit; counted in train_meta.json. Real fused rows
(trajfusion.fuse) of long-form completions, encoded with the real SmolLM2 tokenizer."""

from __future__ import annotations

import argparse
import json

import pandas as pd
import pytest

from trajfusion import train
from trajfusion.fuse import FuseSettings, fuse_frame, load_phrases, parse_alpha
from trajfusion.io import write_jsonl
from trajfusion.templates import load_template
from trajfusion.train import dataset as tds

TEMPLATE = "qwen25_math"


def completion(answer: str, detail: str) -> str:
    return ("<think>\nFirst, factor 360 = 2^3 * 3^2 * 5.\n\n"
            f"{detail}\n\nEach divisor picks an exponent for every prime, so the count is {answer}.\n</think>\n\n"
            f"**Summary.** Counting exponent choices gives \\boxed{{{answer}}}.")


def fused_rows(n_problems: int = 2) -> list[dict]:
    """Per problem: y* and three long wrong attempts (distinct answers, so all three are fused)."""
    rows = []
    for p in range(n_problems):
        pid = f"deepmath/{p:04d}"
        texts = {0: (completion("24", "Then (3+1)(2+1)(1+1) = 24."), True, "24")}
        for i, wrong in enumerate(("12", "18", "30"), start=1):
            detail = f"Attempt {i}: I will multiply the exponents themselves. " * (6 + 2 * i)
            texts[i] = (completion(wrong, detail), False, wrong)
        rows += [{"problem_id": pid, "sample_idx": idx, "problem": f"How many positive divisors has 360? ({p})",
                  "response": text, "n_tokens": 50 * (idx + 1), "finish_reason": "stop", "gold": "24",
                  "answer": answer, "correct": correct, "status": "ok", "answer_group": None if correct else answer}
                 for idx, (text, correct, answer) in texts.items()]
    settings = FuseSettings(k_max=4, alpha=parse_alpha("4"), strategy="highdiv", seed=0)
    out, _ = fuse_frame(pd.DataFrame(rows), settings, load_phrases())
    assert all(row["n_errors"] == 3 for row in out)
    return out


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def lengths(example: tds.FusedExample, tokenizer) -> list[int]:
    """Tokens of the example with 0, 1, ... n_errors of its fused errors."""
    template = load_template(TEMPLATE)
    prompt = template.render_prompt(example.user, tokenizer)
    n_prompt = len(tds.encode_prompt(tokenizer, prompt, tds.default_prefix_ids(tokenizer)))
    return [n_prompt + len(tokenizer(example.with_errors(k) + template.suffix(tokenizer),
                                     add_special_tokens=False)["input_ids"]) for k in range(example.n_errors + 1)]


def examples_of(rows, tmp_path) -> list[tds.FusedExample]:
    write_jsonl(rows, tmp_path / "fused.jsonl")
    return tds.load_fused_examples(tmp_path / "fused.jsonl")


def test_over_long_examples_lose_their_last_errors_and_keep_y_star(tokenizer, tmp_path):
    examples = examples_of(fused_rows(), tmp_path)
    sizes = lengths(examples[0], tokenizer)
    assert sizes == sorted(sizes) and sizes[1] < sizes[2] - 1
    max_length = sizes[1] + 1  # room for y* and the first fused error only
    rows, stats = tds.build_training_rows(examples, load_template(TEMPLATE), tokenizer, max_length)
    assert len(rows) == 2 and stats.n_shortened == 2 and stats.errors_removed == 4 and stats.n_truncated == 0
    text = tokenizer.decode(rows[0]["input_ids"])
    full = examples[0].assistant
    first, last = full.index("Attempt 1:"), full.index("Attempt 3:")
    assert "Attempt 1:" in text and "Attempt 2:" not in text and "Attempt 3:" not in text
    assert text.count("<think>") == 1 and text.count("</think>") == 1
    assert "Then (3+1)(2+1)(1+1) = 24." in text and text.rstrip().endswith("The answer is \\boxed{24}.<|im_end|>")
    assert first < last  # the errors removed are the last fused
    # Re-rendered, not cut: exactly the fused text with its first error and that error's phrase.
    prompt_len = sum(label == tds.IGNORE_INDEX for label in rows[0]["labels"])
    suffix = load_template(TEMPLATE).suffix(tokenizer)
    assert rows[0]["input_ids"][prompt_len:] == tokenizer(examples[0].with_errors(1) + suffix,
                                                          add_special_tokens=False)["input_ids"]
    phrase = full[examples[0].error_spans[0][0]:examples[0].error_spans[0][1]].rstrip().rsplit("\n", 1)[1]
    assert phrase in text
    meta = stats.as_dict()
    assert meta["shortened"] == {"fewer_errors": 2, "truncated": 0}
    assert meta["mean_errors_fused"] == 3.0 and meta["mean_errors_trained"] == 1.0


def test_example_whose_correct_trajectory_alone_does_not_fit_is_dropped(tokenizer, tmp_path):
    rows_in = fused_rows(2)
    rows_in[1]["messages"][0]["content"] = "Tell me. " * 3  # a shorter prompt: y* alone fits for this one
    examples = examples_of(rows_in, tmp_path)
    alone = [lengths(example, tokenizer)[0] for example in examples]
    assert alone[1] < alone[0]
    rows, stats = tds.build_training_rows(examples, load_template(TEMPLATE), tokenizer, alone[1])
    assert len(rows) == 1 and stats.dropped_problem_ids == ["deepmath/0000"]
    assert stats.as_dict()["dropped"] == {"prompt_too_long": 0, "correct_too_long": 1}
    assert stats.errors_trained == 0 and stats.as_dict()["mean_errors_trained"] == 0.0
    assert "That makes sense now" not in tokenizer.decode(rows[0]["input_ids"])  # no errors, no phrases


def test_truncate_policy_cuts_the_end_as_before(tokenizer, tmp_path):
    examples = examples_of(fused_rows(1), tmp_path)
    max_length = lengths(examples[0], tokenizer)[1] + 1
    rows, stats = tds.build_training_rows(examples, load_template(TEMPLATE), tokenizer, max_length,
                                          length_policy="truncate")
    assert len(rows[0]["input_ids"]) == max_length and stats.n_truncated == 1 and stats.n_shortened == 0
    assert "The answer is" not in tokenizer.decode(rows[0]["input_ids"])
    assert stats.as_dict()["mean_errors_trained"] == 3.0


def test_fused_record_with_errors_needs_valid_spans(tmp_path):
    row = fused_rows(1)[0]
    for broken, message in (({k: v for k, v in row.items() if k != "error_spans"}, "field 'error_spans' is missing"),
                            ({**row, "error_spans": row["error_spans"][:2]}, "expected a list of 3 ranges"),
                            ({**row, "error_spans": [[5, 2], *row["error_spans"][1:]]}, "not an ordered range")):
        write_jsonl([broken], tmp_path / "bad.jsonl")
        with pytest.raises(tds.InputError, match=rf"bad\.jsonl: record 1 \(problem_id='deepmath/0000'\): .*{message}"):
            tds.load_fused_examples(tmp_path / "bad.jsonl")


def test_train_meta_counts_shortened_and_dropped(tiny_model_dir, tokenizer, tmp_path):
    rows_in = fused_rows(3)
    rows_in[2]["messages"][0]["content"] = "Tell me. " * 3  # problem 2 keeps one error
    max_length = lengths(examples_of(rows_in, tmp_path)[2], tokenizer)[1] + 1
    question = rows_in[0]["messages"][0]["content"]
    while lengths(examples_of(rows_in, tmp_path)[0], tokenizer)[0] <= max_length:  # problem 0: y* does not fit
        rows_in[0]["messages"][0]["content"] += " Explain every step."
    examples = examples_of(rows_in, tmp_path)
    assert len(examples[0].user) > len(question) and lengths(examples[0], tokenizer)[0] < max_length + 40
    argv = ["--model", str(tiny_model_dir), "--dataset", str(tmp_path / "fused.jsonl"), "--template", TEMPLATE,
            "--output-dir", str(tmp_path / "out"), "--precision", "fp32", "--seed", "0", "--epochs", "1",
            "--learning-rate", "1e-3", "--per-device-batch-size", "1", "--grad-accum", "1", "--no-packing",
            "--max-length", str(max_length), "--no-gradient-checkpointing", "--max-steps", "1"]
    parser = argparse.ArgumentParser()
    train.register(parser.add_subparsers(dest="command"))
    meta = train.run_training(train.TrainJob.from_args(parser.parse_args(["train", *argv])))
    saved = json.loads((tmp_path / "out" / "final" / "train_meta.json").read_text())["dataset"]
    assert saved == json.loads(json.dumps(meta["dataset"]))
    fits = [[k for k, size in enumerate(lengths(e, tokenizer)) if size <= max_length] for e in examples]
    kept = [max(k) for k in fits if k]
    assert fits[0] == [] and fits[1] == [0] and fits[2] == [0, 1] and saved["length_policy"] == "drop_errors"
    assert saved["n_used"] == len(kept) and saved["dropped"] == {"prompt_too_long": 0,
                                                                 "correct_too_long": fits.count([])}
    assert saved["shortened"] == {"fewer_errors": len(kept), "truncated": 0}
    assert saved["errors_removed"] == sum(3 - k for k in kept)
    assert saved["mean_errors_trained"] == pytest.approx(sum(kept) / len(kept)) and saved["mean_errors_fused"] == 3.0
