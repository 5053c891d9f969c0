"""``trajfusion evaluate``: reflection counting, and end to end with scripted and real backends."""

from __future__ import annotations

import argparse
import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from trajfusion import evaluate
from trajfusion.evaluate.reflections import count_series
from trajfusion.io import InputError
from trajfusion.phrases import default_phrases_path, load_phrases
from trajfusion.report.metrics import check_verdicts
from trajfusion.sample.backends import Completion

PAPER_PHRASES = {
    "error_recognition": ["Wait... that doesn't seem right. Let's try again.",
                          "Hmm, maybe we're missing something. Think carefully.",
                          "That doesn't add up. Let's give it another go.",
                          "Hold on. That might not be correct. Try again."],
    "success_confirmation": ["That makes sense now.", "Yes, this is correct.", "Ah, that makes sense now."],
    "certainty": ["I'm absolutely certain this is correct.", "No doubt about it, this answer is right.",
                  "I fully trust this result."],
}


@pytest.fixture
def phrase_file(tmp_path):
    import yaml

    path = tmp_path / "phrases.yaml"
    path.write_text(yaml.safe_dump(PAPER_PHRASES))
    return path


@pytest.fixture
def phrases(phrase_file):
    return load_phrases(phrase_file).error_recognition


@pytest.mark.parametrize("text,reflections,markers", [
    ("Wait... that doesn't seem right. Let's try again.", 1, 0),  # one phrase; its marker words are its own
    ("Let the dough rest, then wait 5 minutes before baking.", 0, 1),  # a generic marker, not a reflection
    ("WAIT... THAT DOESN’T SEEM RIGHT. let's TRY again.", 1, 0),  # case and apostrophes do not matter
    ("wait, that doesn't seem right. Let's go on.", 0, 2),  # a partial phrase is no reflection
    ("x = 3. Hmm, maybe we're missing\nsomething.  Think carefully. y = 4", 1, 0),
    ("Ah, that makes sense now. Yes, this is correct.", 0, 0),  # success phrases are no reflection
    ("Hmm. Wait. Hold on.", 0, 3),
    ("We awaited the hmmm result while waiting.", 0, 0),  # no matches inside words
    ("2 + 2 = 5. That doesn't add up. Let's give it another go. Hold on. That might not be correct. "
     "Try again. 2 + 2 = 4. Hmm", 2, 1),
    ("The answer is \\boxed{5}.", 0, 0),
    ("", 0, 0),
])
def test_reflections_are_the_error_recognition_phrases(text, reflections, markers, phrases):
    assert count_series(text, phrases) == (reflections, markers)
    assert evaluate.count_reflections(text, phrases) == reflections


def test_overlapping_phrases_count_once():
    nested = ("Hold on.", "Hold on. Let's try again.")
    assert count_series("Hold on. Let's try again. 3 + 4 = 7.", nested) == (1, 0)
    assert count_series("hold on.   LET'S try\nagain. Hold on.", nested) == (2, 0)
    chained = ("try again. wait", "wait. try again")  # the second shares "wait" with the first
    assert count_series("Try again. Wait. Try again.", chained) == (1, 0)


def test_packaged_phrase_file_has_the_papers_phrases():
    loaded = load_phrases(default_phrases_path())
    assert loaded.error_recognition == tuple(PAPER_PHRASES["error_recognition"])


# ------------------------------------------------------------------------ end to end


BENCH = pd.DataFrame({
    "problem_id": ["t/2", "t/1", "t/3"],
    "problem": ["What is 2 + 3?", "What is half of one?", "What is 10 / 2?"],
    "answer": ["5", "\\frac{1}{2}", "5"],
    "source": "toy", "level": None, "subject": None, "year": pd.array([None] * 3, dtype="Int64"),
    "answer_type": ["integer", "latex", None], "flags": None,
})

SCRIPT = {  # problem -> the completions the fake backend returns, in order
    "What is 2 + 3?": ["2 + 3 = 6. Wait... that doesn't seem right. Let's try again. 2 + 3 = 5. \\boxed{5}",
                       "The answer is \\boxed{6}.", "Hmm, hmm. \\boxed{5}"],
    "What is half of one?": ["\\boxed{0.5}", "It is \\boxed{\\frac{1}{2}}", "I think \\boxed{2}"],
    "What is 10 / 2?": ["\\boxed{2}", "\\boxed{5} and so (cut", "no idea"],
}


class ScriptedBackend:
    """Stands in for ``load_backend``'s result: replays SCRIPT and records its calls."""

    calls: list = []

    def __init__(self, model_dir, **options):
        self.tokenizer = None
        ScriptedBackend.calls.append(("init", str(model_dir), options))

    def generate(self, prompts, n, temperature, top_p, max_new_tokens, seed, keys=None, partial=None):
        ScriptedBackend.calls.append(("generate", len(prompts), n, temperature, top_p, max_new_tokens, seed))
        out = []
        for prompt in prompts:
            problem = next(p for p in SCRIPT if p in prompt)
            out.append([Completion(text, n_tokens=len(text.split()),
                                   finish_reason="length" if "(cut" in text else "stop")
                        for text in SCRIPT[problem][:n]])
        return out

    def close(self):
        ScriptedBackend.calls.append(("close",))


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    evaluate.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def eval_args(model, bench, out, phrase_file, samples=3, extra=()) -> list[str]:
    return ["evaluate", "--model", str(model), "--benchmark", str(bench), "--template", "deepseek_math",
            "--backend", "hf", "--samples", str(samples), "--temperature", "0.6", "--top-p", "0.95",
            "--max-new-tokens", "64", "--seed", "7", "--workers", "0", "--phrases", str(phrase_file),
            "--output", str(out), *extra]


@pytest.fixture
def scripted(monkeypatch, tmp_path):
    import trajfusion.evaluate.cli

    ScriptedBackend.calls = []
    monkeypatch.setattr(trajfusion.evaluate.cli, "load_backend",
                        lambda name, model_dir, **o: ScriptedBackend(model_dir, **o))
    bench = tmp_path / "bench.parquet"
    BENCH.to_parquet(bench)
    return bench


def test_evaluate_with_a_scripted_backend_and_the_real_verifier(scripted, tmp_path, phrase_file):
    out = tmp_path / "eval" / "verdicts.parquet"
    assert run_cli(eval_args(tmp_path, scripted, out, phrase_file, extra=["--batch-size", "4"])) == 0
    df = pd.read_parquet(out)
    assert list(df.columns) == list(evaluate.VERDICT_COLUMNS)
    check_verdicts(df)
    assert df["problem_id"].tolist() == ["t/1"] * 3 + ["t/2"] * 3 + ["t/3"] * 3
    assert df["correct"].tolist() == [True, True, False, True, False, True, False, True, False]
    assert df["n_reflections"].tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0]
    assert df["n_markers"].tolist() == [0, 0, 0, 0, 0, 2, 0, 0, 0]  # "Hmm, hmm." is no reflection
    # evaluation applies no output filters: a truncated response is still judged on its answer
    assert df.loc[7, "finish_reason"] == "length" and df.loc[7, "status"] == "ok"
    assert pd.isna(df.loc[8, "answer"]) and not df.loc[8, "correct"]
    assert df["gold"].tolist()[:3] == ["\\frac{1}{2}"] * 3
    assert ScriptedBackend.calls[0] == ("init", str(tmp_path), {"batch_size": 4, "trust_remote_code": False})
    assert ScriptedBackend.calls[1] == ("generate", 3, 3, 0.6, 0.95, 64, 7)
    assert ScriptedBackend.calls[-1] == ("close",)
    meta = json.loads(pq.read_schema(out).metadata[b"trajfusion"])
    assert meta["settings"]["samples"] == 3 and len(meta["config_hash"]) == 16

    again = tmp_path / "again.parquet"
    run_cli(eval_args(tmp_path, scripted, again, phrase_file, extra=["--batch-size", "4"]))
    assert pd.read_parquet(again).equals(df)
    assert json.loads(pq.read_schema(again).metadata[b"trajfusion"])["config_hash"] == meta["config_hash"]


def test_evaluate_passes_the_backend_flags_sampling_passes(scripted, tmp_path, phrase_file):
    extra = ["--device", "cpu", "--threads", "1", "--gpu-memory-utilization", "0.5"]  # the last is vllm only
    assert run_cli(eval_args(tmp_path, scripted, tmp_path / "v.parquet", phrase_file, extra=extra)) == 0
    assert ScriptedBackend.calls[0] == ("init", str(tmp_path), {"device": "cpu", "threads": 1,
                                                                "trust_remote_code": False})


def test_evaluate_renders_chat_templates_with_the_backends_tokenizer(scripted, tmp_path, phrase_file, monkeypatch):
    seen = []

    class ChatTokenizer:
        chat_template = "fake"
        eos_token = "</s>"

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            seen.append(messages)
            return "<sys>" + messages[0]["content"] + "<user>" + messages[1]["content"] + "<assistant>"

    original = ScriptedBackend.__init__

    def init_with_tokenizer(self, model_dir, **options):
        original(self, model_dir, **options)
        self.tokenizer = ChatTokenizer()

    monkeypatch.setattr(ScriptedBackend, "__init__", init_with_tokenizer)
    argv = eval_args(tmp_path, scripted, tmp_path / "v.parquet", phrase_file, samples=1)
    argv[argv.index("deepseek_math")] = "chat"
    assert run_cli(argv) == 0
    assert [m[1]["content"] for m in seen] == BENCH["problem"].tolist()
    assert "boxed" in seen[0][0]["content"]


def test_evaluate_rejects_bad_benchmarks(scripted, tmp_path, phrase_file):
    bad = tmp_path / "bad.parquet"
    BENCH.drop(columns="answer").to_parquet(bad)
    with pytest.raises(InputError, match="missing required column"):
        run_cli(eval_args(tmp_path, bad, tmp_path / "o.parquet", phrase_file))
    BENCH.assign(problem_id=["a", "b", "a"]).to_parquet(bad)
    with pytest.raises(InputError, match=r"bad.parquet: record 3 \(problem_id='a'\): duplicate key \(problem_id\), "
                                         r"also record 1$"):
        run_cli(eval_args(tmp_path, bad, tmp_path / "o.parquet", phrase_file))
    BENCH.assign(answer=["1", None, "2"]).to_parquet(bad)
    with pytest.raises(InputError, match=r"bad.parquet: record 2 \(problem_id='t/1'\): field 'answer' is null$"):
        run_cli(eval_args(tmp_path, bad, tmp_path / "o.parquet", phrase_file))
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.slow
def test_evaluate_with_the_real_hf_backend_on_a_tiny_model(tiny_model_dir, tmp_path, phrase_file):
    bench = tmp_path / "bench.parquet"
    BENCH.iloc[:2].to_parquet(bench)
    outs = [tmp_path / f"v{i}.parquet" for i in range(2)]
    for out in outs:
        argv = eval_args(tiny_model_dir, bench, out, phrase_file, samples=2, extra=["--batch-size", "2"])
        argv[argv.index("--max-new-tokens") + 1] = "6"
        assert run_cli(argv) == 0
    df = pd.read_parquet(outs[0])
    check_verdicts(df)
    assert len(df) == 4 and df["n_tokens"].between(1, 6).all()
    assert set(df["finish_reason"]) <= {"stop", "length"}
    assert outs[0].read_bytes() == outs[1].read_bytes()


def equivalent_wrong_answers() -> pd.DataFrame:
    """Five samples of one problem (gold 3): two correct, three wrong in three spellings of 1/2."""
    boxes = ["3", "\\frac{1}{2}", "0.5", "3", "1/2"]
    return pd.DataFrame({"problem_id": "q/1", "sample_idx": range(5), "gold": "3", "answer_type": "integer",
                         "response": [f"So the answer is $\\boxed{{{b}}}$." for b in boxes],
                         "n_tokens": 12, "finish_reason": "stop"})


def test_verdicts_carry_answer_groups_and_equivalent_wrong_answers_outvote_the_gold(phrases):
    from trajfusion.report.metrics import majority_vote_correct

    verdicts = evaluate.judge(equivalent_wrong_answers(), phrases, workers=0, timeout=60)
    check_verdicts(verdicts)
    assert verdicts["correct"].tolist() == [True, False, False, True, False]
    # the correct samples are one group (the gold); the wrong ones keep the verifier's group
    assert verdicts["answer_group"].tolist() == ["3", "0.5", "0.5", "3", "0.5"]
    assert not majority_vote_correct(verdicts)["q/1"]  # 3 equivalent wrong votes beat 2 correct
    by_string = verdicts.assign(answer_group=verdicts["answer"])
    assert majority_vote_correct(by_string)["q/1"]  # split by spelling, they would lose 2 : 1 : 1 : 1
def test_evaluation_keeps_lenient_extraction_whatever_the_teacher_rule():
    from tests.test_filters import UNBOXED, UNCLOSED
    from trajfusion.evaluate.scoring import judge
    from trajfusion.verify import verify_frame

    responses = ["The answer is 10.", UNBOXED, UNCLOSED]
    samples = pd.DataFrame({"problem_id": ["a", "b", "c"], "sample_idx": [0, 0, 0], "response": responses,
                            "n_tokens": [5, 30, 30], "finish_reason": ["stop"] * 3, "gold": ["10", "10", "60"]})
    teacher = verify_frame(samples, workers=0, filters={"min_reasoning_steps": 1}, answer_format="boxed")
    assert teacher["status"].tolist() == ["filtered:no_answer", "filtered:no_answer", "filtered:unclosed_think"]
    verdicts = judge(samples, ("Wait",), 0, 5.0)
    assert verdicts["status"].tolist() == ["ok"] * 3 and verdicts["correct"].all()


class FewShotBackend:
    """A base model's few-shot continuation: the answer, then a made-up next question with
    another boxed answer (what a base model writes after a few-shot prompt)."""

    @staticmethod
    def tokenizer(text, add_special_tokens=True):  # whitespace tokens, enough to count what is kept
        return {"input_ids": text.split()}

    def generate(self, prompts, n, temperature, top_p, max_new_tokens, seed, keys=None, partial=None):
        assert all(p.count("\n\n\nQuestion: ") == 8 and p.endswith("\nAnswer:") for p in prompts)
        text = (" 48 / 2 = 24 clips in May, so 48 + 24 = \\boxed{72}. The answer is 72.\n\n"
                "Question: Weng earns $12 an hour. How much did she earn for 50 minutes?\n"
                "Answer: 12 / 60 = 0.2 per minute, 0.2 * 50 = \\boxed{10}. The answer is 10.")
        return [[Completion(text, n_tokens=64, finish_reason="length")] * n for _ in prompts]


def test_a_few_shot_response_is_cut_before_the_next_question_and_judged_on_its_own_answer(phrases):
    from trajfusion.evaluate.samples import generate_samples
    from trajfusion.evaluate.scoring import judge

    bench = pd.DataFrame({"problem_id": ["gsm8k/1"], "answer": ["72"],
                          "problem": ["Natalia sold clips to 48 of her friends in April, and then she sold half as "
                                      "many clips in May. How many clips did Natalia sell altogether?"]})
    samples = generate_samples(FewShotBackend(), bench, "few_shot_cot_gsm8k", 2, 0.6, 0.95, 64, 0)
    kept = " 48 / 2 = 24 clips in May, so 48 + 24 = \\boxed{72}. The answer is 72."
    assert samples["response"].tolist() == [kept, kept]
    assert samples["n_tokens"].tolist() == [18, 18] and samples["finish_reason"].tolist() == ["stop", "stop"]
    verdicts = judge(samples, phrases, workers=0, timeout=5)
    assert verdicts["answer"].tolist() == ["72", "72"] and verdicts["correct"].all()
