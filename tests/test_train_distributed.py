"""Multi-process training for real on CPU: the launch path of ``training.num_gpus > 1``
(``trajfusion train --num-gpus 2`` relaunching itself through ``accelerate launch``, gloo
between the two processes) and DeepSpeed ZeRO-1 through ``config/deepspeed/zero1.json``.

Measured on 2026-12-03 (tiny Llama, 8 examples x 2 epochs, lr 1e-3): two processes with one
example each and one process with two examples per step end with weights whose largest
difference is 6e-8 (plain) and 1.2e-7 (ZeRO-1), against a largest update of 8e-3 from the
initial weights; the tolerance below is 1e-6, well under one update.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_train import require_deepspeed, write_fused

REPO = Path(__file__).resolve().parents[1]
ZERO1 = REPO / "config" / "deepspeed" / "zero1.json"
WEIGHT_TOLERANCE = 1e-6
TIED_HEAD, TIED_EMBEDDING = "lm_head.weight", "model.embed_tokens.weight"
# One optimizer step sees 2 examples either way: 2 processes x 1, or 1 process x 2.
RUN = ["--template", "qwen25_math", "--precision", "fp32", "--seed", "0", "--no-gradient-checkpointing",
       "--logging-steps", "1", "--epochs", "2", "--learning-rate", "1e-3", "--lr-scheduler", "constant",
       "--grad-accum", "1", "--max-length", "128", "--no-packing", "--save-steps", "1", "--checkpoints", "4"]
TWO_PROCESSES = ["--per-device-batch-size", "1", "--num-gpus", "2"]
ONE_PROCESS = ["--per-device-batch-size", "2", "--num-gpus", "1"]


def train_command(model: Path, dataset: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "trajfusion.cli", "train", "--model", str(model), "--dataset", str(dataset),
            "--output-dir", str(out), *RUN, *extra]


def train_env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def run_train(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, env=train_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((Path(cmd[cmd.index("--output-dir") + 1]) / "final" / "train_meta.json").read_text())


def kill_after_checkpoint(cmd: list[str], out: Path, step: int) -> None:
    """Start ``cmd`` in its own process group; SIGKILL the launcher and every worker once the
    trainer checkpoint of ``step`` is complete."""
    log = out.with_name(f"{out.name}.killed.log")  # a file, not a pipe nobody reads while it fills
    with log.open("w") as stderr:
        proc = subprocess.Popen(cmd, env=train_env(), stdout=subprocess.DEVNULL, stderr=stderr,
                                start_new_session=True)
    marker = out / "trainer" / f"checkpoint-{step}" / "trainer_state.json"
    deadline = time.monotonic() + 600
    while not marker.exists():
        assert proc.poll() is None, f"the run ended before checkpoint-{step}: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "no checkpoint within 600 s"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def max_weight_difference(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    left, right = (untie(load_file(d / "model.safetensors")) for d in (a, b))
    assert left.keys() == right.keys()
    return max(float((left[k] - right[k]).abs().max()) for k in left)


def untie(weights: dict) -> dict:
    """The weights without a tied LM head: DeepSpeed's save writes ``lm_head.weight`` even when
    it is the embedding matrix (the tiny model ties them), the plain Trainer's does not."""
    head = weights.pop(TIED_HEAD, None)
    if head is not None:
        assert head.equal(weights[TIED_EMBEDDING]), "lm_head.weight is not the tied embedding"
    return weights


@pytest.fixture(scope="module")
def fused8(tmp_path_factory):
    return write_fused(tmp_path_factory.mktemp("data") / "fused8.jsonl", 8)


@pytest.fixture(scope="module")
def one_process(tiny_model_dir, fused8, tmp_path_factory):
    out = tmp_path_factory.mktemp("one")
    return out, run_train(train_command(tiny_model_dir, fused8, out, *ONE_PROCESS))


def check_matches_one_process(out: Path, meta: dict, one_process) -> None:
    one_out, one_meta = one_process
    assert meta["world_size"] == 2 and one_meta["world_size"] == 1
    assert meta["global_batch_size"] == one_meta["global_batch_size"] == 2
    # Examples counted over both ranks: 8 examples x 2 epochs, ckpt-4 after 4 examples (step 2).
    assert meta["progress"]["samples_seen"] == one_meta["progress"]["samples_seen"] == 16
    assert meta["progress"]["tokens_seen"] == one_meta["progress"]["tokens_seen"]
    assert meta["checkpoints"]["ckpt-4"]["examples_seen"] == 4
    assert meta["checkpoints"]["ckpt-4"]["global_step"] == 2
    assert meta["progress"]["global_step"] == one_meta["progress"]["global_step"] == 8
    # Written once, by rank 0: no temporary folders left by the other rank.
    assert sorted(p.name for p in out.iterdir()) == ["ckpt-4", "final", "trainer"]
    for name in ("final", "ckpt-4"):
        assert max_weight_difference(out / name, one_out / name) <= WEIGHT_TOLERANCE, name
    assert max_weight_difference(out / "final", out / "ckpt-4") > 100 * WEIGHT_TOLERANCE


def kill_and_resume(model: Path, dataset: Path, out: Path, *extra: str) -> dict:
    cmd = train_command(model, dataset, out, *TWO_PROCESSES, *extra)
    kill_after_checkpoint(cmd, out, step=3)
    assert not (out / "final").exists()
    meta = run_train(cmd)
    assert meta["resume"]["resumed"] is True and meta["resume"]["from_step"] >= 3
    return meta


@pytest.mark.slow
def test_two_processes_train_like_one_with_the_same_global_batch(tiny_model_dir, fused8, one_process, tmp_path):
    out = tmp_path / "two"
    meta = run_train(train_command(tiny_model_dir, fused8, out, *TWO_PROCESSES))
    check_matches_one_process(out, meta, one_process)


@pytest.mark.slow
def test_two_process_run_killed_with_sigkill_resumes(tiny_model_dir, fused8, one_process, tmp_path):
    out = tmp_path / "killed"
    meta = kill_and_resume(tiny_model_dir, fused8, out)
    check_matches_one_process(out, meta, one_process)


@pytest.mark.slow
def test_deepspeed_zero1_two_processes_checkpoint_and_resume(tiny_model_dir, fused8, one_process, tmp_path):
    require_deepspeed()
    out = tmp_path / "zero1"
    meta = kill_and_resume(tiny_model_dir, fused8, out, "--deepspeed", str(ZERO1))
    assert meta["deepspeed"] == str(ZERO1)
    # A DeepSpeed engine checkpoint (ZeRO optimizer shards per rank), not a plain Trainer one.
    checkpoint = out / "trainer" / "checkpoint-8"
    assert (checkpoint / "latest").read_text().strip() == "global_step8"
    assert sorted(p.name for p in (checkpoint / "global_step8").glob("*optim_states.pt")) == [
        "zero_pp_rank_0_mp_rank_00_optim_states.pt", "zero_pp_rank_1_mp_rank_00_optim_states.pt"]
    check_matches_one_process(out, meta, one_process)
