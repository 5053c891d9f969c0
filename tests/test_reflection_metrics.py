"""TAPO's capability metrics (trajfusion.report.reflection): DSR, ERR and Pass@k on hand-computed
verdict tables, their bootstrap intervals, and the reflection table through `trajfusion report`."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from tests.test_report import write_manifest
from trajfusion.io import InputError
from trajfusion.reflection_tags import ANALYSIS_TAG, RECONSTRUCTION_TAG, close_tag, has_analysis, open_tag
from trajfusion.report import build_report
from trajfusion.report.reflection import has_reflection, reflection_scores, summarize_reflection

TAGGED = f"{open_tag(ANALYSIS_TAG)}Step 2 is wrong.{close_tag(ANALYSIS_TAG)}" \
         f"{open_tag(RECONSTRUCTION_TAG)}So 4.{close_tag(RECONSTRUCTION_TAG)}"


def verdicts(rows: dict[str, list[tuple[bool, str, int]]]) -> pd.DataFrame:
    """{problem_id: [(correct, response, n_reflections), ...]}, sample_idx = position."""
    return pd.DataFrame([{"problem_id": pid, "sample_idx": i, "response": response, "correct": correct,
                          "n_reflections": n_reflections}
                         for pid, samples in rows.items() for i, (correct, response, n_reflections) in
                         enumerate(samples)])


# p1: direct hit, tagged hit, phrase miss, plain miss (the word "analysis" is no tag);
# p2: two direct hits, tagged miss, phrase hit. 8 responses, 4 with a reflection, 2 of them
# correct; 3 correct without one.
HAND = verdicts({
    "p1": [(True, "So 4.", 0), (True, TAGGED, 0), (False, "Wait... that doesn't seem right. 5", 1),
           (False, "The analysis shows 6.", 0)],
    "p2": [(True, "7", 0), (True, "7", 0), (False, TAGGED.replace("So 4", "So 8"), 0),
           (True, "Hmm, I made an error. 7", 1)],
})


def test_tag_names_come_from_one_module():
    assert (ANALYSIS_TAG, RECONSTRUCTION_TAG) == ("analysis", "reconstruction")
    assert has_analysis(TAGGED) and not has_analysis("the analysis, then </analysis>")


def test_a_reflection_is_an_analysis_tag_or_a_phrase():
    assert has_reflection(HAND).tolist() == [False, True, True, False, False, False, True, True]


def test_dsr_and_err_with_reflections_by_hand():
    scores = reflection_scores(HAND, pass_k=(1, 2, 4))
    assert scores["n_reflective"].tolist() == [2, 2] and scores["n_reflective_correct"].tolist() == [1, 1]
    est = summarize_reflection(scores, pass_k=(1, 2, 4), n_resamples=500, seed=3)
    assert est["reflective"].value == pytest.approx(4 / 8)
    assert est["dsr"].value == pytest.approx(3 / 8)
    assert est["err"].value == pytest.approx(2 / 4)
    # pass@k per problem from n = 4: p1 has c = 2, p2 c = 3
    p1 = {1: 2 / 4, 2: 1 - 1 / 6, 4: 1.0}  # 1 - C(2,2)/C(4,2)
    p2 = {1: 3 / 4, 2: 1.0, 4: 1.0}
    for k in (1, 2, 4):
        assert est[f"pass@{k}"].value == pytest.approx((p1[k] + p2[k]) / 2), k


def test_without_reflections_err_is_undefined_and_dsr_is_accuracy():
    plain = verdicts({"a": [(True, "1", 0), (False, "2", 0)], "b": [(True, "3", 0), (True, "3", 0)],
                      "c": [(False, "4", 0), (False, "5", 0)]})
    est = summarize_reflection(reflection_scores(plain, pass_k=(1, 2)), pass_k=(1, 2), n_resamples=300)
    assert est["dsr"].value == pytest.approx(3 / 6) and est["reflective"].value == 0.0
    assert math.isnan(est["err"].value) and math.isnan(est["err"].ci_low) and math.isnan(est["err"].ci_high)
    assert est["pass@2"].value == pytest.approx((1 + 1 + 0) / 3)


def test_pass_at_k_above_the_samples_is_refused():
    with pytest.raises(InputError, match=r"t\.parquet: pass@5 needs at least 5 samples per problem, the "
                                         r"evaluation has 4"):
        reflection_scores(HAND, pass_k=(1, 5), source="t.parquet")


def test_intervals_contain_the_estimate_and_follow_the_seed():
    rows = {f"q{i:02d}": [(bool((i + j) % 3), TAGGED if (i * j) % 4 == 1 else "x", int(j == 2 and i % 2))
                          for j in range(4)] for i in range(25)}
    scores = reflection_scores(verdicts(rows), pass_k=(1, 2))
    first = summarize_reflection(scores, pass_k=(1, 2), n_resamples=400, seed=7)
    for name, est in first.items():
        assert est.ci_low <= est.value <= est.ci_high, name
        assert est.ci_low < est.ci_high, name
    assert summarize_reflection(scores, pass_k=(1, 2), n_resamples=400, seed=7) == first
    other = summarize_reflection(scores, pass_k=(1, 2), n_resamples=400, seed=8)
    assert other != first and other["dsr"].value == first["dsr"].value


def test_one_problem_has_no_interval():
    est = summarize_reflection(reflection_scores(verdicts({"p": [(True, TAGGED, 0)]})), n_resamples=100)
    assert est["err"].value == 1.0 and math.isnan(est["err"].ci_low) and math.isnan(est["dsr"].ci_low)


def test_report_writes_the_reflection_table_of_the_listed_experiment(tmp_path):
    manifest_path, manifest = write_manifest(tmp_path)
    tagged = pd.read_parquet(manifest["evals"][0]["path"])
    tagged.loc[:9, "response"] = TAGGED  # 10 of the 40 math responses of the first run open an analysis
    tagged.loc[:9, "n_reflections"] = 0
    tagged.to_parquet(manifest["evals"][0]["path"])
    manifest["reflection_metrics"] = [{"experiment": "main", "pass_k": [1]}]
    manifest_path.write_text(json.dumps(manifest))
    out = tmp_path / "report"
    build_report(manifest_path, out, n_resamples=100)
    table = pd.read_csv(out / "reflection-main.csv")
    finals = [e for e in manifest["evals"] if e["checkpoint"] == "final"]
    assert len(table) == 4 * len(finals)  # reflective, dsr, err, pass@1 per final run x benchmark
    first = table[table["path"] == manifest["evals"][0]["path"]].set_index("metric")["value"]
    reflective = tagged["response"].map(has_analysis) | (tagged["n_reflections"] > 0)
    assert first["reflective"] == pytest.approx(100 * reflective.mean())
    assert first["dsr"] == pytest.approx(100 * (tagged["correct"] & ~reflective).mean())
    assert first["err"] == pytest.approx(100 * tagged.loc[reflective, "correct"].mean())
    assert first["pass@1"] == pytest.approx(100 * tagged["correct"].mean())
    text = (out / "reflection-main.md").read_text()
    assert "| DSR" in text and "ERR" in text and "Pass@1" in text and "(reflection-main.md)" in \
        (out / "index.md").read_text()
    rft_math_final = table[(table["metric"] == "err") & (table["row"] == "Vanilla RFT")]
    assert rft_math_final["value"].isna().any()  # runs without a reflection: ERR undefined
    assert "—" in text

    manifest["reflection_metrics"] = [{"experiment": "main", "pass_k": [2]}]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=r"manifest evals\[0\] .*pass@2 needs at least 2 samples"):
        build_report(manifest_path, tmp_path / "again", n_resamples=100)
