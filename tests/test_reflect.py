"""trajfusion.reflect (TAPO micro-reflective trajectories): selection, the shared y*, the rule-based
constructor on hand-made and real samples, parsing and rejection of constructor replies, the
model path on the tiny model, determinism and the loss mask of the kept prefix."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from trajfusion import cli
from trajfusion.contracts import REFLECTED_EXAMPLE, check_records
from trajfusion.fuse import FuseSettings, fuse_frame, parse_alpha, validate_verified
from trajfusion.fuse.inputs import FrameTexts
from trajfusion.io import InputError
from trajfusion.reflect import ReflectSettings, reflect_frame
from trajfusion.reflect.build import construct_from_replies, load_candidates
from trajfusion.reflect.construct import REJECTIONS, Construction, Rejection, render
from trajfusion.reflect.model import judge_reconstructions, parse_reply
from trajfusion.reflect.rule import construct
from trajfusion.reflect.selection import plan_reflection
from trajfusion.reflect.steps import split_steps

# 24 problems x 4 samples of the embedded default's teacher (SmolLM2-135M), verified by the
# pipeline (`snakemake results/verified/smollm2-135m/embedded.parquet`, 2026-12-03).
REAL = Path(__file__).parent / "fixtures" / "embedded_verified.jsonl"


def traj(pid, idx, answer, correct, n_tokens=10, status="ok", group=None, response=None):
    incorrect_ok = status == "ok" and not correct
    return {"problem_id": pid, "sample_idx": idx, "problem": f"Problem {pid}?",
            "response": response if response is not None else f"{pid}#{idx} gives {answer} = {answer}",
            "n_tokens": n_tokens, "finish_reason": "stop", "gold": "7", "answer": answer, "correct": correct,
            "status": status, "answer_group": (group or answer) if incorrect_ok else None}


def problem(pid, n_correct, n_incorrect):
    return [traj(pid, i, "7", True) for i in range(n_correct)] + \
        [traj(pid, n_correct + i, "5", False) for i in range(n_incorrect)]


@pytest.fixture(scope="module")
def real():
    return pd.read_json(REAL, lines=True, dtype={"answer": str, "answer_group": str, "gold": str})


def plan_of(df, **kw):
    return plan_reflection(validate_verified(df), ReflectSettings(**kw))


# -- selection ---------------------------------------------------------------------------

def test_band_is_inclusive_and_needs_both_kinds():
    df = pd.DataFrame([*problem("a", 0, 4), *problem("b", 1, 3), *problem("c", 2, 2), *problem("d", 3, 1),
                       *problem("e", 4, 0)])
    plan, counts = plan_of(df)
    assert plan.index.tolist() == ["b", "c", "d"]  # accuracies 1/4, 2/4, 3/4
    assert counts == {"problems": 5, "with_correct_and_incorrect": 3, "candidates": 3, "out_of_band": 0}
    plan, counts = plan_of(df, band_low=0.5, band_high=0.5)
    assert plan.index.tolist() == ["c"] and counts["out_of_band"] == 2
    with pytest.raises(InputError, match="band-low"):
        ReflectSettings(band_low=0.8, band_high=0.2)


def test_band_ignores_filtered_samples():
    # 1 correct of 2 ok samples (0.5); the two filtered ones do not count in K
    df = pd.DataFrame([traj("p", 0, "7", True), traj("p", 1, "5", False),
                       traj("p", 2, "7", False, status="filtered:truncated"),
                       traj("p", 3, None, False, status="filtered:truncated")])
    plan, _ = plan_of(df, band_low=0.5, band_high=0.5)
    assert plan.index.tolist() == ["p"]


def test_incorrect_rules():
    df = pd.DataFrame([traj("p", 0, "7", True), traj("p", 1, "3", False, n_tokens=30),
                       traj("p", 2, "3", False, n_tokens=20), traj("p", 3, "4", False, n_tokens=5),
                       traj("p", 4, "3", False, n_tokens=20)])
    # the largest group (answer 3, 3 members): its shortest, the tie 20/20 by sample_idx
    plan, _ = plan_of(df, band_low=0.0, band_high=1.0)
    assert plan.loc["p", "incorrect_index"] == 2 and plan.loc["p", "incorrect_answer"] == "3"
    plan, _ = plan_of(df, band_low=0.0, band_high=1.0, incorrect_rule="shortest")
    assert plan.loc["p", "incorrect_index"] == 3


def test_y_plus_is_fusions_y_star_on_real_samples(real):
    rows, _ = reflect_frame(real, ReflectSettings(seed=0))
    plan, _ = plan_reflection(validate_verified(real), ReflectSettings(seed=0, band_low=0.0, band_high=1.0))
    for fuse_settings in (FuseSettings(k_max=0, seed=0), FuseSettings(k_max=4, alpha=parse_alpha("2"), seed=0)):
        fused, _ = fuse_frame(real, fuse_settings)
        y_star = {row["problem_id"]: row["correct_index"] for row in fused}
        assert len(plan) == 7 and all(plan["correct_index"][pid] == y_star[pid] for pid in plan.index)
        assert all(row["correct_index"] == y_star[row["problem_id"]] for row in rows)


def test_cap_keeps_a_seeded_subset(real):
    rows, summary = reflect_frame(real, ReflectSettings())
    capped, capped_summary = reflect_frame(real, ReflectSettings(max_constructions=2))
    assert len(capped) == 2 and capped_summary["capped"] == summary["constructed"] - 2
    assert all(row in rows for row in capped)
    assert capped == reflect_frame(real, ReflectSettings(max_constructions=2))[0]
    assert [r["problem_id"] for r in capped] == sorted(r["problem_id"] for r in capped)


# -- the rule-based constructor ----------------------------------------------------------

Y_MINUS = "First 3 + 4 = 7.\nThen 7 * 2 = 15.\nSo the answer is 15."
Y_PLUS = "We add: 3 + 4 = 7.\nDoubling, 7 * 2 = 14.\nThe answer is 14."


def rule_on(incorrect, correct, answer="14", wrong="15"):
    return construct(split_steps(incorrect, "lines"), incorrect, split_steps(correct, "lines"), correct, answer,
                     wrong)


def test_rule_keeps_the_agreeing_prefix_and_continues_after_the_matching_point():
    built = rule_on(Y_MINUS, Y_PLUS)
    assert built == Construction(2, 3, "First 3 + 4 = 7.", "Step 2 is wrong: it arrives at 15, which does not "
                                 "follow from the problem. Step 1 is correct and kept. The reasoning is redone from "
                                 "there.", "Doubling, 7 * 2 = 14.\nThe answer is 14.", "14")
    text, span = render(built, "analysis", "reconstruction")
    assert text == ("<think>\nFirst 3 + 4 = 7.\n<analysis>\n" + built.analysis + "\n</analysis>\n<reconstruction>\n"
                    "Doubling, 7 * 2 = 14.\nThe answer is 14.\n</reconstruction>\n</think>\nThe answer is \\boxed{14}.")
    assert text[span[0]:span[1]] == "First 3 + 4 = 7."


def test_rule_failure_at_the_first_step_keeps_nothing():
    built = rule_on("3 + 4 = 8\nanswer 16", Y_PLUS, wrong="16")
    assert built.failure_step == 1 and built.prefix == ""
    assert built.reconstruction == Y_PLUS  # no y+ step matched: all of y+
    text, span = render(built, "a", "r")
    assert span[0] == span[1] == len("<think>\n") and text.startswith("<think>\n<a>\n")


def test_rule_falls_back_to_the_step_stating_the_wrong_answer():
    built = rule_on("Add three and four.\nThat makes 8 in all.", "3 + 4 = 7\nSo 7", answer="7", wrong="8")
    assert built.failure_step == 2 and built.prefix == "Add three and four."


def test_rule_rejections():
    # every result of y- is stated by y+, and so is its final answer
    assert rule_on("3 + 4 = 7\nso 14", Y_PLUS, wrong="14") == Rejection("no_contradiction")
    # the kept prefix already reaches y+'s last step: nothing is left to continue with
    assert rule_on("7 * 2 = 14\n14 + 1 = 15", "7 * 2 = 14", answer="14") == Rejection("empty_continuation")


def test_rule_on_real_samples(real):
    rows, summary = reflect_frame(real, ReflectSettings())
    assert (summary["problems"], summary["candidates"], summary["constructed"]) == (24, 7, 5)
    assert summary["rejections"] == {"no_contradiction": 1, "empty_continuation": 1}
    assert summary["constructor"] == "rule"
    list(check_records(rows, REFLECTED_EXAMPLE, "rows"))
    by_key = real.set_index(["problem_id", "sample_idx"])
    for row in rows:
        incorrect = by_key.loc[(row["problem_id"], row["incorrect_index"]), "response"].strip()
        correct = by_key.loc[(row["problem_id"], row["correct_index"])]
        assert not by_key.loc[(row["problem_id"], row["incorrect_index"]), "correct"] and correct["correct"]
        steps = split_steps(incorrect, "lines")
        assert 1 <= row["failure_step"] <= row["n_steps"] == len(steps)
        text = row["messages"][1]["content"]
        start, end = row["prefix_span"]
        kept = steps[:row["failure_step"] - 1]
        assert text[start:end] == (incorrect[kept[0].start:kept[-1].end] if kept else "")
        assert text.endswith(f"</reconstruction>\n</think>\nThe answer is \\boxed{{{correct['answer']}}}.")
        assert f"Step {row['failure_step']} is wrong" in text


def test_no_construction_is_a_clear_error(real):
    with pytest.raises(InputError, match="no micro-reflective trajectory was constructed.*widen the band"):
        reflect_frame(real, ReflectSettings(band_low=1.0, band_high=1.0))


# -- parsing the constructor model's reply -------------------------------------------------

GOOD = "<analysis>Step 2 is wrong: 7 * 2 is 14.</analysis>\n<reconstruction>7 * 2 = 14, so \\boxed{14}</reconstruction>"


@pytest.mark.parametrize("reply, reason", [
    ("I think step 2 is wrong.", "missing_tags"),
    ("<analysis>Step 2</analysis>", "missing_tags"),
    ("<analysis>Step 2</analysis><reconstruction>14", "missing_tags"),
    (GOOD + "<analysis>Step 1</analysis>", "duplicate_tags"),
    ("<analysis>Step 2 <analysis>Step 1</analysis></analysis><reconstruction>14</reconstruction>", "duplicate_tags"),
    ("<analysis>Step 2 <reconstruction>14</reconstruction></analysis>", "nested_tags"),
    ("<reconstruction>14</reconstruction><analysis>Step 2</analysis>", "nested_tags"),
    ("</analysis>Step 2<analysis><reconstruction>14</reconstruction>", "nested_tags"),
    ("<analysis>  </analysis><reconstruction>14</reconstruction>", "empty_analysis"),
    ("<analysis>The second line is wrong.</analysis><reconstruction>14</reconstruction>", "no_step"),
    ("<analysis>Step 0 is wrong.</analysis><reconstruction>14</reconstruction>", "step_out_of_range"),
    ("<analysis>Step 4 is wrong.</analysis><reconstruction>14</reconstruction>", "step_out_of_range"),
    ("<analysis>Step " + "9" * 5000 + " is wrong.</analysis><reconstruction>14</reconstruction>",
     "step_out_of_range"),
    ("<analysis>Step 2 is wrong.</analysis><reconstruction>\n </reconstruction>", "empty_reconstruction"),
])
def test_adversarial_replies_are_rejected(reply, reason):
    assert parse_reply(reply, 3, "analysis", "reconstruction") == Rejection(reason)
    assert reason in REJECTIONS["model"]


def test_a_good_reply_parses():
    reply = parse_reply(GOOD, 3, "analysis", "reconstruction")
    assert (reply.step, reply.analysis, reply.reconstruction) == (2, "Step 2 is wrong: 7 * 2 is 14.",
                                                                  "7 * 2 = 14, so \\boxed{14}")
    assert parse_reply("<analysis>step 003</analysis><reconstruction>x</reconstruction>", 3, "analysis",
                       "reconstruction").step == 3


def test_reconstructions_are_judged_by_the_verifier():
    replies = {pid: parse_reply(f"<analysis>Step 1</analysis><reconstruction>{text}</reconstruction>", 1,
                                "analysis", "reconstruction")
               for pid, text in {"right": "so \\boxed{14}", "wrong": "so \\boxed{15}", "none": "no idea",
                                 "huge": "\\boxed{" + "9" * 400 + "}"}.items()}
    judged = judge_reconstructions(replies, dict.fromkeys(replies, "14"), workers=1, timeout=5.0)
    assert judged == {"right": "14", "wrong": Rejection("wrong_answer"), "none": Rejection("no_answer"),
                      "huge": Rejection("wrong_answer")}


GENERATION = {"template": "chat", "backend": "hf", "temperature": 0.7, "top_p": 0.95, "max_new_tokens": 8, "seed": 0,
              "dtype": "float32"}


def test_replies_become_constructions_on_real_candidates(real):
    settings = ReflectSettings(constructor="model", generation=GENERATION, workers=1)
    meta = validate_verified(real)
    plan, _ = plan_reflection(meta, settings)
    candidates = load_candidates(plan, meta, FrameTexts(real), settings, "real")[:3]
    golds = [c.gold for c in candidates]
    replies = [f"<analysis>Step 1 is wrong.</analysis><reconstruction>So \\boxed{{{golds[0]}}}</reconstruction>",
               f"<analysis>Step 1 is wrong.</analysis><reconstruction>So \\boxed{{{golds[1]}1}}</reconstruction>",
               "<analysis>Step 99 is wrong.</analysis><reconstruction>x</reconstruction>"]
    built = construct_from_replies(candidates, replies, settings)
    first = built[candidates[0].pid]
    assert isinstance(first, Construction) and first.failure_step == 1 and first.prefix == ""
    assert first.answer == golds[0] and first.reconstruction == f"So \\boxed{{{golds[0]}}}"
    assert built[candidates[1].pid] == Rejection("wrong_answer")
    assert built[candidates[2].pid] == Rejection("step_out_of_range")


def test_model_constructor_runs_the_real_hf_backend(real, tiny_model_dir):
    from trajfusion.reflect.build import construct_by_model

    settings = ReflectSettings(constructor="model", generation=GENERATION, workers=1)
    meta = validate_verified(real)
    plan, _ = plan_reflection(meta, settings)
    candidates = load_candidates(plan, meta, FrameTexts(real), settings, "real")
    built = construct_by_model(candidates, settings, tiny_model_dir, None)
    # a random tiny model writes no tags in 8 tokens: every candidate is rejected for it
    assert list(built.values()) == [Rejection("missing_tags")] * 7
    with pytest.raises(InputError, match=r"rejections \{'missing_tags': 7\}"):
        reflect_frame(real, settings, model_dir=tiny_model_dir)


# -- determinism, the command line ---------------------------------------------------------

def test_cli_output_is_byte_identical_across_runs(tmp_path):
    outputs = []
    for run in ("a", "b"):
        out, summary = tmp_path / f"{run}.jsonl", tmp_path / f"{run}.summary.json"
        assert cli.main(["reflect", "--input", str(REAL), "--output", str(out), "--summary", str(summary)]) == 0
        outputs.append((out.read_bytes(), summary.read_bytes()))
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0][1])["constructed"] == 5


def test_cli_refuses_bad_settings(tmp_path):
    args = ["reflect", "--input", str(REAL), "--output", str(tmp_path / "o.jsonl"), "--summary", str(tmp_path / "s")]
    assert cli.main([*args, "--constructor", "model"]) == 2  # no --generation
    assert cli.main([*args, "--analysis-tag", "a b"]) == 2


# -- the loss on the kept prefix -----------------------------------------------------------

@pytest.mark.parametrize("loss_on_prefix", [True, False])
def test_prefix_tokens_get_no_loss_when_asked(real, tmp_path, tiny_model_dir, loss_on_prefix):
    from transformers import AutoTokenizer

    from trajfusion.templates import load_template
    from trajfusion.train import dataset as tds

    out, summary = tmp_path / "tapo.jsonl", tmp_path / "tapo.summary.json"
    flag = "--loss-on-prefix" if loss_on_prefix else "--no-loss-on-prefix"
    assert cli.main(["reflect", "--input", str(REAL), "--output", str(out), "--summary", str(summary), flag]) == 0
    examples = tds.load_fused_examples(out)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows, stats = tds.build_training_rows(examples, load_template("chat"), tokenizer, 1024)
    assert stats.n_used == 5
    with_prefix = 0
    for example, row in zip(examples, rows):
        record = next(json.loads(line) for line in out.read_text().splitlines()
                      if json.loads(line)["problem_id"] == example.problem_id)
        start, end = record["prefix_span"]
        completion = example.assistant + load_template("chat").suffix(tokenizer)
        offsets = tokenizer(completion, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        masked = [i for i, (a, b) in enumerate(offsets) if a < end and b > start]
        completion_labels = row["labels"][-len(offsets):]
        unlearned = [i for i, label in enumerate(completion_labels) if label == -100]
        if end > start:
            with_prefix += 1
            assert masked and tokenizer.decode([row["input_ids"][-len(offsets) + i] for i in masked]).strip() == \
                example.assistant[start:end]
        # the prefix's tokens, and only they, are -100 in the completion when it is left out of the loss
        assert unlearned == ([] if loss_on_prefix else masked)
    assert with_prefix == 3  # of the 5 constructions, 3 keep steps of y- (failure_step > 1)
