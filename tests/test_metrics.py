"""Metric arithmetic, bootstrap intervals and paired tests on hand-made verdict tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from trajfusion.io import InputError
from trajfusion.report import metrics


def answer_group(correct: bool, answer: str | None, status: str) -> str | None:
    """The group ``evaluate`` gives a response whose incorrect answers are all distinct."""
    if status != "ok":
        return None
    return "g" if correct else answer


def verdicts(rows: dict[str, list[tuple]]) -> pd.DataFrame:
    """A verdict table from {problem_id: [(correct, answer, status), ...]} (sample_idx = position)."""
    records = []
    for pid, samples in rows.items():
        for idx, (correct, answer, status) in enumerate(samples):
            records.append({"problem_id": pid, "sample_idx": idx, "response": f"r{idx}", "n_tokens": 10 * (idx + 1),
                            "finish_reason": "stop", "gold": "g", "answer": answer, "correct": correct,
                            "status": status, "n_reflections": idx % 2, "n_markers": idx // 2,
                            "answer_group": answer_group(correct, answer, status)})
    return pd.DataFrame(records)


OK = "ok"
# Crafted so that pass@1, avg@4 and maj@4 all differ:
CRAFTED = verdicts({
    # tie 2 (gold) : 2 ("5"); "5" voted first (sample 0) -> majority wrong
    "p1": [(False, "5", OK), (True, "7", OK), (True, "7", OK), (False, "5", OK)],
    # "4" has two votes but one is filtered, so gold/"4"/"9" tie at 1 and gold (sample 0) wins
    "p2": [(True, "3", OK), (False, "4", OK), (False, "4", "filtered:repetition"), (False, "9", OK)],
    # equivalent correct answers in different notation vote together: 2 correct vs 1 + 1
    "p3": [(False, "5", OK), (True, "\\frac{1}{2}", OK), (True, "0.5", OK), (False, "6", OK)],
    "p4": [(False, None, "timeout"), (False, "1", OK), (False, "2", OK), (False, None, "error")],
    "p5": [(False, "8", OK), (True, "1", OK), (True, "1", OK), (False, "9", OK)],
})


def test_pass1_avg_and_majority_differ_on_a_crafted_case():
    scores = metrics.problem_scores(CRAFTED)
    assert scores["pass@1"].tolist() == [0, 1, 0, 0, 0]
    assert scores["avg@k"].tolist() == [0.5, 0.25, 0.5, 0.0, 0.5]
    assert scores["maj@k"].tolist() == [0, 1, 1, 0, 1]
    assert metrics.pass_at_1(CRAFTED) == pytest.approx(0.2)
    assert metrics.avg_at_k(CRAFTED) == pytest.approx(0.35)
    assert metrics.maj_at_k(CRAFTED) == pytest.approx(0.6)


def test_majority_ignores_non_ok_samples_and_breaks_ties_by_first_vote():
    maj = metrics.majority_vote_correct(CRAFTED)
    assert not maj["p1"]  # tie broken towards the answer voted first (wrong "5")
    assert maj["p2"]      # the filtered "4" does not vote
    tie_gold_first = verdicts({"q": [(True, "7", OK), (False, "5", OK), (False, "5", OK), (True, "7", OK)]})
    assert metrics.majority_vote_correct(tie_gold_first)["q"]
    nothing_ok = verdicts({"q": [(False, "5", "timeout"), (False, None, "error")]})
    assert not metrics.majority_vote_correct(nothing_ok)["q"]


def test_token_and_reflection_means():
    # every problem has n_tokens 10, 20, 30, 40 and n_reflections 0, 1, 0, 1
    assert metrics.mean_output_tokens(CRAFTED) == pytest.approx(25.0)
    assert metrics.mean_reflections(CRAFTED) == pytest.approx(0.5)


def test_reflections_per_1k_tokens_is_the_pooled_rate():
    # 1 + 2 + 0 + 3 reflections in 200 + 300 + 100 + 400 tokens: 6 per 1,000 tokens (the mean
    # of the per-response rates, 5.75, would let the short responses weigh as much as the long)
    table = pd.DataFrame({"problem_id": ["p1", "p1", "p2", "p2"], "sample_idx": [0, 1, 0, 1],
                          "response": "...", "n_tokens": [200, 300, 100, 400], "finish_reason": "stop",
                          "gold": "1", "answer": "1", "correct": True, "status": "ok",
                          "n_reflections": [1, 2, 0, 3], "n_markers": [0, 0, 4, 1], "answer_group": "1"})
    assert metrics.reflections_per_1k_tokens(table) == 6.0
    estimates, dists = metrics.summarize(table, n_resamples=200, seed=0)
    assert estimates["reflections_per_1k_tokens"].value == 6.0
    assert estimates["markers_per_1k_tokens"].value == 5.0
    # p1 alone: 3 in 500 tokens = 6; p2 alone: 3 in 500 = 6, so every resample gives 6 as well
    assert np.allclose(dists["reflections_per_1k_tokens"], 6.0)
    silent = table.assign(n_tokens=0)
    assert math.isnan(metrics.reflections_per_1k_tokens(silent))


@pytest.mark.parametrize("n,c,k", [(16, 0, 1), (16, 3, 1), (16, 3, 4), (16, 13, 4), (16, 12, 4), (10, 5, 10),
                                   (5, 5, 3), (100, 7, 20)])
def test_pass_at_k_estimator_matches_the_closed_form(n, c, k):
    closed = 1.0 - math.comb(n - c, k) / math.comb(n, k)
    assert metrics.pass_at_k_estimate(n, c, k) == pytest.approx(closed, abs=1e-12)


def test_pass_at_k_on_a_table():
    # correct counts per problem: 2, 1, 2, 0, 2 out of 4
    expected = np.mean([1 - math.comb(4 - c, 2) / math.comb(4, 2) for c in (2, 1, 2, 0, 2)])
    assert metrics.pass_at_k(CRAFTED, 2) == pytest.approx(expected)
    # pass@1's unbiased estimate is the per-problem accuracy, i.e. avg@k
    assert metrics.pass_at_k(CRAFTED, 1) == pytest.approx(metrics.avg_at_k(CRAFTED))
    assert metrics.pass_at_k(CRAFTED, 4) == pytest.approx(0.8)  # any correct sample
    with pytest.raises(ValueError):
        metrics.pass_at_k_estimate(4, 2, 5)


def test_bootstrap_interval_of_a_fair_coin():
    values = np.array([1] * 200 + [0] * 200)
    lo, hi = metrics.bootstrap_ci(values, n_resamples=4000, seed=0)
    half_width = 1.96 * math.sqrt(0.25 / 400)  # 0.049
    assert lo == pytest.approx(0.5 - half_width, abs=0.006)
    assert hi == pytest.approx(0.5 + half_width, abs=0.006)
    assert metrics.bootstrap_ci(values, 4000, seed=0) == (lo, hi)  # seeded


def test_bootstrap_interval_coverage():
    rng = np.random.default_rng(123)
    covered = 0
    for _ in range(200):
        sample = rng.random(400) < 0.5
        lo, hi = metrics.bootstrap_ci(sample, n_resamples=400, seed=int(rng.integers(1 << 30)))
        covered += lo <= 0.5 <= hi
    assert 0.89 <= covered / 200 <= 0.99


def test_bootstrap_degenerate_inputs():
    assert metrics.bootstrap_ci([1.0, 1.0, 1.0], 100, 0) == (1.0, 1.0)
    assert all(math.isnan(x) for x in metrics.bootstrap_ci([1.0], 100, 0))


def test_summarize_reports_every_metric_with_an_interval():
    estimates, dists = metrics.summarize(CRAFTED, n_resamples=500, seed=1)
    assert set(estimates) == set(metrics.SUMMARY_METRICS)
    for name, est in estimates.items():
        assert est.ci_low <= est.value <= est.ci_high, name
        assert len(dists[name]) == 500
    assert estimates["avg@k"].value == pytest.approx(0.35)


def test_mcnemar_exact_on_a_known_table():
    # 2x2 table: both correct 20, only A 10, only B 3, both wrong 7
    a = np.array([1] * 20 + [1] * 10 + [0] * 3 + [0] * 7, dtype=bool)
    b = np.array([1] * 20 + [0] * 10 + [1] * 3 + [0] * 7, dtype=bool)
    result = metrics.mcnemar_exact(a, b)
    by_hand = 2 * sum(math.comb(13, i) for i in range(10, 14)) / 2 ** 13  # = 0.0923
    assert (result["only_a"], result["only_b"]) == (10, 3)
    assert result["p_value"] == pytest.approx(by_hand)
    assert metrics.mcnemar_exact(a, a)["p_value"] == 1.0


def test_paired_tests_on_verdict_tables():
    n = 60
    a = verdicts({f"p{i:02d}": [(i % 3 == 0, "x", OK)] for i in range(n)})
    same = metrics.compare(a, a, n_resamples=500, seed=0)
    assert same["paired_bootstrap_p"] == 1.0 and same["mcnemar_p"] == 1.0 and same["acc_diff"] == 0
    b = verdicts({f"p{i:02d}": [(True, "x", OK)] for i in range(n)})
    better = metrics.compare(a, b, n_resamples=500, seed=0)
    assert better["mcnemar_only_b"] == 40 and better["mcnemar_only_a"] == 0
    assert better["mcnemar_p"] == pytest.approx(2 * 0.5 ** 40)
    assert better["acc_diff"] == pytest.approx(40 / 60)
    assert better["paired_bootstrap_p"] == pytest.approx(1 / 501)
    with pytest.raises(InputError, match="same problems"):
        metrics.compare(a, b.iloc[1:], n_resamples=10)


def test_bad_verdict_tables_raise_input_errors():
    with pytest.raises(InputError, match="missing required column"):
        metrics.problem_scores(CRAFTED.drop(columns="status"))
    with pytest.raises(InputError, match=r"record 21 \(problem_id='p1', sample_idx=0\): duplicate key "
                                         r"\(problem_id, sample_idx\), also record 1"):
        metrics.problem_scores(pd.concat([CRAFTED, CRAFTED.iloc[:1]], ignore_index=True))
    with pytest.raises(InputError, match=r"record 1 \(problem_id='p1', sample_idx=1\): field 'sample_idx' breaks "
                                         r"rule 'samples-0-to-n-1'"):
        metrics.problem_scores(CRAFTED.iloc[1:])
    with pytest.raises(InputError, match=r"record 4 \(problem_id='p1', sample_idx=3\): field 'correct' must be "
                                         r"true or false, got 'yes'"):
        metrics.problem_scores(CRAFTED.assign(correct=CRAFTED["correct"].astype(object).where(
            CRAFTED.index != 3, "yes")))


def test_majority_votes_over_answer_groups_not_answer_strings():
    # the verifier put 1/2, 0.5 and \frac{1}{2} into one incorrect-answer group
    rows = [(False, "1/2", "0.5"), (True, "4", "4"), (False, "0.5", "0.5"), (True, "4", "4"),
            (False, "\\frac{1}{2}", "0.5")]
    df = verdicts({"q": [(correct, answer, OK) for correct, answer, _ in rows]})
    assert metrics.majority_vote_correct(df)["q"]  # groups of one: the gold's 2 votes win
    df["answer_group"] = [group for _, _, group in rows]
    assert not metrics.majority_vote_correct(df)["q"]  # grouped: 3 wrong votes beat 2
    tie = df[df["sample_idx"] != 4]  # 2 : 2, the wrong group voted first (sample 0)
    assert not metrics.majority_vote_correct(tie)["q"]
    assert metrics.majority_vote_correct(tie.assign(sample_idx=[3, 2, 1, 0]))["q"]  # now the gold voted first
