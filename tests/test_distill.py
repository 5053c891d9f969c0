"""``trajfusion distill`` end to end on CPU: real TRL DistillationTrainer steps of each method,
the tiny model as student and a perturbed copy of it as teacher, on a fixed batch."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.test_distill_vocab import other_tokenizer_dir
from trajfusion.cli import EXIT_INPUT_ERROR, main
from trajfusion.contracts import PROBLEMS, write
from trajfusion.distill.losses import DIAGNOSTICS
from trajfusion.distill.trainer import DIAGNOSTICS_NAME, FINAL_DIR, META_NAME, TRAINER_DIR

STEPS = 8


@pytest.fixture(scope="module")
def teacher_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model with seeded Gaussian noise (sd 0.05) on every weight, the same tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.05)
    out = tmp_path_factory.mktemp("teacher")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def padded_teacher_dir(teacher_dir, tmp_path_factory):
    """The teacher with 64 padding rows in its embedding matrix."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(teacher_dir)
    model.resize_token_embeddings(model.config.vocab_size + 64, mean_resizing=False)
    out = tmp_path_factory.mktemp("padded_teacher")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(teacher_dir).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    problems = pd.DataFrame({"problem_id": ["toy/1", "toy/2"], "problem": ["What is 1+1?", "What is 2+3?"],
                             "answer": ["2", "5"], "source": ["toy", "toy"]}).astype("string")
    for column in ("level", "subject", "answer_type", "flags"):
        problems[column] = pd.array([None, None], dtype="string")
    problems["year"] = pd.array([None, None], dtype="Int64")
    path = tmp_path_factory.mktemp("pool") / "pool.parquet"
    write(problems, path, PROBLEMS)
    return path


def distill(student, teacher, pool, out, method: str, steps: int = STEPS) -> int:
    return main(["distill", "--student", str(student), "--teacher", str(teacher), "--pool", str(pool),
                 "--output-dir", str(out), "--method", method, "--template", "chat", "--seed", "0",
                 "--max-steps", str(steps), "--per-device-batch-size", "2", "--max-completion-length", "16",
                 "--learning-rate", "3e-3", "--repeat-batch", "--window", "4"])


def records(out) -> list[dict]:
    return [json.loads(line) for line in (out / DIAGNOSTICS_NAME).read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tiny_model_dir, teacher_dir, pool, tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    for method in ("opd", "opd_filter", "topd"):
        assert distill(tiny_model_dir, teacher_dir, pool, root / method, method) == 0
    return root


def test_opd_loss_falls_on_a_fixed_batch(runs):
    logged = records(runs / "opd")
    assert [r["step"] for r in logged] == list(range(1, STEPS + 1))
    loss = [r["loss"] for r in logged]
    assert all(later < earlier for earlier, later in zip(loss, loss[1:], strict=False)), loss
    assert loss[-1] < 0.6 * loss[0], loss
    for record in logged:  # opd weighs every token 1: its loss is the mean divergence
        assert record["loss"] == pytest.approx(record["mean_divergence"], rel=1e-5)
        assert record["completion_tokens"] == 32.0  # 2 completions x 16 tokens, the same batch each step


def test_every_method_writes_a_model_and_its_diagnostics(runs):
    for method in ("opd", "opd_filter", "topd"):
        out = runs / method
        assert (out / FINAL_DIR / "model.safetensors").is_file() and (out / FINAL_DIR / "tokenizer.json").is_file()
        meta = json.loads((out / FINAL_DIR / META_NAME).read_text())
        assert meta["settings"]["method"] == method and meta["progress"]["global_step"] == STEPS
        assert meta["shared_vocab_size"] == 49152
        logged = records(out)
        assert len(logged) == STEPS and all(set(DIAGNOSTICS) <= set(r) for r in logged)
        assert all(0.0 <= r["high_loss_low_future_share"] <= 1.0 for r in logged)
        # the live trace written during training holds the same records
        live = [json.loads(line) for line in (out / TRAINER_DIR / DIAGNOSTICS_NAME).read_text().splitlines()]
        assert live == logged
        assert logged[-1]["loss"] < logged[0]["loss"]


def test_opd_filter_leaves_tokens_out(runs):
    logged = records(runs / "opd_filter")
    # the loss sums the kept tokens over all completion tokens: at most the mean divergence
    assert all(r["loss"] <= r["mean_divergence"] + 1e-7 for r in logged)
    filtering = [r for r in logged if r["high_loss_low_future_share"] > 0]
    assert filtering and all(r["loss"] < r["mean_divergence"] for r in filtering)


def test_same_settings_give_identical_diagnostics(runs, tiny_model_dir, teacher_dir, pool, tmp_path):
    assert distill(tiny_model_dir, teacher_dir, pool, tmp_path / "again", "topd") == 0
    assert (tmp_path / "again" / DIAGNOSTICS_NAME).read_bytes() == (runs / "topd" / DIAGNOSTICS_NAME).read_bytes()
    weights = [(root / FINAL_DIR / "model.safetensors").read_bytes() for root in (tmp_path / "again", runs / "topd")]
    assert weights[0] == weights[1]


def test_padded_teacher_embeddings_use_the_shared_part(tiny_model_dir, padded_teacher_dir, pool, tmp_path, runs):
    assert distill(tiny_model_dir, padded_teacher_dir, pool, tmp_path / "padded", "opd", steps=2) == 0
    # the padding rows change nothing: the same divergences as with the unpadded teacher
    padded, plain = records(tmp_path / "padded"), records(runs / "opd")[:2]
    assert [r["loss"] for r in padded] == pytest.approx([r["loss"] for r in plain], rel=1e-5)


def test_a_teacher_with_softcapped_logits_is_refused(teacher_dir, tiny_model_dir, pool, tmp_path, capsys):
    import shutil

    capped = tmp_path / "capped"
    shutil.copytree(teacher_dir, capped)
    config = json.loads((capped / "config.json").read_text())
    (capped / "config.json").write_text(json.dumps({**config, "logit_scale": 0.5}))
    assert distill(tiny_model_dir, capped, pool, tmp_path / "out", "opd") == EXIT_INPUT_ERROR
    assert "transforms its logits (logit_scale)" in capsys.readouterr().err


def test_a_teacher_with_another_tokenizer_is_refused(tiny_model_dir, pool, tmp_path, capsys):
    other = other_tokenizer_dir(tmp_path / "other")
    assert distill(tiny_model_dir, other, pool, tmp_path / "out", "opd") == EXIT_INPUT_ERROR
    message = capsys.readouterr().err
    assert "must share a tokenizer" in message and str(other) in message and str(tiny_model_dir) in message
    assert not (tmp_path / "out").exists()
