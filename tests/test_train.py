"""Tests of the SFT training stage (trajfusion.train.*)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trajfusion import train
from trajfusion.io import InputError
from trajfusion.templates import default_prefix_ids, encode_prompt, load_template
from trajfusion.train import dataset as tds
from trajfusion.train.launch import launch_command, load_deepspeed_config

REPO = Path(__file__).resolve().parents[1]
ZERO1 = REPO / "config" / "deepspeed" / "zero1.json"


# -- fixtures (tiny_model_dir, a tiny random Llama with the SmolLM2 tokenizer, is in conftest.py) --

@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The test machine's cores are shared; one thread avoids oversubscription stalls."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def require_deepspeed() -> None:
    """Skip without deepspeed, except in CI (TRAJFUSION_REQUIRE_DEEPSPEED=1), where it must be installed."""
    if os.environ.get("TRAJFUSION_REQUIRE_DEEPSPEED") == "1":
        import deepspeed  # noqa: F401
    else:
        pytest.importorskip("deepspeed")


def fused_record(i: int, assistant: str | None = None) -> dict:
    answer = assistant if assistant is not None else (
        f"Add {i} and {i}." + " Let me check again." * (i % 3) + f" The answer is \\boxed{{{2 * i}}}.")
    return {"problem_id": f"toy/{i}", "messages": [{"role": "user", "content": f"What is {i} + {i}?"},
                                                   {"role": "assistant", "content": answer}],
            "n_errors": 0, "error_indices": [], "correct_index": 0, "alpha": 1.0, "k_max": 4,
            "strategy": "toy", "seed": 0}


def write_fused(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps(fused_record(i)) + "\n" for i in range(n)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fused4(tmp_path_factory):
    return write_fused(tmp_path_factory.mktemp("data") / "fused4.jsonl", 4)


@pytest.fixture(scope="module")
def fused8(tmp_path_factory):
    return write_fused(tmp_path_factory.mktemp("data") / "fused8.jsonl", 8)


def parse_train(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    train.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["train", *argv])


def job_of(argv: list[str]) -> train.TrainJob:
    return train.TrainJob.from_args(parse_train(argv))


def train_argv(model, dataset, output_dir, *extra) -> list[str]:
    return ["--model", str(model), "--dataset", str(dataset), "--template", "qwen25_math",
            "--output-dir", str(output_dir), "--precision", "fp32", "--seed", "0",
            "--no-gradient-checkpointing", "--logging-steps", "1", *extra]


# The overfitting run (4 examples x 5 epochs, one example per step) shared by the loss,
# checkpoint and resume tests.
REFERENCE = ["--epochs", "5", "--learning-rate", "1e-2", "--lr-scheduler", "constant",
             "--per-device-batch-size", "1", "--grad-accum", "1", "--max-length", "128", "--no-packing",
             "--save-steps", "3", "--checkpoints", "2,3,100"]


@pytest.fixture(scope="module")
def reference_run(tiny_model_dir, fused4, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    meta = train.run_training(job_of(train_argv(tiny_model_dir, fused4, out, *REFERENCE)))
    return out, meta


# -- dataset validation -----------------------------------------------------------------

@pytest.mark.parametrize("bad, field", [
    ({"problem_id": "x"}, "'messages' is a required property"),
    (fused_record(1, assistant="   "), "field 'messages[1].content'"),
    ({**fused_record(1), "messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]},
     "field 'messages[1].role' 'assistant' was expected"),
    ({**fused_record(1), "problem_id": 7}, "field 'problem_id' 7 is not of type 'string'"),
    (fused_record(0), "duplicate key (problem_id), also record 1"),
])
def test_bad_fused_record_names_file_record_and_field(tmp_path, bad, field):
    path = tmp_path / "bad.jsonl"
    # A blank line before the bad record: it is still the file's record 3 (blank lines hold none).
    path.write_text(json.dumps(fused_record(0)) + "\n" + json.dumps(fused_record(1)) + "\n\n"
                    + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        tds.load_fused_examples(path)
    assert f"{path}: record 3 (problem_id={bad.get('problem_id')!r}): " in str(err.value)
    assert field in str(err.value)


def test_bad_dataset_fails_through_cli_before_loading_a_model(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(fused_record(0)) + "\n" + json.dumps(fused_record(1, assistant="")) + "\n")
    args = parse_train(train_argv("no-such-model", path, tmp_path / "out", *REFERENCE))
    with pytest.raises(InputError,
                       match=r"bad\.jsonl: record 2 \(problem_id='toy/1'\): field 'messages\[1\]\.content'"):
        args.func(args)


@pytest.mark.parametrize("flag, value, message", [
    ("--checkpoints", "8,x", "--checkpoints: 'x' is not a positive integer example count"),
    ("--rope-scaling", "{yarn", "--rope-scaling: malformed JSON"),
    ("--warmup-ratio", "1.5", r"--warmup-ratio: must be in \[0, 1\), got 1.5"),
])
def test_bad_settings_are_input_errors(fused4, tmp_path, flag, value, message):
    with pytest.raises(InputError, match=message):
        job_of(train_argv("unused", fused4, tmp_path, *REFERENCE, flag, value))


# -- prompt/completion encoding -----------------------------------------------------------

def test_prompt_gets_one_bos_whether_or_not_the_template_has_it(tiny_model_dir):
    from transformers import AutoTokenizer

    # SmolLM2's BOS is <|im_start|>; this tokenizer is told to add it like Llama's do.
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir, add_bos_token=True)
    bos = tokenizer.bos_token_id
    assert default_prefix_ids(tokenizer) == [bos]
    example = tds.FusedExample(problem_id="p", user="What is 1+1?", assistant="2")
    with_bos = tds.to_prompt_completion(example, load_template("qwen25_math"), tokenizer)[0]
    without_bos = tds.to_prompt_completion(example, load_template("deepseek_math"), tokenizer)[0]
    ids = encode_prompt(tokenizer, with_bos)
    assert ids[0] == bos and ids[1] != bos  # template's own BOS kept, none added
    ids = encode_prompt(tokenizer, without_bos)
    assert ids[0] == bos and tokenizer.decode(ids[1:]) == without_bos  # tokenizer's BOS added once
    plain = AutoTokenizer.from_pretrained(tiny_model_dir)  # adds nothing by default
    assert encode_prompt(plain, without_bos) == plain(without_bos, add_special_tokens=False)["input_ids"]


def test_text_templates_need_no_chat_template(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = None  # a base model
    example = tds.FusedExample(problem_id="p", user="Q?", assistant="A.")
    prompt, completion = tds.to_prompt_completion(example, load_template("deepseek_math"), tokenizer)
    assert prompt.startswith("User: Q?") and completion == "A." + tokenizer.eos_token
    with pytest.raises(InputError, match="chat template"):
        tds.to_prompt_completion(example, load_template("chat"), tokenizer)


@pytest.mark.parametrize("packing", [False, True])
def test_collated_labels_mask_the_prompt_and_train_the_suffix(tiny_model_dir, fused8, tmp_path, packing):
    # Examples are 55-70 tokens: two fit in a packed row.
    extra = ["--epochs", "1", "--learning-rate", "1e-3", "--per-device-batch-size", "4", "--grad-accum", "1",
             "--max-length", "160", "--packing" if packing else "--no-packing"]
    run = train.setup_training(job_of(train_argv(tiny_model_dir, fused8, tmp_path, *extra)))
    tokenizer, trainer = run.trainer.processing_class, run.trainer
    template = load_template("qwen25_math")
    expected = {}
    for example in tds.load_fused_examples(fused8):
        prompt, completion = tds.to_prompt_completion(example, template, tokenizer)
        prompt_ids = encode_prompt(tokenizer, prompt)
        completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        expected[tuple(prompt_ids + completion_ids)] = len(prompt_ids)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(min(4, len(trainer.train_dataset)))])
    segments = split_batch(batch)
    assert segments and all(tuple(ids) in expected for ids, _ in segments)
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for ids, labels in segments:
        prompt_len = expected[tuple(ids)]
        assert all(label == -100 for label in labels[:prompt_len])
        assert labels[prompt_len:] == ids[prompt_len:]
        assert ids[-1] == end_of_turn and labels[-1] == end_of_turn  # the end-of-turn token is trained
    if packing:
        assert "attention_mask" not in batch and len(segments) > 4  # several examples per packed row


def split_batch(batch) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) of every example in a collated batch, padded or padding-free."""
    if "attention_mask" in batch:
        return [(ids[mask.bool()].tolist(), labels[mask.bool()].tolist())
                for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"])]
    starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist() + [batch["input_ids"].shape[1]]
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    return [(ids[a:b], labels[a:b]) for a, b in zip(starts, starts[1:])]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_examples_do_not_attend_to_each_other_on_cpu(tiny_model_dir, fused8, tmp_path, attn):
    import torch

    extra = ["--epochs", "1", "--learning-rate", "1e-3", "--per-device-batch-size", "2", "--grad-accum", "1",
             "--max-length", "160", "--packing", "--attn-implementation", attn]
    run = train.setup_training(job_of(train_argv(tiny_model_dir, fused8, tmp_path, *extra)))
    trainer = run.trainer
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    model = trainer.model.eval()
    starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist() + [batch["input_ids"].shape[1]]
    assert len(starts) > 3
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        for a, b in zip(starts, starts[1:]):
            alone = model(input_ids=batch["input_ids"][:, a:b], use_cache=False).logits[0]
            torch.testing.assert_close(packed[a:b], alone, atol=1e-5, rtol=1e-4)


# -- training, checkpoints, resume -----------------------------------------------------------

def test_overfitting_lowers_the_loss(reference_run):
    out, meta = reference_run
    losses = [entry["loss"] for entry in json.loads(
        (out / "trainer" / "checkpoint-20" / "trainer_state.json").read_text())["log_history"] if "loss" in entry]
    assert len(losses) == 20
    assert losses[-1] < 0.5 * losses[0]
    assert meta["final_loss"] == pytest.approx(losses[-1])
    assert meta["progress"]["samples_seen"] == 20 and meta["global_batch_size"] == 1


def test_checkpoints_at_example_counts(reference_run):
    out, meta = reference_run
    assert meta["checkpoints"] == {
        "ckpt-2": {"target_examples": 2, "examples_seen": 2, "global_step": 2, "epoch": 0.5, "reason": "reached"},
        "ckpt-3": {"target_examples": 3, "examples_seen": 3, "global_step": 3, "epoch": 0.75, "reason": "reached"},
        # The dataset has only 4 examples: saved at the end of the first epoch.
        "ckpt-100": {"target_examples": 100, "examples_seen": 4, "global_step": 4, "epoch": 1.0,
                     "reason": "end_of_epoch_1"},
    }
    weights = {}
    for name in ("ckpt-2", "ckpt-3", "ckpt-100", "final"):
        for required in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"):
            assert (out / name / required).is_file(), (name, required)
        weights[name] = (out / name / "model.safetensors").read_bytes()
    assert len(set(weights.values())) == 4  # four different points in training
    saved_meta = json.loads((out / "final" / "train_meta.json").read_text())
    assert saved_meta["checkpoints"] == meta["checkpoints"]
    assert saved_meta["dataset"]["n_used"] == 4 and saved_meta["resume"]["resumed"] is False


KILL_SCRIPT = textwrap.dedent("""
    import argparse, os, signal, sys
    import torch
    from transformers import TrainerCallback
    from trajfusion import train

    class KillAfter(TrainerCallback):
        def __init__(self, step):
            self.step = step
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step >= self.step:  # the trainer checkpoint of this step is on disk
                os.kill(os.getpid(), signal.SIGKILL)

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser()
    train.register(parser.add_subparsers())
    job = train.TrainJob.from_args(parser.parse_args(["train", *sys.argv[2:]]))
    train.run_training(job, callbacks=[KillAfter(int(sys.argv[1]))])
""")


def test_killed_run_resumes_from_its_last_checkpoint(reference_run, tiny_model_dir, fused4, tmp_path):
    ref_out, _ = reference_run
    out = tmp_path / "killed"
    argv = train_argv(tiny_model_dir, fused4, out, *REFERENCE)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, "6", *argv], env=env, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert not (out / "final").exists()
    assert (out / "trainer" / "checkpoint-6").is_dir() and (out / "ckpt-3").is_dir()
    # A workflow manager deletes the declared outputs of a failed job; an untouched one stays as it is.
    shutil.rmtree(out / "ckpt-2")
    kept_inode = (out / "ckpt-3" / "model.safetensors").stat().st_ino

    meta = train.run_training(job_of(argv))

    assert meta["resume"] == {"resumed": True, "from_step": 6, "from_checkpoint": "checkpoint-6"}
    assert meta["progress"]["samples_seen"] == 20 and meta["progress"]["global_step"] == 20
    assert meta["timing"]["tokens_this_run"] < meta["progress"]["tokens_seen"]  # did not start at 0
    assert (out / "ckpt-3" / "model.safetensors").stat().st_ino == kept_inode
    for name in ("ckpt-2", "ckpt-3", "ckpt-100", "final"):
        assert (out / name / "model.safetensors").read_bytes() == \
            (ref_out / name / "model.safetensors").read_bytes(), name


def test_resume_refuses_checkpoints_of_different_settings(tmp_path):
    a = train.run_fingerprint({"learning_rate": 1e-5, "seed": 0}, "abc")
    b = train.run_fingerprint({"learning_rate": 2e-5, "seed": 0}, "abc")
    train.check_resume_settings(tmp_path, a)
    train.check_resume_settings(tmp_path, a)
    with pytest.raises(InputError, match="learning_rate"):
        train.check_resume_settings(tmp_path, b)


def test_packing_counts_examples_not_rows_and_carries_yarn(tiny_model_dir, fused8, tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM

    yarn = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048}
    extra = ["--epochs", "2", "--learning-rate", "1e-3", "--per-device-batch-size", "1", "--grad-accum", "1",
             "--max-length", "128", "--packing", "--save-steps", "100", "--checkpoints", "3,1000",
             "--rope-scaling", json.dumps(yarn)]
    meta = train.run_training(job_of(train_argv(tiny_model_dir, fused8, tmp_path, *extra)))
    progress = meta["progress"]
    assert progress["train_rows"] < 8  # several examples per packed row ...
    assert progress["samples_seen"] == 16  # ... yet every example of both epochs is counted once
    assert progress["packing_efficiency"] == 1.0 and 0 < progress["packed_row_fill"] <= 1
    ckpt3 = meta["checkpoints"]["ckpt-3"]
    assert ckpt3["reason"] == "reached" and 3 <= ckpt3["examples_seen"] < 8
    assert meta["checkpoints"]["ckpt-1000"]["reason"] == "end_of_epoch_1"
    assert meta["checkpoints"]["ckpt-1000"]["examples_seen"] == 8
    for name in ("final", "ckpt-3"):
        config = AutoConfig.from_pretrained(tmp_path / name)
        assert {k: config.rope_parameters[k] for k in yarn} == yarn
        assert config.max_position_embeddings == 8192
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "final")
    assert model.model.rotary_emb.rope_type == "yarn"


def test_dequantized_gguf_model_config_is_trainable(tiny_model_dir, tmp_path):
    model_dir = tmp_path / "from_gguf"
    shutil.copytree(tiny_model_dir, model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "gguf", "gguf_file": "x.gguf", "dequantize": False}
    (model_dir / "config.json").write_text(json.dumps(config))
    model = train.load_model(str(model_dir), None, 128, "sdpa")
    assert getattr(model, "hf_quantizer", None) is None
    assert "quantization_config" not in model.config.to_dict()


def test_max_length_beyond_the_model_window_needs_rope_scaling(tiny_model_dir):
    with pytest.raises(InputError, match="max_position_embeddings"):
        train.load_model(str(tiny_model_dir), None, 4096, "sdpa")


def test_padding_is_counted_without_packing(tiny_model_dir, fused8, tmp_path):
    from trajfusion.train.progress import batch_counts

    extra = ["--epochs", "1", "--learning-rate", "1e-3", "--per-device-batch-size", "4", "--grad-accum", "1",
             "--max-length", "96", "--no-packing"]
    trainer = train.setup_training(job_of(train_argv(tiny_model_dir, fused8, tmp_path, *extra))).trainer
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    examples, real, fed = batch_counts(batch)
    lengths = [len(trainer.train_dataset[i]["input_ids"]) for i in range(4)]
    assert (examples, real, fed) == (4, sum(lengths), 4 * max(lengths)) and real < fed


# -- DeepSpeed and multi-GPU launch ------------------------------------------------------------

def test_zero1_config_has_what_deepspeed_needs():
    config = load_deepspeed_config(ZERO1)
    assert config["zero_optimization"]["stage"] == 1
    assert config["bf16"]["enabled"] == "auto"
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size"):
        assert config[key] == "auto"
    assert "optimizer" not in config and "scheduler" not in config  # the Trainer's AdamW and schedule


def test_zero1_config_is_filled_from_the_trainer_arguments():
    require_deepspeed()  # transformers' DeepSpeed config class insists on the package
    from types import SimpleNamespace

    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    hf_args = SimpleNamespace(world_size=8, per_device_train_batch_size=2, gradient_accumulation_steps=4,
                              max_grad_norm=1.0, learning_rate=5e-5, adam_beta1=0.9, adam_beta2=0.999,
                              adam_epsilon=1e-8, weight_decay=0.0, save_on_each_node=False, fp16=False,
                              fp16_full_eval=False, bf16=True, bf16_full_eval=False)
    filled = HfTrainerDeepSpeedConfig(str(ZERO1))
    filled.trainer_config_process(hf_args)
    assert filled.mismatches == []
    assert filled.config["train_batch_size"] == 64 and filled.config["train_micro_batch_size_per_gpu"] == 2
    assert filled.config["gradient_accumulation_steps"] == 4 and filled.config["bf16"]["enabled"] is True


def test_deepspeed_config_errors(tmp_path):
    bad = tmp_path / "ds.json"
    bad.write_text(json.dumps({"zero_optimization": {"stage": 1}, "train_micro_batch_size_per_gpu": 4}))
    with pytest.raises(InputError, match="train_micro_batch_size_per_gpu"):
        load_deepspeed_config(bad)
    bad.write_text("{")
    with pytest.raises(InputError, match="malformed JSON"):
        load_deepspeed_config(bad)


def test_launch_command():
    cmd = launch_command(["--model", "m", "--seed", "0"], num_gpus=8, main_process_port=29600)
    assert cmd == [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "8",
                   "--num_machines", "1", "--machine_rank", "0", "--main_process_port", "29600",
                   "--mixed_precision", "no", "--dynamo_backend", "no", "--multi_gpu",
                   "-m", "trajfusion.cli", "train", "--model", "m", "--seed", "0"]
    two_nodes = launch_command(["--seed", "0"], num_gpus=4, num_nodes=2, machine_rank=1, main_process_ip="10.0.0.1")
    assert two_nodes[two_nodes.index("--num_processes") + 1] == "8"
    assert two_nodes[two_nodes.index("--main_process_ip") + 1] == "10.0.0.1"
    assert "--multi_gpu" not in launch_command([], num_gpus=1)
    with pytest.raises(ValueError):
        launch_command([], num_gpus=4, num_nodes=2)


def test_num_gpus_relaunches_through_accelerate(monkeypatch, tmp_path):
    argv = train_argv("m", "d.jsonl", tmp_path, *REFERENCE, "--num-gpus", "4", "--deepspeed", str(ZERO1))
    args = parse_train(argv)
    job = train.TrainJob.from_args(args)
    assert job_of(job.to_argv()) == job  # the relaunched workers parse the same job
    for name in ("LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    calls = []

    def fake_exec(file, cmd, env):
        calls.append(cmd)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execvpe", fake_exec)
    with pytest.raises(SystemExit):
        args.func(args)
    assert calls == [launch_command(job.to_argv(), 4)]


# -- experiment tracking -------------------------------------------------------------------

def test_tensorboard_and_trackio_record_the_loss_offline(tiny_model_dir, fused4, tmp_path):
    """`report_to` through the real trackers, with no network: tensorboard's event files and
    trackio's local database both hold the logged training loss, step by step."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    env = {**os.environ, "TRACKIO_DIR": str(tmp_path / "trackio"), "HF_HUB_OFFLINE": "1"}
    runs = {}
    for tracker in ("tensorboard", "trackio"):
        out = tmp_path / tracker
        argv = train_argv(tiny_model_dir, fused4, out, "--epochs", "1", "--per-device-batch-size", "1",
                          "--grad-accum", "1", "--learning-rate", "1e-3",
                          "--max-length", "128", "--no-packing", "--report-to", tracker)
        result = subprocess.run([sys.executable, "-m", "trajfusion.cli", "train", *argv], env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        runs[tracker] = out
    (events_dir,) = {p.parent for p in (runs["tensorboard"] / "trainer" / "runs").rglob("events.out.tfevents.*")}
    events = EventAccumulator(str(events_dir))
    events.Reload()
    assert len(events.Scalars("train/loss")) == 4  # 4 examples, one per step, logged every step

    check = (f"import json; from trackio.sqlite_storage import SQLiteStorage as S; "
             f"print(json.dumps(S.get_logs('trajfusion', {str(runs['trackio'])!r})))")
    logs = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=120)
    assert logs.returncode == 0, logs.stderr[-2000:]
    losses = [entry for entry in json.loads(logs.stdout) if "train/loss" in entry]
    assert len(losses) == 4 and all(entry["train/loss"] > 0 for entry in losses)
