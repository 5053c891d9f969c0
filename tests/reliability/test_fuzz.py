"""Adversarial responses (issue 9, item 5) and property fuzzing (item 7).

Adversarial: responses that are empty, megabytes long or built to hurt the parser or sympy
go through extraction and the output filters (in-process, each within a time bound) and
then, all together, through one run of the real ``trajfusion verify`` CLI: it must finish,
and record a status for every row.

Fuzz (hypothesis, derandomized): invariants of the answer extractor
(``trajfusion.verify.extract``) and of the fusion constructor (``trajfusion.fuse``) beyond
those in tests/test_extract.py and tests/test_fuse_properties.py.
"""

from __future__ import annotations

import json
import random
import string
import subprocess
import sys
import time
from fractions import Fraction

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from trajfusion.fuse import FuseSettings, fuse_frame, load_phrases
from trajfusion.trajectory import split_trajectory
from trajfusion.verify.extract import MAX_ANSWER_CHARS, extract_answer, normalize_answer
from trajfusion.verify.filters import REASONS, resolve_filters, screen_response
from trajfusion.verify.stats import compute_stats

# --------------------------------------------------------------------------- adversarial


def _prose(n_chars: int) -> str:
    """Non-repetitive words (a seeded stream), so only the length is extreme."""
    rng = random.Random(0)
    words, size = [], 0
    while size < n_chars:
        word = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 9)))
        words.append(word)
        size += len(word) + 1
    return " ".join(words)


TWO_MB = 2_000_000
# name -> (response, finish_reason)
ADVERSARIAL = {
    "empty": ("", "stop"),
    "whitespace-only": (" \n\t\r\n " * 50, "stop"),
    "2mb-prose-then-answer": (_prose(TWO_MB) + " so the answer is \\boxed{5}.", "stop"),
    "2mb-truncated": (_prose(TWO_MB), "length"),
    "2mb-repeated-sentence": ("The answer is 5. " * (TWO_MB // 17), "stop"),
    "braces-10k-deep": ("\\boxed" + "{" * 10_000 + "5" + "}" * 10_000, "stop"),
    "braces-450-deep": ("\\boxed{" + "{" * 450 + "5" + "}" * 450 + "}", "stop"),
    "unclosed-box": ("So we get \\boxed{5 and the text stops", "stop"),
    "50k-unclosed-boxes": ("\\boxed{" * 50_000, "stop"),
    "100k-closing-braces": ("}" * 100_000 + "\\boxed{}", "stop"),
    "power-tower-10": ("\\boxed{10^{10^{10^{10}}}}", "stop"),
    "power-tower-9": ("\\boxed{9^{9^{9^{9^{9^{9^{9}}}}}}}", "stop"),
    "googol-exponent": ("\\boxed{2^{10^{100}}}", "stop"),
    "exp-tower": ("\\boxed{e^{e^{e^{e^{e^{100}}}}}}", "stop"),
    "frac-2000-deep": ("\\boxed{" + "\\frac{1}{" * 2000 + "2" + "}" * 2000 + "}", "stop"),
    "frac-95-deep": ("\\boxed{" + "\\frac{1}{" * 95 + "2" + "}" * 95 + "}", "stop"),
    "sqrt-140-deep": ("\\boxed{" + "\\sqrt{" * 140 + "2" + "}" * 140 + "}", "stop"),
    "parens-450-deep": ("\\boxed{" + "(" * 450 + "5" + ")" * 450 + "}", "stop"),
    "factorial-9999": ("\\boxed{9999!}", "stop"),
    "factorial-of-factorial": ("\\boxed{(9999!)!}", "stop"),
    "integer-900-digits": ("\\boxed{" + "9" * 900 + "}", "stop"),
    "integer-100k-digits": ("\\boxed{" + "9" * 100_000 + "}", "stop"),
    "matrix-3000-cells": ("\\boxed{\\begin{pmatrix}" + "&".join("x" * 3000) + "\\end{pmatrix}}", "stop"),
    "100k-think-tags": ("</think>" * 100_000 + "\\boxed{5}", "stop"),
    "100k-boxes": ("\\boxed{5}" * 100_000, "stop"),
    "control-characters": ("\x00\x1b[31m\u202e\ufeff answer: \\boxed{\x005}", "stop"),
    "answer-anchor-80k": ("the answer is " * 80_000, "stop"),
}
# A gold answer can be hostile too: its parse runs under the same deadline.
HOSTILE_GOLD = "9^{9^{9^{9^{9^{9^{9}}}}}}"
# What the output filters make of some of them (None: kept, to be verified).
EXPECTED_SCREENING = {
    "empty": (None, "no_answer"), "whitespace-only": (None, "no_answer"), "2mb-prose-then-answer": ("5", None),
    "2mb-truncated": (None, "truncated"), "2mb-repeated-sentence": ("5", "repetition"),
    "braces-10k-deep": (None, "repetition"), "unclosed-box": ("5", None), "power-tower-10": ("10^{10^{10^{10}}}", None),
    "frac-95-deep": ("\\frac{1}{" * 95 + "2" + "}" * 95, None), "factorial-9999": ("9999!", None),
    "integer-100k-digits": (None, "repetition"),
}
STATUSES = {"ok", "timeout", "error"} | {f"filtered:{reason}" for reason in REASONS}
VERIFY_TIMEOUT_S = 1.0
JOB_BOUND_S = 180  # generous: a stuck step costs at most timeout + margin, then the worker restarts
SMALL = 10_000  # characters: screening a response this short never comes near the deadline


SCREENING = resolve_filters(None)


def screening(name: str) -> tuple[str | None, str | None]:
    response, finish_reason = ADVERSARIAL[name]
    return screen_response(response, finish_reason, SCREENING)


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_extraction_and_filters_are_fast_on_adversarial_text(name):
    start = time.perf_counter()
    answer, reason = screening(name)
    assert time.perf_counter() - start < 3.0, name
    assert answer is None or 0 < len(answer) <= MAX_ANSWER_CHARS
    assert reason is None or reason in REASONS
    assert (answer, reason) == EXPECTED_SCREENING.get(name, (answer, reason))


@pytest.fixture(scope="module")
def adversarial_verify(tmp_path_factory):
    """One `trajfusion verify` run on every adversarial response (default filters)."""
    root = tmp_path_factory.mktemp("adversarial")
    rows = [{"problem_id": f"adv/{name}", "sample_idx": 0, "gold": "5", "response": response,
             "finish_reason": finish_reason} for name, (response, finish_reason) in ADVERSARIAL.items()]
    rows.append({"problem_id": "adv/hostile-gold", "sample_idx": 0, "gold": HOSTILE_GOLD,
                 "response": "\\boxed{5}", "finish_reason": "stop"})
    samples = pd.DataFrame(rows)
    samples.to_parquet(root / "samples.parquet", index=False)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "trajfusion.cli", "verify", "--input", str(root / "samples.parquet"),
                             "--output", str(root / "verified.parquet"), "--workers", "2",
                             "--timeout", str(VERIFY_TIMEOUT_S)],
                            capture_output=True, text=True, timeout=JOB_BOUND_S)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-3000:]
    return samples, pd.read_parquet(root / "verified.parquet"), elapsed


def test_verify_cli_records_a_status_for_every_adversarial_row(adversarial_verify):
    samples, verified, elapsed = adversarial_verify
    assert elapsed < JOB_BOUND_S
    assert verified["problem_id"].tolist() == samples["problem_id"].tolist()
    assert verified["response"].tolist() == samples["response"].tolist()  # passed through intact
    assert set(verified["status"]) <= STATUSES, verified["status"].tolist()
    assert not (verified["correct"] & (verified["status"] != "ok")).any()
    status = dict(zip(verified["problem_id"].str.removeprefix("adv/"), verified["status"]))
    for name, (response, _) in ADVERSARIAL.items():
        # The verifier agrees with the filters run in-process, unless screening a
        # megabyte response outlasted the step deadline on a busy machine.
        reason = screening(name)[1]
        agreed = {f"filtered:{reason}"} if reason else {"ok", "timeout", "error"}
        assert status[name] in (agreed if len(response) < SMALL else agreed | {"timeout"}), (name, status[name])
    assert status["unclosed-box"] == "ok"
    # The expressions built to stall sympy (and the hostile gold) were cut off by the
    # deadline, each confined to its own row.
    assert "timeout" in {status[name] for name in ("power-tower-9", "exp-tower", "factorial-of-factorial")}
    assert status["hostile-gold"] in ("ok", "timeout", "error")


def test_stats_account_for_every_adversarial_row(adversarial_verify):
    _, verified, _ = adversarial_verify
    stats = compute_stats(verified)
    accounted = stats["K"] + stats["n_filtered"] + stats["n_timeout"] + stats["n_error"]
    assert accounted.tolist() == [1] * len(verified)


# --------------------------------------------------------------------------- extractor fuzz

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TOKENS = ["\\boxed{", "\\boxed", "\\fbox{", "{", "}", "\\{", "\\}", "\\\\", "$", "\\(", "\\)", "\\frac", "\\dfrac",
          "\\text{", "\\left(", "\\right)", "\\,", "~", "{,}", "</think>", "<think>", "answer is ", "Answer: ",
          "The final answer is ", " ", "\n", ".", ",", "-", "1", "23", "4.5", "1,000", "3/4", "x", "^", "_",
          "\u00e9", "\u4e2d", "\x00"]
latexish = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)
any_text = st.one_of(latexish, st.text(max_size=200))
# Brace-balanced box content without backslashes or "<" (so it holds no box and no </think>).
atoms = st.text(alphabet=string.ascii_letters + string.digits + " +-*/^_=().,[]|!?:;'", min_size=1, max_size=12)
balanced = st.recursive(atoms, lambda inner: st.builds(lambda a, b: a + "{" + b + "}", atoms, inner), max_leaves=6)


@FUZZ
@given(text=any_text)
def test_extracted_answer_is_built_from_the_input(text):
    answer = extract_answer(text)
    if answer is None:
        return
    assert 0 < len(answer) <= MAX_ANSWER_CHARS and answer == answer.strip()
    # Normalization deletes and respaces; it never brings in a character of its own.
    assert set(answer) <= set(text) | {" "}


@FUZZ
@given(prefix=any_text, content=balanced)
def test_a_final_box_is_found(prefix, content):
    expected = normalize_answer(content)
    assume(expected)
    assert extract_answer(prefix + " \\boxed{" + content + "}") == expected
    assert extract_answer(prefix + " \\boxed{" + content + "}.\n\n") == expected


@FUZZ
@given(reasoning=any_text, final=st.text(alphabet=string.ascii_letters + " ,.\n", max_size=60), content=balanced)
def test_the_segment_after_think_wins(reasoning, final, content):
    expected = normalize_answer(content)
    assume(expected)
    response = reasoning + "\\boxed{999}</think>" + final + "\\boxed{" + content + "}"
    assert extract_answer(response) == expected


@FUZZ
@given(text=any_text, trailing=st.text(alphabet=" \n\t", max_size=5))
def test_trailing_whitespace_does_not_change_the_answer(text, trailing):
    assert extract_answer(text + trailing) == extract_answer(text)


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(motif=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=8).map("".join))
def test_extraction_time_is_bounded_on_long_repetitive_input(motif):
    text = motif * (300_000 // len(motif) + 1)
    start = time.perf_counter()
    answer, reason = screen_response(text, "stop", SCREENING)
    assert time.perf_counter() - start < 3.0, (motif, len(text))
    assert answer is None or len(answer) <= MAX_ANSWER_CHARS


# --------------------------------------------------------------------------- fusion fuzz

ERR_PHRASE, OK_PHRASE, SURE_PHRASE = "E-PHRASE", "S-PHRASE", "C-PHRASE"
# fuse_frame takes ~15 ms a call; fewer examples keep these properties at a few seconds.
FUSION_FUZZ = settings(FUZZ, max_examples=40)
free_text = st.text(min_size=1, max_size=40).filter(str.strip)


@st.composite
def verified_tables(draw):
    """Verified tables with arbitrary problem and response texts."""
    rows = []
    for p in range(draw(st.integers(1, 4))):
        pid = f"p{p}/" + draw(st.text(alphabet=string.ascii_letters + "/._-", max_size=6))
        problem = draw(free_text)
        trajectories = draw(st.lists(st.tuples(st.sampled_from(["ok", "ok", "ok", "timeout"]), st.booleans(),
                                               st.sampled_from("ABC"), st.integers(1, 30), st.text(max_size=30)),
                                     min_size=1, max_size=8))
        for idx, (status, correct, wrong, n_tokens, body) in enumerate(trajectories):
            correct = correct and status == "ok"
            answer = "G" if correct else wrong
            rows.append({"problem_id": pid, "sample_idx": idx, "problem": problem,
                         "response": f"[{pid}#{idx}] {body}", "n_tokens": n_tokens, "answer": answer,
                         "correct": correct, "status": status,
                         "answer_group": answer if status == "ok" and not correct else None})
    return pd.DataFrame(rows).drop_duplicates(["problem_id", "sample_idx"]).reset_index(drop=True)


fuse_settings = st.builds(FuseSettings, k_max=st.integers(0, 5),
                          alpha=st.fractions(Fraction(1, 4), Fraction(5), max_denominator=8),
                          strategy=st.sampled_from(["highdiv", "lowdiv"]), seed=st.integers(0, 5),
                          certainty_prob=st.sampled_from([0.0, 1.0]))


@pytest.fixture(scope="module")
def single_phrases(tmp_path_factory):
    path = tmp_path_factory.mktemp("phrases") / "phrases.yaml"
    path.write_text(json.dumps({"error_recognition": [ERR_PHRASE], "success_confirmation": [OK_PHRASE],
                                "certainty": [SURE_PHRASE]}))
    return load_phrases(path)


def by_key(df: pd.DataFrame) -> dict[tuple[str, int], dict]:
    return {(row["problem_id"], row["sample_idx"]): row for row in df.to_dict("records")}


@FUSION_FUZZ
@given(df=verified_tables(), config=fuse_settings)
def test_fused_example_is_exactly_its_parts(single_phrases, df, config):
    rows, _ = fuse_frame(df, config, single_phrases)
    trajectories = by_key(df)
    for row in rows:
        pid = row["problem_id"]
        user, assistant = row["messages"]
        assert user == {"role": "user", "content": trajectories[(pid, row["correct_index"])]["problem"]}
        assert row["n_errors"] == len(row["error_indices"]) <= config.k_max
        errors = [trajectories[(pid, i)] for i in row["error_indices"]]
        assert all(e["status"] == "ok" and not e["correct"] for e in errors)
        assert len(set(row["error_indices"])) == len(errors)
        star = trajectories[(pid, row["correct_index"])]
        assert star["status"] == "ok" and star["correct"]
        parts = ["<think>"] + [text for e in errors for text in (split_trajectory(e["response"]).reasoning,
                                                                  ERR_PHRASE)]
        parts.append(split_trajectory(star["response"]).reasoning)
        if errors:
            parts += [OK_PHRASE] + ([SURE_PHRASE] if config.certainty_prob == 1.0 else [])
        parts += ["</think>", f"The answer is \\boxed{{{star['answer']}}}."]
        assert assistant == {"role": "assistant", "content": "\n".join(parts)}


@FUSION_FUZZ
@given(df=verified_tables(), config=fuse_settings, pick=st.integers(0, 3))
def test_a_problems_example_ignores_the_other_problems(single_phrases, df, config, pick):
    rows, _ = fuse_frame(df, config, single_phrases)
    assume(rows)
    row = rows[pick % len(rows)]
    alone, _ = fuse_frame(df[df["problem_id"] == row["problem_id"]], config, single_phrases)
    assert alone == [row]


@FUSION_FUZZ
@given(df=verified_tables(), config=fuse_settings, more=st.integers(1, 3),
       factor=st.fractions(Fraction(1), Fraction(4), max_denominator=4))
def test_more_room_only_appends_errors_and_keeps_the_correct_trajectory(single_phrases, df, config, more, factor):
    def fuse(k_max, alpha):
        return fuse_frame(df, FuseSettings(k_max, alpha, config.strategy, config.seed), single_phrases)[0]

    rows, wider = fuse(config.k_max, config.alpha), fuse(config.k_max + more, config.alpha)
    bolder, rft = fuse(config.k_max, config.alpha * factor), fuse(0, None)
    for row, w, b, r in zip(rows, wider, bolder, rft, strict=True):
        assert row["correct_index"] == w["correct_index"] == b["correct_index"] == r["correct_index"]
        assert w["error_indices"][:row["n_errors"]] == row["error_indices"]  # a larger k_max extends the list
        assert b["error_indices"][:row["n_errors"]] == row["error_indices"]  # as does a larger alpha
        assert r["n_errors"] == 0
