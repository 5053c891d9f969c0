"""The sharded teacher sampling stage: `trajfusion sample` and `trajfusion merge-samples`."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_generation import FakeVLLM, one_torch_thread  # noqa: F401  (autouse fixture)

from trajfusion import cli
from trajfusion.io import read_parquet_metadata
from trajfusion.sample import MERGED_COLUMNS, SHARD_COLUMNS
from trajfusion.sample.backends import Completion, derive_seed
from trajfusion.sample.partial import PartialBatches, partial_path

# The CLI imports every stage module; only the sampling stage is needed (and guaranteed) here.
RUNNER = ("import sys, trajfusion.cli as c; c.STAGE_MODULES = ('sample',); "
          "sys.exit(c.main(sys.argv[1:]))")


@pytest.fixture(autouse=True)
def only_sample_stage(monkeypatch):
    monkeypatch.setattr(cli, "STAGE_MODULES", ("sample",))


def make_pool(path: Path, n: int) -> Path:
    ids = [f"toy/{i:03d}" for i in range(n)]
    pool = pd.DataFrame({"problem_id": ids, "problem": [f"What is {i} + {i}?" for i in range(n)],
                         "answer": [str(2 * i) for i in range(n)], "source": "toy"})
    pool.iloc[::-1].to_parquet(path, index=False)  # deliberately not sorted by problem_id
    return path


def sample_argv(pool, model, shard, output, num_shards=2, k=2, max_new_tokens=4, batch_size=2, top_p=0.95,
                **extra) -> list[str]:
    argv = ["sample", "--pool", str(pool), "--model", str(model), "--teacher", "tiny", "--template", "chat",
            "--backend", "hf", "--num-shards", str(num_shards), "--shard", str(shard), "--k", str(k),
            "--temperature", "0.7", "--top-p", str(top_p), "--max-new-tokens", str(max_new_tokens), "--seed", "13",
            "--batch-size", str(batch_size), "--output", str(output)]
    for flag, value in extra.items():
        argv += [f"--{flag.replace('_', '-')}", str(value)]
    return argv


def merge_argv(pool, inputs, output, k=2) -> list[str]:
    return ["merge-samples", "--pool", str(pool), "--inputs", *map(str, inputs), "--k", str(k),
            "--output", str(output)]


@pytest.fixture(scope="module")
def sampled(tiny_model_dir, tmp_path_factory):
    """A 6-problem pool sampled in 2 shards and merged."""
    root = tmp_path_factory.mktemp("sampled")
    pool = make_pool(root / "pool.parquet", 6)
    shards = [root / f"shard-{i}.parquet" for i in range(2)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli, "STAGE_MODULES", ("sample",))
        for i, shard in enumerate(shards):
            assert cli.main(sample_argv(pool, tiny_model_dir, i, shard)) == 0
        assert cli.main(merge_argv(pool, shards, root / "merged.parquet")) == 0
    return {"root": root, "pool": pool, "shards": shards, "merged": root / "merged.parquet"}


def test_shards_follow_the_contract(sampled):
    ids = sorted(pd.read_parquet(sampled["pool"])["problem_id"])
    # Batch size 2: blocks of two sorted problems, dealt to the 2 shards in turn.
    held = {0: ids[0:2] + ids[4:6], 1: ids[2:4]}
    for index, path in enumerate(sampled["shards"]):
        shard = pd.read_parquet(path)
        assert list(shard.columns) == SHARD_COLUMNS
        assert shard["problem_id"].tolist() == [pid for pid in held[index] for _ in range(2)]
        assert shard["sample_idx"].tolist() == [0, 1] * len(held[index])
        assert set(shard["finish_reason"]) <= {"stop", "length"}
        assert (shard["n_tokens"].between(1, 4)).all()
        assert set(shard["teacher"]) == {"tiny"}
        assert set(shard["seed"]) == {13}


@pytest.mark.parametrize("num_shards", [1, 3])
def test_merged_samples_do_not_depend_on_the_shard_count(sampled, tiny_model_dir, tmp_path, num_shards):
    shards = [tmp_path / f"shard-{i}.parquet" for i in range(num_shards)]
    for index, shard in enumerate(shards):
        assert cli.main(sample_argv(sampled["pool"], tiny_model_dir, index, shard, num_shards=num_shards)) == 0
    assert cli.main(merge_argv(sampled["pool"], shards, tmp_path / "merged.parquet")) == 0
    assert (tmp_path / "merged.parquet").read_bytes() == sampled["merged"].read_bytes()


def test_merge_refuses_shards_sampled_differently(sampled, tiny_model_dir, tmp_path, capsys):
    other = tmp_path / "shard-1.parquet"
    assert cli.main(sample_argv(sampled["pool"], tiny_model_dir, 1, other, top_p=0.9)) == 0
    assert cli.main(merge_argv(sampled["pool"], [sampled["shards"][0], other], tmp_path / "m.parquet")) == 2
    assert (f"{other}: sampled with top_p=0.9, but {sampled['shards'][0]} with top_p=0.95; all shards of a pool "
            "must share the sampling settings") in capsys.readouterr().err


def test_shard_metadata_records_settings_without_paths(sampled):
    meta = read_parquet_metadata(sampled["shards"][1])
    assert meta["settings"]["shard"] == 1 and meta["settings"]["k"] == 2 and meta["settings"]["top_p"] == 0.95
    assert meta["settings"]["block"] == 2
    assert not {"pool", "model", "output"} & set(meta["settings"])
    assert len(meta["config_hash"]) == 16 and "torch" in meta["versions"]


def test_merged_table_joins_pool_and_sorts(sampled):
    merged = pd.read_parquet(sampled["merged"])
    pool = pd.read_parquet(sampled["pool"]).set_index("problem_id")
    assert list(merged.columns) == MERGED_COLUMNS
    assert len(merged) == 12
    keys = list(zip(merged["problem_id"], merged["sample_idx"]))
    assert keys == sorted(keys)
    assert merged["gold"].tolist() == pool.loc[merged["problem_id"], "answer"].tolist()
    assert merged["problem"].tolist() == pool.loc[merged["problem_id"], "problem"].tolist()
    assert set(merged["source"]) == {"toy"}
    assert merged.groupby("problem_id").size().eq(2).all()


def test_rerunning_a_shard_is_byte_identical(sampled, tiny_model_dir, tmp_path):
    again = tmp_path / "again.parquet"
    assert cli.main(sample_argv(sampled["pool"], tiny_model_dir, 0, again)) == 0
    assert again.read_bytes() == sampled["shards"][0].read_bytes()


def test_merge_names_the_missing_shard(sampled, tmp_path, capsys):
    assert cli.main(merge_argv(sampled["pool"], sampled["shards"][:1], tmp_path / "m.parquet")) == 2
    err = capsys.readouterr().err
    assert "2 of 6 pool problems do not have K=2 samples" in err
    assert "shard 1 of 2, which is missing from --inputs" in err
    assert not (tmp_path / "m.parquet").exists()


def test_merge_rejects_duplicates_and_names_the_file(sampled, tmp_path, capsys):
    shard0, shard1 = sampled["shards"]
    assert cli.main(merge_argv(sampled["pool"], [shard0, shard1, shard0], tmp_path / "m.parquet")) == 2
    err = capsys.readouterr().err
    assert (f"--inputs {shard0} {shard1} {shard0}: record 13 (problem_id='toy/000', sample_idx=0): "
            "duplicate key (problem_id, sample_idx), also record 1") in err


def test_merge_rejects_wrong_k_and_foreign_problems(sampled, tmp_path, capsys):
    assert cli.main(merge_argv(sampled["pool"], sampled["shards"], tmp_path / "m.parquet", k=3)) == 2
    assert "6 of 6 pool problems do not have K=3 samples" in capsys.readouterr().err
    small_pool = tmp_path / "small.parquet"
    pd.read_parquet(sampled["pool"]).query("problem_id != 'toy/005'").to_parquet(small_pool)
    assert cli.main(merge_argv(small_pool, sampled["shards"], tmp_path / "m.parquet")) == 2
    err = capsys.readouterr().err
    assert "problem_id 'toy/005' is not in the pool" in err and "shard-0.parquet" in err


def test_merge_rejects_bad_field_with_file_row_and_field(sampled, tmp_path, capsys):
    bad = tmp_path / "bad.parquet"
    shard = pd.read_parquet(sampled["shards"][1])
    shard.loc[3, "finish_reason"] = "abort"
    shard.to_parquet(bad, index=False)
    assert cli.main(merge_argv(sampled["pool"], [sampled["shards"][0], bad], tmp_path / "m.parquet")) == 2
    assert (f"{bad}: record 4 (problem_id='toy/003', sample_idx=1): field 'finish_reason' must be one of "
            "['stop', 'length'], got 'abort'") in capsys.readouterr().err


def test_sample_rejects_bad_pool_and_shard(tiny_model_dir, tmp_path, capsys):
    pool = make_pool(tmp_path / "pool.parquet", 4)
    assert cli.main(sample_argv(pool, tiny_model_dir, 2, tmp_path / "s.parquet")) == 2
    assert "--shard must be in [0, --num-shards)" in capsys.readouterr().err
    dup = tmp_path / "dup.parquet"
    frame = pd.read_parquet(pool)
    frame.loc[3, "problem_id"] = frame.loc[1, "problem_id"]
    frame.to_parquet(dup, index=False)
    assert cli.main(sample_argv(dup, tiny_model_dir, 0, tmp_path / "s.parquet")) == 2
    assert f"{dup}: record 4 (problem_id='toy/002'): duplicate key (problem_id), also record 2" in \
        capsys.readouterr().err
    no_problem = tmp_path / "no_problem.parquet"
    frame.drop(columns="problem").to_parquet(no_problem, index=False)
    assert cli.main(sample_argv(no_problem, tiny_model_dir, 0, tmp_path / "s.parquet")) == 2
    assert "missing required column(s) ['problem']" in capsys.readouterr().err
    assert not (tmp_path / "s.parquet").exists()


def test_empty_shard_writes_an_empty_table(tiny_model_dir, tmp_path):
    pool = make_pool(tmp_path / "pool.parquet", 2)
    output = tmp_path / "shard-2.parquet"
    assert cli.main(sample_argv(pool, tiny_model_dir, 2, output, num_shards=3)) == 0
    shard = pd.read_parquet(output)
    assert list(shard.columns) == SHARD_COLUMNS and len(shard) == 0


def test_sample_with_vllm_backend_passes_engine_flags(monkeypatch, tiny_model_dir, tmp_path):
    fake = FakeVLLM()
    monkeypatch.setitem(sys.modules, "vllm", fake.module)
    pool = make_pool(tmp_path / "pool.parquet", 3)
    output = tmp_path / "shard-0.parquet"
    argv = sample_argv(pool, tiny_model_dir, 0, output, num_shards=1, k=4, max_new_tokens=4096,
                       batch_size=3, tensor_parallel_size=4, max_model_len=8192, gpu_memory_utilization=0.85,
                       dtype="bfloat16")
    argv[argv.index("--backend") + 1] = "vllm"
    assert cli.main(argv) == 0
    assert fake.init_kwargs == {"model": str(tiny_model_dir), "tensor_parallel_size": 4, "max_model_len": 8192,
                                "seed": 13, "dtype": "bfloat16", "gpu_memory_utilization": 0.85,
                                "trust_remote_code": False}
    assert len(fake.calls) == 1 and {params.n for params in fake.calls[0]["params"]} == {4}
    assert {params.max_tokens for params in fake.calls[0]["params"]} == {4096}
    assert [params.seed for params in fake.calls[0]["params"]] == [derive_seed(13, f"toy/{i:03d}") for i in range(3)]
    shard = pd.read_parquet(output)
    assert shard["response"].tolist()[:5] == ["req0-s0", "req0-s1", "req0-s2", "req0-s3", "req1-s0"]
    assert shard["n_tokens"].tolist()[:4] == [2, 3, 4, 5]
    assert shard["finish_reason"].tolist()[:2] == ["length", "stop"]


# --------------------------------------------------------------------------- kill


def _wait_for(path: Path, needle: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            pytest.fail(f"sampling job exited ({process.returncode}) before {needle!r}:\n{path.read_text()}")
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"no {needle!r} within {timeout} s:\n{path.read_text()}")


@pytest.mark.slow
def test_killed_job_leaves_no_output_and_rerun_matches(tiny_model_dir, tmp_path, caplog):
    pool = make_pool(tmp_path / "pool.parquet", 3)  # shard 0 of 2 holds two problems

    def argv(shard: int, output: Path) -> list[str]:
        # Batch size 1: shard 0 runs as two generate calls, so it can be killed between them.
        return sample_argv(pool, tiny_model_dir, shard, output, max_new_tokens=40, batch_size=1, top_p=1.0,
                           threads=1)

    killed_dir, reference_dir = tmp_path / "killed", tmp_path / "reference"
    killed_dir.mkdir()
    reference_dir.mkdir()
    target = killed_dir / "shard-0.parquet"
    stderr_path = tmp_path / "stderr.txt"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-c", RUNNER, *argv(0, target)], stderr=stderr,
                                   stdout=subprocess.DEVNULL)
        _wait_for(stderr_path, "| 1/2 [", process, timeout=120)  # first batch done, second running
        assert process.poll() is None, "the job finished before it could be killed; give it more work"
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not target.exists()
    assert list(killed_dir.glob("*.parquet")) == []
    # The completed first batch waits in the partial file beside the output: header + 1 batch.
    assert len(partial_path(target).read_text().splitlines()) == 2

    # Rerun the killed shard (it resumes), run the other one, merge; compare with an uninterrupted run.
    for directory in (killed_dir, reference_dir):
        shards = [directory / f"shard-{i}.parquet" for i in (0, 1)]
        with caplog.at_level(logging.INFO, logger="trajfusion.sample.partial"):
            caplog.clear()
            assert cli.main(argv(0, shards[0])) == 0
        resumed = "resuming with 1 completed batch(es)" in caplog.text
        assert resumed == (directory == killed_dir)
        assert cli.main(argv(1, shards[1])) == 0
        assert sorted(p.name for p in directory.iterdir()) == ["shard-0.parquet", "shard-1.parquet"]
        assert cli.main(merge_argv(pool, shards, directory / "merged.parquet")) == 0
    assert (killed_dir / "merged.parquet").read_bytes() == (reference_dir / "merged.parquet").read_bytes()


def _completions(*texts: str) -> list[Completion]:
    return [Completion(text, n_tokens=len(text), finish_reason="stop") for text in texts]


def test_partial_batches_survive_a_cut_line_and_refuse_another_job(tmp_path):
    output = tmp_path / "shard-0.parquet"
    first = PartialBatches(output, {"settings": {"seed": 1}})
    first.record(["p/0", "p/1"], [_completions("a", "b"), _completions("c", "d")])
    first.record(["p/2"], [_completions("e \u00e9", "f")])
    first._file.close()
    path = partial_path(output)
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"keys": ["p/3"], "groups": [[["g"')  # the kill cut this batch's line
    again = PartialBatches(output, {"settings": {"seed": 1}})
    assert again.done == {("p/0", "p/1"): [_completions("a", "b"), _completions("c", "d")],
                          ("p/2",): [_completions("e \u00e9", "f")]}
    assert path.read_bytes() == whole  # the cut line is gone; new batches append after the good ones
    other = PartialBatches(output, {"settings": {"seed": 2}})  # other settings: the old work is not theirs
    assert other.done == {} and not path.exists()
    other.record(["p/0"], [_completions("x")])
    other.remove()
    assert not path.exists()


def test_sample_removes_its_partial_file_and_ignores_a_stale_one(tiny_model_dir, tmp_path):
    pool = make_pool(tmp_path / "pool.parquet", 3)
    reference = tmp_path / "reference.parquet"
    assert cli.main(sample_argv(pool, tiny_model_dir, 0, reference, batch_size=1)) == 0
    assert not partial_path(reference).exists()
    output = tmp_path / "out.parquet"
    stale = PartialBatches(output, {"settings": "another job"})
    stale.record(["toy/000"], [_completions("stale", "stale")])
    stale._file.close()
    assert cli.main(sample_argv(pool, tiny_model_dir, 0, output, batch_size=1)) == 0
    assert output.read_bytes() == reference.read_bytes() and not partial_path(output).exists()


def test_a_think_block_the_template_opens_is_part_of_every_response(tiny_model_dir, tmp_path):
    # DeepSeek-R1-Distill's chat template ends the prompt with "<think>\n": the model's
    # completion starts inside the block, and one that never closes it must look unclosed.
    import shutil

    from transformers import AutoTokenizer

    from trajfusion.verify import verify_frame

    model = tmp_path / "r1-like"
    shutil.copytree(tiny_model_dir, model)
    tokenizer = AutoTokenizer.from_pretrained(model)
    tokenizer.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                               "{% if add_generation_prompt %}assistant: <think>\n{% endif %}")
    tokenizer.save_pretrained(model)
    pool = make_pool(tmp_path / "pool.parquet", 2)
    output = tmp_path / "shard-0.parquet"
    assert cli.main(sample_argv(pool, model, 0, output, num_shards=1, max_new_tokens=6)) == 0
    shard = pd.read_parquet(output)
    assert shard["response"].str.startswith("<think>\n").all()
    # The untrained model never writes </think>: had it stopped there (not hit the token limit,
    # which the truncated filter catches first), the response is unclosed, not an answer.
    verified = verify_frame(shard.assign(gold="0", finish_reason="stop"), workers=0, answer_format="boxed")
    assert set(verified["status"]) == {"filtered:unclosed_think"}
