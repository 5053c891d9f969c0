"""Fault injection (issue 9): jobs killed mid-run and writes that fail.

Kills (SIGKILL). After each, no partial file passes for output, finished work is kept, and
the rerun gives the bytes of an uninterrupted run:

- a sampling shard: tests/test_sample.py::test_killed_job_leaves_no_output_and_rerun_matches
  (the command resumes from the batches in its partial file), and here through Snakemake;
- training: tests/test_train.py::test_killed_run_resumes_from_its_last_checkpoint (the run
  resumes from its last trainer checkpoint; weights equal an uninterrupted run's);
- verification (here): the process group of ``trajfusion verify`` and its worker pool, and
  the main process alone, whose workers must then exit by themselves;
- Snakemake (here): killed with its running training job in the reduced DAG
  (tests/reliability/config.yaml), then rerun with ``--rerun-incomplete``.

A verifier worker that hangs or crashes on one input costs one timeout/error verdict, not
the job: tests/test_verifier.py::test_hung_and_crashed_workers_cost_one_verdict_each,
::test_watchdog_requeues_the_rest_of_a_chunk and ::test_power_tower_times_out_and_the_batch_completes.

Failing writes, for the Parquet, JSONL and JSON writers of trajfusion.io and a training
checkpoint: a file size limit (RLIMIT_FSIZE; Python ignores SIGXFSZ, so the write fails with
EFBIG - works anywhere), a full file system and a read-only one (a small tmpfs, when this
process may mount). Each must exit with code 74 and one line naming the output and the
reason, leave no temporary file, and leave an earlier file at the output path untouched.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
from test_reproducibility import comparable_artifacts, differing, drop_keys

from tests.conftest import REPO, reliability_config, reliability_snakemake_argv, run_reliability_dag
from trajfusion.cli import EXIT_OS_ERROR

CLI = [sys.executable, "-m", "trajfusion.cli"]


def wait_until(condition, process: subprocess.Popen, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the process exited ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"no {what} within {timeout} s")
        time.sleep(0.02)


def survivors(processes: list[psutil.Process], timeout: float = 15.0) -> list[psutil.Process]:
    """Those of ``processes`` still running (zombies count as gone) after up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for process in processes:
            try:
                if process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def process_group(pgid: int) -> list[psutil.Process]:
    group = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid:
                group.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return group


def only_temporary_files(directory: Path, output_name: str) -> bool:
    """No entry of ``directory`` has the output's name; any entry is an atomic writer's temp file."""
    return all(re.fullmatch(rf"\.{re.escape(output_name)}\..*\.tmp", entry.name) for entry in directory.iterdir())


# --------------------------------------------------------------------------- verification killed


def write_slow_samples(path: Path, problems: int = 40, samples: int = 9) -> Path:
    """A merged-samples table that takes the verifier a few seconds: every wrong answer is a
    different irrational expression, so math-verify compares each pair of them."""
    rng = random.Random(0)
    rows = []
    for p in range(problems):
        gold = f"\\frac{{{p + 1}}}{{{p + 2}}}"
        for s in range(samples):
            answer = gold if s == 0 else (f"\\frac{{{rng.randint(1, 30)}}}{{{rng.randint(2, 30)}}}"
                                          f"\\sqrt{{{rng.randint(2, 50)}}} + {s}\\pi")
            rows.append({"problem_id": f"slow/{p:03d}", "sample_idx": s, "gold": gold, "finish_reason": "stop",
                         "response": f"Working for problem {p}. The answer is $\\boxed{{{answer}}}$."})
    pd.DataFrame(rows).to_parquet(path, index=False)
    return path


def verify_argv(samples: Path, output: Path) -> list[str]:
    return ["verify", "--input", str(samples), "--output", str(output), "--workers", "2", "--timeout", "30"]


@pytest.fixture(scope="module")
def slow_samples(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("verify-kill")
    samples = write_slow_samples(root / "samples.parquet")
    reference = root / "reference" / "verified.parquet"
    subprocess.run([*CLI, *verify_argv(samples, reference)], check=True, capture_output=True, timeout=600)
    return {"samples": samples, "reference": reference}


def start_verify_and_wait_for_progress(samples: Path, output: Path, log: Path) -> subprocess.Popen:
    """``trajfusion verify`` in a new process group, returned once it has verified some problems but not all."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as stderr:
        process = subprocess.Popen([*CLI, *verify_argv(samples, output)], stderr=stderr, stdout=subprocess.DEVNULL,
                                   start_new_session=True)

    def some_done() -> bool:
        counts = re.findall(r"(\d+)/(\d+) \[", log.read_text(errors="replace"))
        return bool(counts) and int(counts[-1][0]) >= 18  # two problems of nine samples

    wait_until(some_done, process, "verification progress", timeout=300)
    counts = re.findall(r"(\d+)/(\d+) \[", log.read_text(errors="replace"))[-1]
    assert process.poll() is None and int(counts[0]) < int(counts[1]), \
        "verification finished before it could be killed; give it more work"
    return process


@pytest.mark.slow
def test_killed_verification_leaves_no_output_no_workers_and_rerun_matches(slow_samples, tmp_path):
    output = tmp_path / "out" / "verified.parquet"
    process = start_verify_and_wait_for_progress(slow_samples["samples"], output, tmp_path / "stderr.txt")
    workers = psutil.Process(process.pid).children(recursive=True)
    assert len(workers) >= 3  # multiprocessing's forkserver and two workers (and its resource tracker)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert survivors(workers + process_group(process.pid)) == []
    assert not output.exists() and only_temporary_files(output.parent, output.name)

    subprocess.run([*CLI, *verify_argv(slow_samples["samples"], output)], check=True, capture_output=True, timeout=600)
    assert output.read_bytes() == slow_samples["reference"].read_bytes()
    assert sorted(p.name for p in output.parent.iterdir()) == [output.name]


@pytest.mark.slow
def test_workers_exit_when_only_the_main_verify_process_is_killed(slow_samples, tmp_path):
    output = tmp_path / "out" / "verified.parquet"
    process = start_verify_and_wait_for_progress(slow_samples["samples"], output, tmp_path / "stderr.txt")
    workers = psutil.Process(process.pid).children(recursive=True)
    assert len(workers) >= 3
    os.kill(process.pid, signal.SIGKILL)  # as the OOM killer does: the workers are not signalled
    process.wait()
    assert survivors(workers) == [], "orphaned verification workers"
    assert not output.exists() and only_temporary_files(output.parent, output.name)


# --------------------------------------------------------------------------- Snakemake killed

TRAIN_RUN = "train/tiny/tiny/rel/rel/tf"  # under results/
TRAIN_TARGETS = [f"results/{TRAIN_RUN}/final", f"results/{TRAIN_RUN}/ckpt-2"]
# A resumed run's metadata says it resumed and covers only its own part in these fields;
# final_loss is the trainer's last logged loss, the mean over the steps since the previous
# log, which a resume restarts (logging every 10 steps, trainer checkpoints every 4).
RESUME_FIELDS = ("timing", "resume", "mean_loss_this_run", "final_loss")


def trained_model_files(results: Path) -> dict[str, str]:
    """Digests of the training job's outputs, final/ and ckpt-2/, without resume bookkeeping."""
    normalized = {f"{TRAIN_RUN}/final/train_meta.json": (drop_keys(*RESUME_FIELDS), "resume bookkeeping")}
    return {path: digest for path, digest in comparable_artifacts(results, normalized).items()
            if path.startswith((f"{TRAIN_RUN}/final/", f"{TRAIN_RUN}/ckpt-2/"))}


def copy_upstream(reference: Path, workdir: Path) -> None:
    """Everything the training job needs from the reference run, with Snakemake's records of it."""
    shutil.copytree(reference / ".snakemake", workdir / ".snakemake",
                    ignore=shutil.ignore_patterns("locks", "incomplete", "log"))
    for stage in ("pools", "models", "samples", "verified", "stats", "fused"):
        shutil.copytree(reference / "results" / stage, workdir / "results" / stage)


@pytest.mark.slow
def test_killed_snakemake_reruns_the_incomplete_job_with_the_same_result(reliability_run, snakemake_env, tmp_path):
    reference, configfile = reliability_run
    workdir = tmp_path / "killed"
    copy_upstream(reference, workdir)
    run = workdir / "results" / TRAIN_RUN

    def snakemake_argv(*extra: str) -> list[str]:
        # Only the training job may run (--allowed-rules takes several values: it comes last).
        return reliability_snakemake_argv(workdir, configfile, *extra, "--allowed-rules", "train_rel")

    with open(tmp_path / "snakemake.log", "w") as log:
        process = subprocess.Popen(snakemake_argv(*TRAIN_TARGETS), env=snakemake_env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    # Killed once the job has saved a trainer checkpoint (it resumes from there) and published
    # ckpt-2, one of its two outputs.
    wait_until((run / "trainer" / "checkpoint-4" / "trainer_state.json").exists, process, "trainer checkpoint",
               timeout=600)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (run / "final").exists(), "training finished before it could be killed; give it more steps"
    assert (run / "ckpt-2").exists()
    assert survivors(process_group(process.pid)) == []

    dry_run = subprocess.run(snakemake_argv("-n", *TRAIN_TARGETS), env=snakemake_env, capture_output=True, text=True)
    assert dry_run.returncode != 0
    said = dry_run.stdout + dry_run.stderr
    assert "IncompleteFilesException" in said and TRAIN_TARGETS[1] in said
    for extra in (["--unlock"], ["--rerun-incomplete", *TRAIN_TARGETS]):
        result = subprocess.run(snakemake_argv(*extra), env=snakemake_env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]

    meta = json.loads((run / "final" / "train_meta.json").read_text())
    assert meta["resume"]["resumed"] and meta["resume"]["from_step"] >= 4
    expected, rerun = trained_model_files(reference / "results"), trained_model_files(workdir / "results")
    assert sorted(rerun) == sorted(expected)
    assert {f"{TRAIN_RUN}/final/model.safetensors", f"{TRAIN_RUN}/ckpt-2/model.safetensors"} <= set(expected)
    assert differing(expected, rerun) == []


SHARD = "results/samples/tiny/rel/shard-0.parquet"
# The untrained tiny model never stops early: every batch generates max_new_tokens, and shard 0
# (5 problems in blocks of 1) runs as 5 batches, so it can be killed between them.
SLOW_SAMPLING = {"teachers.tiny.batch_size": 1, "teachers.tiny.max_new_tokens": 64}


@pytest.mark.slow
def test_killed_sampling_job_resumes_through_snakemake(tiny_model_dir, snakemake_env, tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    run_reliability_dag(reference, reliability_config(tiny_model_dir, reference, SLOW_SAMPLING), snakemake_env, SHARD)
    configfile = reliability_config(tiny_model_dir, killed, SLOW_SAMPLING)
    partial = killed / f"{SHARD}.partial.jsonl"
    with open(tmp_path / "snakemake.log", "w") as log:
        process = subprocess.Popen(reliability_snakemake_argv(killed, configfile, SHARD), env=snakemake_env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    wait_until(lambda: partial.exists() and len(partial.read_text().splitlines()) >= 3, process,
               "two completed batches", timeout=600)  # header + 2 batches
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / SHARD).exists(), "sampling finished before it could be killed; give it more work"
    assert survivors(process_group(process.pid)) == []
    for extra in (["--unlock"], ["--rerun-incomplete", SHARD]):
        result = subprocess.run(reliability_snakemake_argv(killed, configfile, *extra), env=snakemake_env,
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    logs = "".join(path.read_text() for path in (killed / "results" / "logs").rglob("*.log"))
    assert re.search(r"resuming with [2-5] completed batch\(es\)", logs), logs[-3000:]
    assert (killed / SHARD).read_bytes() == (reference / SHARD).read_bytes()
    assert not partial.exists()


# --------------------------------------------------------------------------- failing writes

PREVIOUS = b"an earlier output, which a failed rewrite must leave as it is\n"


@pytest.fixture(scope="module")
def verified_table(tmp_path_factory) -> Path:
    """A small verified table: three problems with correct and incorrect trajectories."""
    rows = []
    for p, answers in enumerate((["4", "5", "4", "6"], ["9", "9", "8", "7"], ["2", "3", "2", "2"])):
        gold = answers[0]
        for s, answer in enumerate(answers):
            rows.append({"problem_id": f"toy/{p}", "sample_idx": s, "problem": f"Problem {p}: what is it?",
                         "response": f"Let me think about problem {p} with care. The answer is \\boxed{{{answer}}}.",
                         "n_tokens": 20, "answer": answer, "correct": answer == gold, "status": "ok",
                         "answer_group": None if answer == gold else answer})
    path = tmp_path_factory.mktemp("verified") / "verified.parquet"
    pd.DataFrame(rows).to_parquet(path, index=False)
    return path


# Each writer of trajfusion.io through a command that uses it: (output name, argv).
WRITERS = {
    "parquet": ("benchmark.parquet", lambda verified, output: [
        "prepare-benchmark", "--name", "gsm8k", "--data-dir", str(REPO / "data"), "--limit", "2",
        "--select", "shortest", "--seed", "0", "--output", str(output)]),
    "jsonl": ("fused.jsonl", lambda verified, output: [
        "fuse", "--input", str(verified), "--output", str(output), "--summary", str(output) + ".summary.json",
        "--k-max", "2", "--alpha", "2", "--strategy", "highdiv", "--seed", "0", "--certainty-prob", "0"]),
    "json": ("alpha.json", lambda verified, output: [
        "calibrate-alpha", "--input", str(verified), "--k-max", "2", "--target-errors", "0.5",
        "--strategy", "highdiv", "--output", str(output)]),
}


def limit_file_size(limit: int):
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here ({result.stderr.strip()}); the RLIMIT_FSIZE cases cover failing writes")


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 64 KiB tmpfs, unmounted afterwards."""
    directory = tmp_path / "tmpfs"
    directory.mkdir()
    mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory))
    yield directory
    subprocess.run(["umount", str(directory)], check=True)


def fill(directory: Path) -> None:
    with open(directory / "filler", "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


FAULTS = {"file size limit": "File too large", "disk full": "No space left on device",
          "read-only file system": "Read-only file system"}


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("fault", FAULTS)
def test_a_failed_write_is_one_clear_error_and_leaves_no_trace(request, tmp_path, verified_table, fault, writer):
    directory = tmp_path if fault == "file size limit" else request.getfixturevalue("small_tmpfs")
    name, make_argv = WRITERS[writer]
    output = directory / name
    output.write_bytes(PREVIOUS)
    preexec = None
    if fault == "file size limit":
        preexec = limit_file_size(100)
    elif fault == "disk full":
        fill(directory)
    else:
        mount("-o", "remount,ro", str(directory))
    before = sorted(p.name for p in directory.iterdir())

    result = subprocess.run([*CLI, *make_argv(verified_table, output)], capture_output=True, text=True,
                            preexec_fn=preexec, timeout=300)

    assert result.returncode == EXIT_OS_ERROR, result.stderr[-3000:]
    command = make_argv(verified_table, output)[0]
    assert result.stderr.splitlines()[-1] == f"trajfusion {command}: error: cannot write {output}: {FAULTS[fault]}"
    assert "Traceback" not in result.stderr
    assert output.read_bytes() == PREVIOUS
    assert sorted(p.name for p in directory.iterdir()) == before


def test_an_output_directory_that_cannot_be_made_is_one_clear_error(small_tmpfs):
    mount("-o", "remount,ro", str(small_tmpfs))
    output = small_tmpfs / "new" / "benchmark.parquet"
    result = subprocess.run([*CLI, *WRITERS["parquet"][1](None, output)], capture_output=True, text=True, timeout=300)
    assert result.returncode == EXIT_OS_ERROR
    assert result.stderr.splitlines()[-1] == \
        f"trajfusion prepare-benchmark: error: cannot write {output}: Read-only file system"
    assert not output.parent.exists()


@pytest.fixture(scope="module")
def training_over_the_size_limit(tiny_model_dir, tmp_path_factory):
    """``trajfusion train`` under a 4 MB file size limit: its trainer checkpoint (6 MB of
    weights) cannot be written. An earlier ``final/`` is in place."""
    root = tmp_path_factory.mktemp("train-fsize")
    dataset = root / "fused.jsonl"
    dataset.write_text("".join(json.dumps({"problem_id": f"toy/{i}", "messages": [
        {"role": "user", "content": f"What is {i} + {i}?"},
        {"role": "assistant", "content": f"The answer is \\boxed{{{2 * i}}}."}]}) + "\n" for i in range(2)))
    output_dir = root / "run"
    (output_dir / "final").mkdir(parents=True)
    (output_dir / "final" / "model.safetensors").write_bytes(PREVIOUS)
    argv = ["train", "--model", str(tiny_model_dir), "--dataset", str(dataset), "--template", "chat",
            "--output-dir", str(output_dir), "--epochs", "1", "--learning-rate", "1e-3", "--per-device-batch-size",
            "2", "--grad-accum", "1", "--max-length", "128", "--no-packing", "--precision", "fp32", "--seed", "0",
            "--no-gradient-checkpointing", "--num-gpus", "0"]
    result = subprocess.run([*CLI, *argv], capture_output=True, text=True, preexec_fn=limit_file_size(4_000_000),
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    return result, output_dir


@pytest.mark.slow
def test_a_failed_checkpoint_write_leaves_no_checkpoint_to_resume_from(training_over_the_size_limit):
    from trajfusion.train import find_resume_checkpoint

    result, output_dir = training_over_the_size_limit
    assert result.returncode != 0 and "File too large" in result.stderr
    assert (output_dir / "final" / "model.safetensors").read_bytes() == PREVIOUS
    assert find_resume_checkpoint(output_dir / "trainer") is None  # the partial checkpoint is not taken for one
    assert sorted(p.name for p in output_dir.iterdir()) == ["final", "trainer"]


@pytest.mark.slow
def test_a_failed_checkpoint_write_is_one_clear_error(training_over_the_size_limit):
    result, output_dir = training_over_the_size_limit
    assert result.returncode == EXIT_OS_ERROR and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("trajfusion train: error: ")]
    assert len(errors) == 1
    assert errors[0].startswith(f"trajfusion train: error: cannot write {output_dir}")
    assert errors[0].endswith("File too large")
