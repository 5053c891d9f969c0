"""The openai backend against a real OpenAI-compatible server on this machine: ``transformers
serve`` (the ``serve`` extra) serving copies of the tiny random model, started on a free port
and killed at teardown; no part of the server or the HTTP path is faked.

What transformers serve does, and so what these tests can check: it ignores ``n`` (the backend
sends one request per sample, ``per_sample_requests``), refuses token-id prompts (HTTP 400),
counts the generated tokens (stop token included) in ``usage``, and seeds its process-wide torch
RNG when a request arrives, so its samples are reproducible with one request in flight
(``concurrency: 1``) and after the requests of a killed client have drained.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import requests
from test_generation import build_eos_prone_model
from test_sample import RUNNER, _wait_for, make_pool, merge_argv

from trajfusion import cli
from trajfusion.contracts import SAMPLE_SHARD, read
from trajfusion.io import InputError
from trajfusion.sample.backends import Completion, load_backend
from trajfusion.sample.backends.openai import ServerError
from trajfusion.sample.partial import partial_path
from trajfusion.templates import encode_prompts, load_template

PROBLEMS = ["What is 2 + 3?", "A train travels 60 km in 1.5 hours. What is its speed?", "x"]
SERVER_START = 120  # seconds; the server starts in about 10 s on 2 idle cores


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, log: Path) -> subprocess.Popen:
    """``transformers serve`` on 127.0.0.1:PORT, loading each requested model directory on demand."""
    from transformers.utils.import_utils import is_serve_available

    if not is_serve_available():
        if os.environ.get("TRAJFUSION_REQUIRE_SERVE"):
            pytest.fail("transformers serve needs the serve extra: pip install -e '.[serve]'")
        pytest.skip("transformers serve needs the serve extra (fastapi, uvicorn, openai)")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", "--host", "127.0.0.1", "--port",
               str(port), "--device", "cpu", "--dtype", "float32"]
    with open(log, "w") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def wait_healthy(port: int, process: subprocess.Popen, log: Path, timeout: float = SERVER_START) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"transformers serve exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.25)
    pytest.fail(f"transformers serve not healthy within {timeout} s:\n{log.read_text()[-3000:]}")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The base URL of a running transformers serve."""
    port, log = free_port(), tmp_path_factory.mktemp("server") / "serve.log"
    process = start_server(port, log)
    try:
        wait_healthy(port, process, log)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_server(process)


@pytest.fixture(scope="module")
def sampling_model(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model with a generation config that samples: transformers serve takes do_sample
    (and top_k, not in the completions API) from the model's generation_config.json."""
    directory = tmp_path_factory.mktemp("sampling-model") / "tiny"
    shutil.copytree(tiny_model_dir, directory)
    config_path = directory / "generation_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "do_sample": True, "top_k": 0}))
    return directory


def backend(model_dir: Path, base_url: str, **options):
    options = {"per_sample_requests": True, "concurrency": 1, "progress": False, **options}
    return load_backend("openai", model_dir, base_url=base_url, **options)


def prompts(tokenizer) -> list[str]:
    template = load_template("chat")
    return [template.render_prompt(problem, tokenizer) for problem in PROBLEMS]


@pytest.fixture
def sample_stage_only(monkeypatch):
    monkeypatch.setattr(cli, "STAGE_MODULES", ("sample",))


# ---------------------------------------------------------------------- generation


def test_n_completions_per_prompt_with_finish_reasons_and_token_counts(sampling_model, server, tmp_path):
    with backend(sampling_model, server, concurrency=2) as sampler:
        results = sampler.generate(prompts(sampler.tokenizer), n=3, temperature=0.7, top_p=0.95, max_new_tokens=6,
                                   seed=11)
    assert [len(group) for group in results] == [3, 3, 3]
    assert {(c.finish_reason, c.n_tokens) for group in results for c in group} == {("length", 6)}
    # An EOS-prone copy stops: "stop", and the stop token is counted (the server's usage).
    eos_model = build_eos_prone_model(sampling_model, tmp_path / "eos", eos_weight=3.0)
    with backend(eos_model, server) as stopper:
        stopped = stopper.generate(prompts(stopper.tokenizer)[:2], n=2, temperature=0.0, top_p=1.0,
                                   max_new_tokens=8, seed=0)
    assert stopped == [[Completion("", 1, "stop")] * 2] * 2


@pytest.fixture(scope="module")
def bos_model(sampling_model, tmp_path_factory) -> Path:
    """The sampling model with a tokenizer that adds BOS (<|im_start|>, with which the chat
    template's text also starts) by default, as Llama's does: the case of a doubled BOS."""
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    directory = tmp_path_factory.mktemp("bos-model") / "tiny"
    shutil.copytree(sampling_model, directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    bos = (tokenizer.bos_token, tokenizer.bos_token_id)
    tokenizer._tokenizer.post_processor = TemplateProcessing(single=f"{bos[0]} $A", pair=f"{bos[0]} $A $B",
                                                             special_tokens=[bos])
    tokenizer.save_pretrained(directory)
    return directory


@pytest.mark.parametrize("model", ["sampling_model", "bos_model"])
def test_greedy_completions_equal_the_hf_backends(model, server, request, caplog):
    """The text sent is tokenized by the server into the hf backend's prompt ids (BOS once),
    so greedy decoding of the same weights gives the same completions."""
    import torch

    model = request.getfixturevalue(model)

    threads = torch.get_num_threads()
    hf = load_backend("hf", model, batch_size=1, threads=1, progress=False)
    try:
        expected = hf.generate(prompts(hf.tokenizer), n=2, temperature=0.0, top_p=1.0, max_new_tokens=8, seed=0)
    finally:
        hf.close()
        torch.set_num_threads(threads)
    with backend(model, server) as sampler:
        tokenizer = sampler.tokenizer
        texts = prompts(tokenizer)
        sent = sampler.encode(texts)
        assert [tokenizer(text)["input_ids"] for text in sent] == encode_prompts(tokenizer, texts)
        with caplog.at_level(logging.WARNING, logger="trajfusion.sample.backends.openai"):
            got = sampler.generate(texts, n=2, temperature=0.0, top_p=1.0, max_new_tokens=8, seed=0)
    assert got == expected
    assert "the server read a prompt as" not in caplog.text  # its usage.prompt_tokens: the same ids
    doubled = tokenizer(texts[0])["input_ids"][:2] == [tokenizer.bos_token_id] * 2
    assert doubled == (model.parent.name.startswith("bos-model")) == (sent != texts)


def test_same_seed_same_samples_other_seed_differs_batches_do_not_matter(sampling_model, server):
    kwargs = dict(n=2, temperature=1.0, top_p=1.0, max_new_tokens=5)
    with backend(sampling_model, server, batch_size=2) as sampler:
        texts = prompts(sampler.tokenizer)
        first = sampler.generate(texts, seed=5, keys=["a", "b", "c"], **kwargs)
        again = sampler.generate(texts, seed=5, keys=["a", "b", "c"], **kwargs)
        other = sampler.generate(texts, seed=6, keys=["a", "b", "c"], **kwargs)
        alone = sampler.generate(texts[2:], seed=5, keys=["c"], **kwargs)  # another batch, another call
    assert first == again and first != other
    assert alone == first[2:]
    assert first[0][0].text != first[0][1].text  # the samples of a prompt are distinct draws


def test_a_server_ignoring_n_or_token_prompts_is_named_not_retried(sampling_model, server, caplog):
    with backend(sampling_model, server, per_sample_requests=False) as sampler:
        with pytest.raises(ServerError, match=r"1 completion\(s\) for a request with n=2: the server ignores n; "
                                              "set per_sample_requests: true"):
            sampler.generate(["x"], n=2, temperature=0.7, top_p=1.0, max_new_tokens=2, seed=0)
    with backend(sampling_model, server, prompt_format="tokens", max_retries=3) as sampler:
        with caplog.at_level(logging.WARNING), pytest.raises(ServerError) as caught:
            sampler.generate(["x"], n=1, temperature=0.7, top_p=1.0, max_new_tokens=2, seed=0)
    message = str(caught.value)
    assert message.startswith(f"{server}/completions: HTTP 400: ") and message.endswith("(not retried)")
    assert "prompt must be a string" in message and "\n" not in message
    assert "retry" not in caplog.text


# ------------------------------------------------------------------ retries, errors


def test_a_server_that_comes_up_late_is_retried_until_it_answers(sampling_model, tmp_path, caplog):
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    sampler = backend(sampling_model, url, max_retries=8, retry_backoff=0.5)
    outcome = {}

    def sample():
        try:
            outcome["result"] = sampler.generate(["x"], n=1, temperature=0.7, top_p=1.0, max_new_tokens=3, seed=0)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc

    with caplog.at_level(logging.WARNING, logger="trajfusion.sample.backends.openai"):
        worker = threading.Thread(target=sample)
        worker.start()
        time.sleep(1.0)  # the first tries find nothing listening
        process = start_server(port, tmp_path / "late.log")
        try:
            worker.join(timeout=SERVER_START + 60)
        finally:
            stop_server(process)
    assert "error" not in outcome, outcome.get("error")
    assert [len(group) for group in outcome["result"]] == [1]
    assert f"{url}/completions: ConnectionError (" in caplog.text and "retry 1/8 in 0.5 s" in caplog.text


@pytest.mark.usefixtures("sample_stage_only")
def test_an_unreachable_server_fails_after_its_retries_with_one_line(sampling_model, tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with backend(sampling_model, url, max_retries=2, retry_backoff=0.01) as sampler:
        with pytest.raises(ServerError) as caught:
            sampler.generate(["x"], n=1, temperature=0.7, top_p=1.0, max_new_tokens=2, seed=0)
    message = str(caught.value)
    assert message.startswith(f"{url}/completions: ConnectionError (") and message.endswith("(after 3 attempt(s))")
    assert "Connection refused" in message
    # The command line reports it as one line and exits with the OS-error code.
    pool = make_pool(tmp_path / "pool.parquet", 2)
    code = cli.main(sample_argv(pool, sampling_model, url, 0, tmp_path / "shard.parquet", num_shards=1,
                                max_retries=0))
    assert code == cli.EXIT_OS_ERROR
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"trajfusion sample: error: {url}/completions: ConnectionError (")


def test_an_api_key_variable_that_is_not_set_is_refused(sampling_model, monkeypatch):
    monkeypatch.delenv("TRAJFUSION_TEST_KEY", raising=False)
    with pytest.raises(InputError, match="--api-key-env: environment variable TRAJFUSION_TEST_KEY is not set"):
        backend(sampling_model, "http://127.0.0.1:1/v1", api_key_env="TRAJFUSION_TEST_KEY")
    monkeypatch.setenv("TRAJFUSION_TEST_KEY", "secret")
    assert backend(sampling_model, "http://127.0.0.1:1/v1", api_key_env="TRAJFUSION_TEST_KEY").headers == {
        "Authorization": "Bearer secret"}


# ------------------------------------------------------------------ trajfusion sample


def sample_argv(pool, model, base_url, shard, output, num_shards=2, k=2, max_new_tokens=4, batch_size=2,
                **extra) -> list[str]:
    argv = ["sample", "--pool", str(pool), "--model", str(model), "--teacher", "served", "--template", "chat",
            "--backend", "openai", "--base-url", base_url, "--per-sample-requests", "--concurrency", "1",
            "--num-shards", str(num_shards), "--shard", str(shard), "--k", str(k), "--temperature", "1.0",
            "--top-p", "1.0", "--max-new-tokens", str(max_new_tokens), "--seed", "13", "--batch-size",
            str(batch_size), "--output", str(output)]
    for flag, value in extra.items():
        argv += [f"--{flag.replace('_', '-')}", str(value)]
    return argv


@pytest.mark.usefixtures("sample_stage_only")
def test_sample_end_to_end_does_not_depend_on_the_shard_count(sampling_model, server, tmp_path):
    pool = make_pool(tmp_path / "pool.parquet", 4)
    merged = {}
    for num_shards in (1, 2):
        shards = [tmp_path / f"{num_shards}-shard-{i}.parquet" for i in range(num_shards)]
        for i, shard in enumerate(shards):
            assert cli.main(sample_argv(pool, sampling_model, server, i, shard, num_shards=num_shards)) == 0
        merged[num_shards] = tmp_path / f"merged-{num_shards}.parquet"
        assert cli.main(merge_argv(pool, shards, merged[num_shards])) == 0
    shard = read(tmp_path / "1-shard-0.parquet", SAMPLE_SHARD)
    assert len(shard) == 8 and set(shard["teacher"]) == {"served"}
    assert set(shard["finish_reason"]) <= {"stop", "length"} and shard["n_tokens"].between(1, 4).all()
    assert shard.groupby("problem_id")["response"].nunique().eq(2).all()
    assert merged[1].read_bytes() == merged[2].read_bytes()
    assert pd.read_parquet(merged[1])["problem_id"].nunique() == 4


def drain(model: Path, base_url: str) -> None:
    """Return once the server has finished the requests of a killed client: transformers serve
    generates one request at a time, so a new request is answered after them."""
    with backend(model, base_url) as probe:
        probe.generate(["x"], n=1, temperature=0.0, top_p=1.0, max_new_tokens=1, seed=0)


@pytest.mark.slow
@pytest.mark.usefixtures("sample_stage_only")
def test_a_killed_sample_job_resumes_to_the_same_bytes(sampling_model, server, tmp_path, caplog):
    pool = make_pool(tmp_path / "pool.parquet", 3)  # shard 0 of 2 holds two problems

    def argv(output: Path) -> list[str]:
        # Batch size 1: shard 0 is two batches (2 requests each), so it can be killed between them.
        return sample_argv(pool, sampling_model, server, 0, output, max_new_tokens=40, batch_size=1)

    target, reference = tmp_path / "killed" / "shard-0.parquet", tmp_path / "reference" / "shard-0.parquet"
    target.parent.mkdir()
    reference.parent.mkdir()
    stderr_path = tmp_path / "stderr.txt"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-c", RUNNER, *argv(target)], stderr=stderr,
                                   stdout=subprocess.DEVNULL)
        _wait_for(stderr_path, "| 1/2 [", process, timeout=120)  # first batch done, second running
        assert process.poll() is None, "the job finished before it could be killed; give it more work"
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL and not target.exists()
    assert len(partial_path(target).read_text().splitlines()) == 2  # header + the first batch
    drain(sampling_model, server)
    with caplog.at_level(logging.INFO, logger="trajfusion.sample.partial"):
        assert cli.main(argv(target)) == 0
    assert "resuming with 1 completed batch(es)" in caplog.text
    assert not partial_path(target).exists()
    assert cli.main(argv(reference)) == 0
    assert target.read_bytes() == reference.read_bytes()


# ------------------------------------------------------------------ trajfusion evaluate


def test_evaluate_through_the_server_matches_the_hf_backend(sampling_model, server, tmp_path):
    """Greedy evaluation of the same weights: the verdict tables of both backends are equal."""
    import torch
    from test_evaluate import BENCH, PAPER_PHRASES, check_verdicts, eval_args, run_cli

    threads = torch.get_num_threads()  # the hf run sets it for this process

    bench, phrases = tmp_path / "bench.parquet", tmp_path / "phrases.json"
    BENCH.iloc[:2].to_parquet(bench)
    phrases.write_text(json.dumps(PAPER_PHRASES))
    tables = {}
    for name, flags in (("hf", ["--batch-size", "2", "--threads", "1"]),
                        ("openai", ["--base-url", server, "--concurrency", "2"])):
        out = tmp_path / f"{name}.parquet"
        argv = eval_args(sampling_model, bench, out, phrases, samples=2, extra=flags)
        argv[argv.index("--backend") + 1] = name
        argv[argv.index("--temperature") + 1] = "0"
        argv[argv.index("--max-new-tokens") + 1] = "6"
        try:
            assert run_cli(argv) == 0
        finally:
            torch.set_num_threads(threads)
        tables[name] = pd.read_parquet(out)
    check_verdicts(tables["openai"])
    assert len(tables["openai"]) == 4
    pd.testing.assert_frame_equal(tables["openai"], tables["hf"])


def test_a_server_error_is_retried_then_named(sampling_model, server, caplog):
    # transformers serve cannot load a model directory that does not exist: it answers HTTP 500.
    with backend(sampling_model, server, served_model="/nonexistent/model", max_retries=1,
                 retry_backoff=0.01) as sampler:
        with caplog.at_level(logging.WARNING), pytest.raises(ServerError) as caught:
            sampler.generate(["x"], n=1, temperature=0.7, top_p=1.0, max_new_tokens=2, seed=0)
    assert str(caught.value) == f"{server}/completions: HTTP 500: Internal Server Error (after 2 attempt(s))"
    assert f"{server}/completions: HTTP 500: Internal Server Error; retry 1/1 in 0.0 s" in caplog.text


def test_a_response_with_several_completions_is_ordered_and_counted_locally(sampling_model):
    """A response to a request with n (as vLLM answers): choices in any order, usage summed over
    them, so each completion's tokens are counted with the local tokenizer (+1 for the stop token)."""
    sampler = backend(sampling_model, "http://127.0.0.1:1/v1", per_sample_requests=False)
    body = {"prompt": "x", "n": 3}
    answer = {"choices": [{"index": 2, "text": " three words here", "finish_reason": "length"},
                          {"index": 0, "text": "", "finish_reason": "stop"},
                          {"index": 1, "text": " two words", "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 1, "completion_tokens": 9}}
    count = len(sampler.tokenizer(" two words", add_special_tokens=False)["input_ids"])
    assert sampler._completions(body, answer, max_new_tokens=3) == [
        Completion("", 1, "stop"), Completion(" two words", count + 1, "stop"),
        Completion(" three words here", 3, "length")]
    with pytest.raises(ServerError, match="finish_reason='abort'"):
        sampler._completions({"prompt": "x"}, {"choices": [{"text": "", "finish_reason": "abort"}]}, 3)
    with pytest.raises(ServerError, match="response without a list of choices"):
        sampler._completions({"prompt": "x"}, {"error": "overloaded"}, 3)


# ------------------------------------------------------------------ through Snakemake


@pytest.mark.slow
def test_snakemake_samples_a_pool_through_the_server(sampling_model, server, tmp_path):
    """The e2e config's teacher on the server: Snakemake prepares the model (its tokenizer),
    builds the pool, runs both shards' `trajfusion sample --backend openai` and merges them."""
    import yaml
    from conftest import e2e_config, snakemake

    from trajfusion.plan import path

    config, configfile = e2e_config(sampling_model, tmp_path)
    prepared = tmp_path / path("model", model="tiny")
    config["teachers"]["tiny"] = {"model": "tiny", "template": "chat", "max_new_tokens": 4, "backend": "openai",
                                  "base_url": server, "served_model": str(prepared), "per_sample_requests": True,
                                  "concurrency": 2, "batch_size": 3, "dtype": "float32"}
    config["sampling"]["k"] = 2
    configfile.write_text(yaml.safe_dump(config))
    target = path("samples", teacher="tiny", pool="e2e")
    result = snakemake(tmp_path, configfile, target)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    samples = pd.read_parquet(tmp_path / target)
    assert len(samples) == 20 and samples.groupby("problem_id").size().eq(2).all()
    assert samples["n_tokens"].between(1, 4).all() and set(samples["finish_reason"]) <= {"stop", "length"}
    log = (tmp_path / "results" / "logs").rglob("*.log")
    assert any(f"openai backend: {server}/completions" in p.read_text() for p in log)


def test_retry_after_is_read_in_seconds_and_capped():
    from trajfusion.sample.backends.openai import MAX_DELAY, _retry_after

    response = requests.models.Response()
    assert _retry_after(response) is None
    response.headers["Retry-After"] = "3"
    assert _retry_after(response) == 3.0
    response.headers["Retry-After"] = "Wed, 21 Oct 2015 07:28:00 GMT"  # the date form: the backoff applies
    assert _retry_after(response) is None
    response.headers["Retry-After"] = "86400"
    assert _retry_after(response) == 10 * MAX_DELAY
