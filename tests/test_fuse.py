"""Hand-built cases pinning every rule of trajfusion.fuse (selection, text, summary, CLI)."""

from __future__ import annotations

import json
from fractions import Fraction

import pandas as pd
import pytest

from trajfusion import cli
from trajfusion.fuse import (
    CalibrateSettings,
    FuseSettings,
    ParquetTexts,
    calibrate,
    calibrate_alpha,
    format_alpha,
    fuse_file,
    fuse_frame,
    fuse_text,
    fusion_count,
    load_phrases,
    parse_alpha,
    plan_fusion,
    validate_verified,
)
from trajfusion.io import InputError, write_parquet

ERR, OK_, CERT = "ERR-PHRASE", "OK-PHRASE", "CERT-PHRASE"


def traj(pid, idx, answer, correct, n_tokens=10, status="ok", group=None, response=None):
    """One verified row; incorrect ok rows get answer_group = group or answer."""
    incorrect_ok = status == "ok" and not correct
    return {"problem_id": pid, "sample_idx": idx, "problem": f"Problem {pid}?",
            "response": response if response is not None else f"{pid}#{idx} says {answer}",
            "n_tokens": n_tokens, "finish_reason": "stop", "gold": "G", "answer": answer,
            "correct": correct, "status": status,
            "answer_group": (group or answer) if incorrect_ok else None}


def table(*rows):
    return pd.DataFrame(list(rows))


def settings(k_max=4, alpha="1", strategy="highdiv", seed=0, certainty_prob=0.0):
    return FuseSettings(k_max=k_max, alpha=None if alpha is None else parse_alpha(alpha),
                        strategy=strategy, seed=seed, certainty_prob=certainty_prob)


def plan_of(df, **kw):
    plan, _ = plan_fusion(validate_verified(df), settings(**kw))
    return plan


@pytest.fixture
def single_phrases(tmp_path):
    path = tmp_path / "phrases.yaml"
    path.write_text(f"error_recognition: [{ERR}]\nsuccess_confirmation: [{OK_}]\ncertainty: [{CERT}]\n")
    return load_phrases(path)


def diverse_problem(pid="p"):
    """4 correct; incorrect groups: A (sizes 3: 30, 20, 25 tokens), B (2: 15, 40), C (1: 50)."""
    return [traj(pid, 0, "G", True), traj(pid, 1, "G", True), traj(pid, 2, "G", True), traj(pid, 3, "G", True),
            traj(pid, 4, "A", False, 30), traj(pid, 5, "A", False, 20), traj(pid, 6, "A", False, 25),
            traj(pid, 7, "B", False, 15), traj(pid, 8, "B", False, 40), traj(pid, 9, "C", False, 50)]


# ----------------------------------------------------------------------- k(x) rule


def test_fusion_count_is_exact_where_floats_round_down():
    # K = 12 ok, |Y−| = 8 in u = 5 groups, alpha = 0.6: 0.6 * 8/12 * 5 is exactly 2,
    # but the float product is 1.9999999999999998.
    assert int(0.6 * (8 / 12) * 5) == 1
    assert fusion_count(8, 12, 5, Fraction("0.6"), 4) == 2
    rows = [traj("p", i, "G", True) for i in range(4)]
    rows += [traj("p", 4 + i, a, False) for i, a in enumerate("AAAABCDE")]
    plan = plan_of(table(*rows), alpha=0.6)  # a float alpha goes through str(): 3/5
    assert plan.loc["p", "k"] == 2 and plan.loc["p", "n_errors"] == 2


def test_k_is_capped_at_k_max_and_by_available_errors():
    df = table(*diverse_problem())
    assert plan_of(df, k_max=2, alpha="100").loc["p", "n_errors"] == 2
    plan = plan_of(df, k_max=10, alpha="100")
    assert plan.loc["p", "k"] == 10 and plan.loc["p", "n_errors"] == 6  # Y− exhausted


def test_k_zero_when_no_errors_or_small_alpha(single_phrases):
    df = table(traj("clean", 0, "G", True), traj("clean", 1, "G", True),
               *diverse_problem("p"))
    # p: r = 6/10, u = 3, r*u = 9/5; alpha = 1/2 gives floor(0.9) = 0.
    rows, summary = fuse_frame(df, settings(k_max=4, alpha="0.5"), single_phrases)
    assert [r["n_errors"] for r in rows] == [0, 0]
    assert summary["k_distribution"] == {"0": 2}
    assert plan_of(df, alpha="5/9").loc["p", "k"] == 1  # exactly at the first breakpoint


# ---------------------------------------------------------------- error ordering


def test_group_order_size_then_shortest_then_answer():
    rows = [traj("p", 0, "G", True)]
    # Each tie-break contradicts the ones after it, so a missing or reordered key shows.
    rows += [traj("p", 1, "Y", False, 30), traj("p", 2, "Y", False, 31)]  # size 2, shortest 30
    rows += [traj("p", 3, "Z", False, 12), traj("p", 4, "Z", False, 99)]  # size 2, shortest 12
    rows += [traj("p", 5, "D", False, 7), traj("p", 6, "C", False, 7)]  # size 1, tie on tokens
    rows += [traj("p", 7, "E", False, 5)]  # size 1, shortest overall
    plan = plan_of(table(*rows), k_max=5, alpha="100")
    assert plan.loc["p", "error_indices"] == [3, 1, 7, 6, 5]  # Z, Y, E, C, D


def test_highdiv_round_robin_continues_past_u_groups():
    plan = plan_of(table(*diverse_problem()), k_max=5, alpha="100")
    # A's members by length: 5 (20), 6 (25), 4 (30); B: 7 (15), 8 (40); C: 9.
    assert plan.loc["p", "error_indices"] == [5, 7, 9, 6, 8]


def test_lowdiv_exhausts_largest_group_then_spills():
    plan = plan_of(table(*diverse_problem()), k_max=4, alpha="100", strategy="lowdiv")
    assert plan.loc["p", "error_indices"] == [5, 6, 4, 7]
    assert plan_of(table(*diverse_problem()), k_max=2, alpha="100",
                   strategy="lowdiv").loc["p", "error_indices"] == [5, 6]


def test_members_with_equal_length_taken_by_sample_idx():
    rows = [traj("p", 0, "G", True), traj("p", 9, "A", False, 10), traj("p", 3, "A", False, 10),
            traj("p", 5, "A", False, 10)]
    plan = plan_of(table(*rows), k_max=3, alpha="100", strategy="lowdiv")
    assert plan.loc["p", "error_indices"] == [3, 5, 9]


def test_answer_group_column_merges_equivalent_answers():
    rows = [traj("p", 0, "G", True), traj("p", 1, "G", True),
            traj("p", 2, "0.5", False, group="\\frac{1}{2}"), traj("p", 3, "\\frac{1}{2}", False)]
    # With groups: r = 1/2, u = 1 -> alpha 2 gives k = 1. By raw answer u = 2 -> k = 2.
    assert plan_of(table(*rows), alpha="2").loc["p", "k"] == 1
    assert plan_of(table(*rows).drop(columns="answer_group"), alpha="2").loc["p", "k"] == 2


# -------------------------------------------------------- membership of K, Y+, Y−


def test_filtered_and_timeout_trajectories_are_not_counted():
    rows = [traj("p", 0, "G", True), traj("p", 1, "G", True),
            traj("p", 2, "A", False, 50), traj("p", 3, "B", False, 60)]
    rows += [traj("p", 4 + i, "X", False, 1, status=s) for i, s in
             enumerate(["filtered:repetition", "filtered:truncated", "timeout", "error"])]
    rows += [traj("only_bad", 0, "X", False, status="filtered:no_answer"),
             traj("only_bad", 1, "Y", False, status="timeout")]
    df = table(*rows)
    meta = validate_verified(df)
    plan, dropped = plan_fusion(meta, settings(k_max=4, alpha="1"))
    # K = 4 (not 8): r = 1/2, u = 2 -> k = 1; counting the 4 others would give floor(0.75) = 0.
    assert plan.loc["p", "k"] == 1 and plan.loc["p", "error_indices"] == [2]
    assert list(plan.index) == ["p"] and dropped == 1
    plan4, _ = plan_fusion(meta, settings(k_max=8, alpha="10"))
    assert sorted(plan4.loc["p", "error_indices"]) == [2, 3]


def test_problems_without_correct_are_dropped_and_counted():
    df = table(traj("a", 0, "G", True), traj("b", 0, "X", False), traj("b", 1, "Y", False),
               traj("c", 0, "G", False, status="filtered:repetition"))
    rows, summary = fuse_frame(df, settings())
    assert [r["problem_id"] for r in rows] == ["a"]
    assert summary["dropped_no_correct"] == 2 and summary["problems"] == 1


# ------------------------------------------------------------------------- y*


def many_problems(n=40, seed_shift=0):
    rows = []
    for p in range(n):
        pid = f"q{p:03d}"
        rows += [traj(pid, i, "G", True, 10 + i) for i in range(8)]
        rows += [traj(pid, 8 + i, a, False, 5 + i) for i, a in enumerate("AABC")]
    return table(*rows)


def test_same_correct_trajectory_across_rft_and_fusion_variants():
    df = many_problems()
    variants = [settings(k_max=0, alpha=None, seed=3), settings(k_max=1, alpha="1", seed=3),
                settings(k_max=4, alpha="3", seed=3), settings(k_max=4, alpha="3", strategy="lowdiv", seed=3)]
    chosen = [[r["correct_index"] for r in fuse_frame(df, v)[0]] for v in variants]
    assert all(c == chosen[0] for c in chosen)
    assert len(set(chosen[0])) > 1  # the draw is not always the first correct trajectory
    other_seed = [r["correct_index"] for r in fuse_frame(df, settings(k_max=0, alpha=None, seed=4))[0]]
    assert other_seed != chosen[0]


def test_correct_choice_ignores_row_order_and_non_ok_rows():
    df = many_problems(10)
    base = fuse_frame(df, settings(seed=1))[0]
    shuffled = df.sample(frac=1.0, random_state=7)
    extra = pd.concat([shuffled, table(*[traj(f"q{p:03d}", 50, "Z", False, status="timeout")
                                        for p in range(10)])])
    assert fuse_frame(shuffled, settings(seed=1))[0] == base
    assert [r["correct_index"] for r in fuse_frame(extra, settings(seed=1))[0]] == \
           [r["correct_index"] for r in base]


# -------------------------------------------------------------------------- text


def test_exact_fused_text_with_phrases_and_whitespace_stripping(single_phrases):
    rows = [traj("p", 0, "42", True, response="Correct work.\n\\boxed{42}\n\n  "),
            traj("p", 1, "7", False, 5, response="  Wrong work 7. \n"),
            traj("p", 2, "9", False, 6, response="Wrong work 9.")]
    out, _ = fuse_frame(table(*rows), settings(k_max=4, alpha="3"), single_phrases)
    expected = ("<think>\nWrong work 7.\nERR-PHRASE\nWrong work 9.\nERR-PHRASE\n"
                "Correct work.\n\\boxed{42}\nOK-PHRASE\n</think>\nThe answer is \\boxed{42}.")
    assert out[0]["messages"] == [{"role": "user", "content": "Problem p?"},
                                  {"role": "assistant", "content": expected}]
    assert out[0]["n_errors"] == 2 and out[0]["error_indices"] == [1, 2] and out[0]["correct_index"] == 0
    with_certainty, _ = fuse_frame(table(*rows), settings(k_max=4, alpha="3", certainty_prob=1.0),
                                   single_phrases)
    assert with_certainty[0]["messages"][1]["content"] == expected.replace(
        "OK-PHRASE\n", "OK-PHRASE\nCERT-PHRASE\n")


def test_k_zero_text_has_no_phrases(single_phrases):
    rows = [traj("p", 0, "42", True, response="Work.\n\n"), traj("p", 1, "7", False)]
    for s in (settings(k_max=0, alpha=None), settings(k_max=4, alpha="1", certainty_prob=1.0)):
        out, _ = fuse_frame(table(*rows), s, single_phrases)
        assert out[0]["messages"][1]["content"] == "<think>\nWork.\n</think>\nThe answer is \\boxed{42}."


def test_fuse_text_requires_one_phrase_per_error():
    with pytest.raises(ValueError):
        fuse_text(["e1", "e2"], "c", "1", ["p"], "ok")


def test_phrases_are_drawn_per_problem_and_reproducibly():
    df = many_problems(30)
    a = fuse_frame(df, settings(k_max=4, alpha="3", seed=5))[0]
    b = fuse_frame(df, settings(k_max=4, alpha="3", seed=5, strategy="lowdiv"))[0]
    phrases = load_phrases()
    contents = [r["messages"][1]["content"] for r in a]
    used = {p for c in contents for p in phrases.error_recognition if p in c}
    assert len(used) > 1  # not one fixed phrase
    # Phrase draws depend only on (seed, problem_id): same slots, same phrases across strategies.
    first_phrase = [next(p for p in phrases.error_recognition if p in c) for c in contents]
    assert first_phrase == [next(p for p in phrases.error_recognition if p in r["messages"][1]["content"])
                            for r in b]


def test_default_phrases_are_the_papers_table5():
    phrases = load_phrases()
    assert phrases.error_recognition == (
        "Wait... that doesn't seem right. Let's try again.",
        "Hmm, maybe we're missing something. Think carefully.",
        "That doesn't add up. Let's give it another go.",
        "Hold on. That might not be correct. Try again.")
    assert phrases.success_confirmation == ("That makes sense now.", "Yes, this is correct.",
                                            "Ah, that makes sense now.")
    assert phrases.certainty == ("I'm absolutely certain this is correct.",
                                 "No doubt about it, this answer is right.", "I fully trust this result.")


# ------------------------------------------------------------------------ summary


def test_summary_numbers(single_phrases):
    df = table(*diverse_problem("p"), traj("q", 0, "G", True, 7, response="abc"),
               traj("z", 0, "X", False))
    rows, summary = fuse_frame(df, settings(k_max=2, alpha="2"), single_phrases)
    # p: r*u = 9/5, alpha 2 -> floor(3.6) = 3, capped at 2: errors 5 (20 tok) and 7 (15 tok).
    assert [r["n_errors"] for r in rows] == [2, 0]
    chars = [len(r["messages"][1]["content"]) for r in rows]
    assert summary == {
        "problems": 2, "dropped_no_correct": 1, "mean_errors": 1.0, "k_distribution": {"0": 1, "2": 1},
        "problems_short_of_k": 0, "mean_response_chars": sum(chars) / 2,
        "mean_fused_tokens": ((10 + 20 + 15) + 7) / 2, "alpha": "2", "k_max": 2, "strategy": "highdiv",
        "seed": 0, "certainty_prob": 0.0, "keep_final": False, "phrases": "phrases.yaml",
        "phrases_sha256": summary["phrases_sha256"]}
    assert all(r["alpha"] == "2" and r["k_max"] == 2 for r in rows)


# -------------------------------------------------------------------- calibration


def calibration_table():
    """Three kept problems with r*u = 9/5 (p), 1/2 (q), 0 (clean); one dropped."""
    rows = diverse_problem("p")
    rows += [traj("q", 0, "G", True), traj("q", 1, "A", False), traj("q", 2, "G", True), traj("q", 3, "G", True)]
    rows += [traj("clean", 0, "G", True), traj("dropped", 0, "A", False)]
    return table(*rows)


def test_calibrate_alpha_hits_target_exactly():
    df = calibration_table()
    # Breakpoints: p at m*5/9 (m = 1..4 with k_max 4), q at 4 (|Y−| = 1), over 3 problems.
    # Target 1 needs 3 errors in total: p's third breakpoint, alpha = 15/9.
    assert calibrate_alpha(df, 4, "1") == Fraction(5, 3)
    result = calibrate(validate_verified(df), CalibrateSettings(k_max=4, target_errors=1))
    assert result.achieved_mean_errors == 1 and result.mean_errors_below == Fraction(2, 3)
    assert result.alpha_next == Fraction(20, 9) and result.max_mean_errors == Fraction(5, 3)
    for alpha, mean in ((result.alpha, 1.0), (result.alpha - Fraction(1, 10**9), 2 / 3)):
        assert fuse_frame(df, FuseSettings(4, alpha))[1]["mean_errors"] == pytest.approx(mean)
    assert calibrate_alpha(df, 4, "1", strategy="lowdiv") == result.alpha
    with pytest.raises(InputError, match="unattainable"):
        calibrate_alpha(df, 4, 1.7)
    with pytest.raises(InputError, match="target-errors"):
        calibrate_alpha(df, 4, 0)


def test_alpha_text_round_trips_exactly():
    assert parse_alpha(0.1) == Fraction(1, 10) and format_alpha(Fraction(1, 10)) == "0.1"
    assert format_alpha(Fraction(16, 21)) == "16/21" and parse_alpha("16/21") == Fraction(16, 21)
    assert format_alpha(Fraction(1, 8)) == "0.125" and format_alpha(Fraction(3)) == "3"
    assert format_alpha(Fraction(2, 5)) == "0.4" and format_alpha(Fraction(51, 20)) == "2.55"
    for bad in ("0", "-1", "abc", "nan", "inf", True, None):
        with pytest.raises(InputError, match="alpha"):
            parse_alpha(bad)


# -------------------------------------------------------------------- validation


@pytest.mark.parametrize("mutate, expected", [
    (lambda df: df.drop(columns="status"), r"missing required column\(s\) \['status'\]"),
    (lambda df: df.assign(answer=df["answer"].where(df["sample_idx"] != 2, None)),
     r"record 3 \(problem_id='p', sample_idx=2\): field 'answer' breaks rule 'ok-has-answer'"),
    (lambda df: df.assign(answer_group=df["answer_group"].where(df["sample_idx"] != 4, None)),
     r"record 5 \(problem_id='p', sample_idx=4\): field 'answer_group' breaks rule 'incorrect-has-group'"),
    (lambda df: df.assign(sample_idx=df["sample_idx"].where(df["sample_idx"] != 3, 1)),
     r"record 4 \(problem_id='p', sample_idx=1\): duplicate key \(problem_id, sample_idx\), also record 2"),
    (lambda df: df.assign(n_tokens=df["n_tokens"].astype(object).where(df["sample_idx"] != 5, "x")),
     r"record 6 \(problem_id='p', sample_idx=5\): field 'n_tokens' must be an integer, got 'x'"),
    (lambda df: df.assign(correct=df["correct"].astype(object).where(df["sample_idx"] != 6, "yes")),
     r"record 7 \(problem_id='p', sample_idx=6\): field 'correct' must be true or false, got 'yes'"),
    (lambda df: df.assign(status=df["status"].where(df["sample_idx"] != 0, "timeout")),
     r"record 1 \(problem_id='p', sample_idx=0\): field 'correct' breaks rule 'correct-only-if-ok'"),

    # The contract wants n_tokens on every row, a timed-out one too (the verifier always writes it).
    (lambda df: df.assign(status=df["status"].where(df["sample_idx"] != 9, "timeout"),
                          n_tokens=df["n_tokens"].where(df["sample_idx"] != 9, None)),
     r"record 10 \(problem_id='p', sample_idx=9\): field 'n_tokens' is null"),
])
def test_bad_tables_name_record_and_field(mutate, expected):
    df = mutate(table(*diverse_problem()))
    with pytest.raises(InputError, match=expected) as info:
        validate_verified(df, "verified.jsonl")
    assert str(info.value).startswith("verified.jsonl: ") and "\n" not in str(info.value)


def test_record_number_points_at_the_bad_row():
    df = table(*diverse_problem())
    df.loc[7, "answer"] = None
    with pytest.raises(InputError, match=r"record 8 \(problem_id='p', sample_idx=7\): field 'answer'"):
        validate_verified(df, "v.parquet")


def test_texts_of_the_fused_rows_name_their_record(tmp_path):
    """problem/response are fetched for the chosen rows only, in memory and from Parquet."""
    df = table(traj("p", 0, "G", True), traj("q", 0, "G", True), traj("q", 1, "A", False))
    df.loc[2, "response"] = None  # q's only error, fused with k_max 1
    expected = r"record 3 \(problem_id='q', sample_idx=1\): field 'response' is null$"
    with pytest.raises(InputError, match="^<table>: " + expected):
        fuse_frame(df, settings(k_max=1, alpha="100"))
    write_parquet(df, tmp_path / "v.parquet")
    with pytest.raises(InputError, match=r"v.parquet: " + expected):
        fuse_file(tmp_path / "v.parquet", tmp_path / "f.jsonl", settings(k_max=1, alpha="100"), progress=False)
    assert not (tmp_path / "f.jsonl").exists()
    df = table(traj("p", 0, "G", True), traj("q", 0, "G", True)).astype({"problem": object})
    df.loc[1, "problem"] = 5
    with pytest.raises(InputError, match=r"record 2 \(problem_id='q', sample_idx=0\): field 'problem' must be a "
                                         r"string, got 5$"):
        fuse_frame(df, settings(k_max=0, alpha=None))


def test_bad_settings_are_rejected():
    with pytest.raises(InputError, match="k-max"):
        FuseSettings(k_max=-1, alpha=Fraction(1))
    with pytest.raises(InputError, match="strategy"):
        FuseSettings(k_max=1, alpha=Fraction(1), strategy="random")
    with pytest.raises(InputError, match="alpha"):
        FuseSettings(k_max=2, alpha=None)
    with pytest.raises(InputError, match="certainty"):
        FuseSettings(k_max=2, alpha=Fraction(1), certainty_prob=1.5)


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def run_cli(monkeypatch):
    # Only this stage's module: the other stages are not needed to exercise `fuse`.
    monkeypatch.setattr(cli, "STAGE_MODULES", ("fuse",))
    return lambda *argv: cli.main([str(a) for a in argv])


def test_cli_end_to_end_on_parquet(tmp_path, run_cli):
    df = pd.concat([many_problems(12), calibration_table()]).reset_index(drop=True)
    verified = tmp_path / "verified.parquet"
    write_parquet(df, verified)
    assert run_cli("calibrate-alpha", "--input", verified, "--k-max", 4, "--target-errors", "1.5",
                   "--output", tmp_path / "alpha.json") == 0
    alpha_record = json.loads((tmp_path / "alpha.json").read_text())
    assert alpha_record["achieved_mean_errors"] >= 1.5 > alpha_record["mean_errors_below"]
    assert alpha_record["k_max"] == 4 and alpha_record["target"] == 1.5

    out = tmp_path / "tf.jsonl"
    args = ["fuse", "--input", verified, "--output", out, "--k-max", 4, "--alpha-file", tmp_path / "alpha.json",
            "--strategy", "highdiv", "--seed", 11]
    assert run_cli(*args) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    summary = json.loads((tmp_path / "tf.summary.json").read_text())
    kept = sorted(set(df["problem_id"]) - {"dropped"})
    assert [r["problem_id"] for r in rows] == kept
    assert summary["mean_errors"] == alpha_record["achieved_mean_errors"]
    assert {r["alpha"] for r in rows} == {alpha_record["alpha"]} == {summary["alpha"]}
    assert summary["dropped_no_correct"] == 1 and summary["problems"] == len(rows) == 15

    first = out.read_bytes()
    assert run_cli(*args, "--summary", tmp_path / "s2.json") == 0
    assert out.read_bytes() == first  # byte-identical rebuild

    rft = tmp_path / "rft.jsonl"
    assert run_cli("fuse", "--input", verified, "--output", rft, "--k-max", 0, "--seed", 11) == 0
    rft_rows = [json.loads(line) for line in rft.read_text().splitlines()]
    assert [r["correct_index"] for r in rft_rows] == [r["correct_index"] for r in rows]
    assert all(r["n_errors"] == 0 and r["alpha"] is None for r in rft_rows)

    jsonl_input = tmp_path / "verified.jsonl"
    jsonl_input.write_text("".join(json.dumps(r) + "\n" for r in df.to_dict("records")))
    assert run_cli(*args[:2], jsonl_input, *args[3:]) == 0
    assert out.read_bytes() == first  # same dataset from JSONL input


def test_cli_errors_exit_2_with_clear_messages(tmp_path, run_cli, capsys):
    verified = tmp_path / "verified.parquet"
    write_parquet(table(*diverse_problem()).drop(columns="response"), verified)
    out = tmp_path / "o.jsonl"
    assert run_cli("fuse", "--input", verified, "--output", out, "--k-max", 1, "--alpha", 1, "--seed", 0) == 2
    assert "verified.parquet" in capsys.readouterr().err and not out.exists()
    write_parquet(table(*diverse_problem()), verified)
    for extra, needle in ((["--k-max", -1, "--alpha", "1"], "--k-max"), (["--k-max", 1, "--alpha", "0"], "alpha"),
                          (["--k-max", 1], "--alpha"), (["--k-max", 1, "--alpha-file", tmp_path / "none.json"],
                                                        "none.json")):
        assert run_cli("fuse", "--input", verified, "--output", out, "--seed", 0, *extra) == 2
        assert needle in capsys.readouterr().err
    (tmp_path / "a.json").write_text('{"target": 1}')
    assert run_cli("fuse", "--input", verified, "--output", out, "--seed", 0, "--k-max", 1,
                   "--alpha-file", tmp_path / "a.json") == 2
    assert "field 'alpha'" in capsys.readouterr().err
    assert run_cli("calibrate-alpha", "--input", verified, "--k-max", 1, "--target-errors", 5,
                   "--output", tmp_path / "x.json") == 2
    assert "unattainable" in capsys.readouterr().err
    assert not out.exists()


def test_bad_phrase_files_are_rejected(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("error_recognition: [a]\nsuccess_confirmation: []\n")
    with pytest.raises(InputError, match="p.yaml: field 'success_confirmation'"):
        load_phrases(path)
    path.write_text("error_recognition: [a, 3]\nsuccess_confirmation: [b]\n")
    with pytest.raises(InputError, match="field 'error_recognition'"):
        load_phrases(path)
    path.write_text("error_recognition: [a]\nsuccess_confirmation: [b]\n")
    with pytest.raises(InputError, match="field 'certainty' is empty"):
        fuse_frame(table(*diverse_problem()), settings(alpha="3", certainty_prob=0.5), load_phrases(path))


def test_one_phrase_file_serves_fusion_and_evaluation(tmp_path):
    # Fusion reads its three categories (evaluation counts the first); other keys are ignored.
    path = tmp_path / "p.yaml"
    path.write_text("reflection: [hmm]\nerror_recognition: [a, b]\nsuccess_confirmation: [c]\n")
    phrases = load_phrases(path)
    assert (phrases.error_recognition, phrases.success_confirmation, phrases.certainty) == (("a", "b"), ("c",), ())
    path.write_text("[a, b]\n")
    with pytest.raises(InputError, match="p.yaml: expected a mapping of phrase categories"):
        load_phrases(path)


def test_parquet_texts_fetches_rows_across_batches(tmp_path):
    path = tmp_path / "t.parquet"
    write_parquet(pd.DataFrame({"response": [f"r{i}" for i in range(20_000)]}), path)
    positions = [19_999, 3, 8191, 8192, 3, 12_345, 0]
    assert ParquetTexts(path).take("response", positions) == [f"r{i}" for i in positions]
