"""Paper numbers, Tables 1-3, figures and the report command on a tiny synthetic manifest."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pandas as pd
import pytest

from trajfusion.io import InputError
from trajfusion.report import SMOKE_CAVEAT, build_report, figures, paper, register, tables
from trajfusion.report.build import load_stats
from trajfusion.report.metrics import SUMMARY_METRICS, problem_scores, summarize_scores
from trajfusion.report.settings import ReportSettings

PAPER = paper.load_paper_results()


# ---------------------------------------------------------------------------- helpers


def make_verdicts(n_problems: int, k: int, p_correct: float, seed: int, prefix: str = "b",
                  tokens: int = 100, reflections: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_problems):
        for j in range(k):
            correct = bool(rng.random() < p_correct)
            rows.append({"problem_id": f"{prefix}/{i:03d}", "sample_idx": j, "response": "...",
                         "n_tokens": int(tokens + rng.integers(0, 20)), "finish_reason": "stop", "gold": "1",
                         "answer": "1" if correct else str(rng.integers(2, 5)), "correct": correct, "status": "ok",
                         "n_reflections": int(rng.random() < reflections), "n_markers": int(rng.random() < 0.5)})
    df = pd.DataFrame(rows)
    # every tenth response graded the other way by the other grader
    flipped = df.index % 10 == 3
    return df.assign(answer_group=df["answer"], grader="math_verify", other_answer=df["answer"],
                     other_correct=df["correct"] ^ flipped)


def eval_result(entry: dict, df: pd.DataFrame, index: int = 0) -> tables.EvalResult:
    scores = problem_scores(df)
    estimates, dists = summarize_scores(scores, n_resamples=200, seed=index)
    return tables.EvalResult(index=index, entry=entry, bench=paper.match_key(entry["benchmark"], PAPER["benchmarks"]),
                             paper_backbone=entry.get("paper_backbone")
                             or paper.match_key(entry["backbone"], PAPER["backbones"]),
                             k=int(scores["n"].iloc[0]), scores=scores, estimates=estimates, distributions=dists)


def build(spec: tables.TableSpec, results: list, fusion_for=lambda result: None) -> tables.Table:
    return tables.build_table(spec, tables.Inputs(results, PAPER, fusion_for))


def entry(**fields) -> dict:
    base = {"experiment": "main", "tables": ["table1"], "backbone": "llama3-8b", "variant": "rft", "method": "rft",
            "pool": "15k", "data_size": "15k", "context": "4k", "checkpoint": "final", "samples_seen": None,
            "benchmark": "math", "path": "x.parquet"}
    return {**base, **fields}


# ----------------------------------------------------------------------- paper numbers


def test_paper_table1_rows_and_averages():
    rows = PAPER["table1"]["rows"]
    assert len(rows) == 20
    assert [r["label"] for r in rows[:10]] == ["ICL", "MetaMath", "MMIQC", "DARTMath", "MathFusion", "LEMMA",
                                               "Vanilla RFT", "Vanilla RFT", "TrajFusion", "TrajFusion"]
    assert [r["label"] for r in rows[10:12]] == ["ICL", "Instruct"]
    for row in rows:
        values = [row["scores"][c] for c in PAPER["table1"]["columns"]]
        if row["scores"]["avg"] is None:
            assert row["label"] == "LEMMA" and values[3:] == [None, None, None]
        else:
            # the paper's AVG is the rounded mean of the six transcribed cells
            assert abs(np.mean(values) - row["scores"]["avg"]) <= 0.051, row
    tf100 = next(r for r in rows if r["backbone"] == "deepseekmath_7b" and r["method"] == "trajfusion"
                 and r["data_size"] == "100k")
    assert tf100["scores"]["theoremqa"] == 34.1 and tf100["scores"]["avg"] == 52.3


def test_paper_tables_2_and_3():
    t2 = PAPER["table2"]["rows"]
    assert [r["label"] for r in t2] == ["TF(k_max=1)", "TF(k_max=2)", "TF(k_max=4)", "TF(k_max=6)", "TF(LowDiv)",
                                        "TF(HighDiv)"]
    assert [r["scores"]["#Err"]["mean_errors"] for r in t2] == [0.62, 1.02, 1.49, 1.74, 1.13, 1.13]
    assert [r["scores"]["math"]["mean_output_tokens"] for r in t2] == [912, 1056, 1173, 1192, 1603, 1056]
    assert t2[4]["scores"]["gsm8k"] == {"pass@1": 72.3, "mean_output_tokens": 291}
    t3 = {r["label"]: r["scores"] for r in PAPER["table3"]["rows"]}
    assert t3["RFT(4K)"]["aime25"] == {"pass@1": 10.0, "avg@k": 12.1}
    assert t3["TrajFusion(32K)"]["aime24"] == {"pass@1": 43.3, "avg@k": 40.8}
    assert [t3[k]["math500"]["pass@1"] for k in t3] == [79.4, 82.6, 88.4, 90.4]


def test_paper_frame_is_tidy_and_keyed_like_the_runs():
    frame = paper.paper_frame(PAPER)
    assert list(frame.columns) == list(paper.PAPER_COLUMNS)
    assert not frame.duplicated(["table", "order", "column", "metric"]).any()
    assert frame.groupby("table").size().to_dict() == {"table1": 20 * 7, "table2": 6 * 5, "table3": 4 * 5}
    lemma = frame[(frame["table"] == "table1") & (frame["paper_row"] == "LEMMA")
                  & (frame["paper_backbone"] == "deepseekmath_7b")].set_index("column")
    assert lemma.loc["math", "value"] == 50.6 and lemma.loc[["deepmind_mathematics", "avg"], "value"].isna().all()
    assert set(lemma["metric"]) == {"pass@1"} and set(lemma["data_size"]) == {"89k"}
    low = frame[(frame["table"] == "table2") & (frame["paper_row"] == "TF(LowDiv)")]
    assert low[["column", "metric", "value"]].values.tolist() == [
        ["gsm8k", "pass@1", 72.3], ["gsm8k", "mean_output_tokens", 291.0], ["math", "pass@1", 40.7],
        ["math", "mean_output_tokens", 1603.0], ["#Err", "mean_errors", 1.13]]
    assert set(low["paper_backbone"]) == {"llama3_8b"}
    rft32 = frame[(frame["table"] == "table3") & (frame["order"] == 2)]
    assert set(rft32["method"]) == {"rft"} and set(rft32["context"]) == {"32k"} and rft32["value"].tolist() == [
        40.0, 36.7, 26.7, 27.9, 88.4]


def test_metrics_frame_is_one_row_per_evaluation_and_metric():
    runs = [eval_result(entry(benchmark=b, path=f"{b}.parquet"), make_verdicts(10, 2, 0.5, seed=i, prefix=b), i)
            for i, b in enumerate(["MATH", "synthetic_arith_test"])]
    frame = tables.metrics_frame(runs)
    n_metrics = len(SUMMARY_METRICS)
    assert len(frame) == 2 * n_metrics and frame[["eval", "metric"]].drop_duplicates().shape[0] == 2 * n_metrics
    first = frame[frame["eval"] == 0].set_index("metric")
    assert first.loc["pass@1", "value"] == pytest.approx(100 * runs[0].scores["pass@1"].mean())
    assert first.loc["mean_output_tokens", "value"] == pytest.approx(runs[0].scores["mean_output_tokens"].mean())
    assert set(first["column"]) == {"math"} and set(first["paper_backbone"]) == {"llama3_8b"}
    assert set(frame.loc[frame["eval"] == 1, "column"]) == {"synthetic_arith_test"}
    assert (frame["samples_per_problem"] == 2).all() and (frame["tables"] == "table1").all()


# ----------------------------------------------------------------------------- tables


def _reported(display: pd.DataFrame) -> pd.DataFrame:
    return display[display["Source"] == tables.REPORTED]


def test_tables_have_the_papers_rows_and_columns_without_runs():
    t1 = build(tables.TABLE1, [])
    assert list(t1.display.columns) == ["Backbone", "Method", "Variant", "Train size", "Source", "MATH", "GSM8K",
                                        "College", "DM", "Olympiad", "Theorem", "AVG"]
    assert len(_reported(t1.display)) == 20
    assert t1.display.iloc[5].tolist()[:5] == ["LLaMA3-8B", "LEMMA", "", "89k", tables.REPORTED]
    assert t1.display.iloc[5]["DM"] == "—"
    t2 = build(tables.TABLE2, [])
    assert list(t2.display.columns)[4:] == ["#Err", "#Err trained", "GSM8K Acc", "GSM8K Tokens", "MATH Acc",
                                            "MATH Tokens"]
    assert _reported(t2.display)["Strategy"].tolist()[-1] == "TF(HighDiv)"
    t3 = build(tables.TABLE3, [])
    assert list(t3.display.columns)[4:] == ["AIME24 P@1", "AIME24 Avg@16", "AIME25 P@1", "AIME25 Avg@16",
                                            "MATH-500 P@1"]
    assert _reported(t3.display)["Method"].tolist() == ["RFT(4K)", "TrajFusion(4K)", "RFT(32K)", "TrajFusion(32K)"]


def test_table1_places_reproduced_rows_beside_the_paper():
    benches = ["math", "gsm8k", "college_math", "deepmind_mathematics", "olympiadbench", "theoremqa"]
    results = [eval_result(entry(benchmark=b), make_verdicts(50, 1, 0.4, seed=i, prefix=b), i)
               for i, b in enumerate(benches)]
    t1 = build(tables.TABLE1, results)
    d = t1.display
    at = d.index[(d["Method"] == "Vanilla RFT") & (d["Train size"] == "15k") & (d["Backbone"] == "LLaMA3-8B")]
    assert d.loc[at, "Source"].tolist() == [tables.REPORTED, tables.REPRODUCED, tables.DIFF]
    reproduced = t1.long[(t1.long["source"] == tables.REPRODUCED)].set_index("column")
    expected_math = 100 * results[0].scores["pass@1"].mean()
    assert reproduced.loc["math", "value"] == pytest.approx(expected_math)
    assert reproduced.loc["math", "diff"] == pytest.approx(expected_math - 29.5)
    assert reproduced.loc["avg", "value"] == pytest.approx(np.mean(reproduced.loc[benches, "value"]))
    assert reproduced.loc["avg", "ci_low"] < reproduced.loc["avg", "value"] < reproduced.loc["avg", "ci_high"]
    assert d.loc[at[1], "MATH"].startswith(f"{expected_math:.1f} [")
    with pytest.raises(InputError, match=r"y.parquet\): same table1 cell as .*x.parquet.* method=.rft., variant=.rft."):
        build(tables.TABLE1, results + [eval_result(entry(path="y.parquet"), make_verdicts(5, 1, 0.5, 0), 9)])


def test_table1_shows_evaluated_baselines_as_reproduced_beside_the_papers_and_the_others_as_reported():
    benches = ["math", "gsm8k", "college_math", "deepmind_mathematics", "olympiadbench", "theoremqa"]
    icl = entry(experiment="baseline:icl-llama3-8b", variant="icl-llama3-8b", variant_label="few-shot CoT",
                method="icl", pool="", data_size=None, context="")
    instruct = entry(experiment="baseline:deepseekmath-7b-instruct", backbone="deepseekmath-7b",
                     variant="deepseekmath-7b-instruct", variant_label="DeepSeekMath-7B-Instruct",
                     method="instruct", pool="", data_size="780k", context="")
    results = [eval_result({**spec, "benchmark": b, "path": f"{spec['variant']}/{b}.parquet"},
                           make_verdicts(40, 1, 0.3, seed=i, prefix=b), i)
               for i, (spec, b) in enumerate((spec, b) for spec in (icl, instruct) for b in benches)]
    d = build(tables.TABLE1, results).display
    for backbone, method in (("LLaMA3-8B", "ICL"), ("DeepSeekMath-7B", "ICL"), ("DeepSeekMath-7B", "Instruct")):
        at = d.index[(d["Backbone"] == backbone) & (d["Method"] == method)]
        evaluated = (backbone, method) != ("DeepSeekMath-7B", "ICL")
        expected = [tables.REPORTED, tables.REPRODUCED, tables.DIFF] if evaluated else [tables.REPORTED]
        assert d.loc[at, "Source"].tolist() == expected, (backbone, method)
        assert list(at) == list(range(at[0], at[0] + len(at)))  # the reproduced rows follow the paper's row
    icl_row = d[(d["Backbone"] == "LLaMA3-8B") & (d["Method"] == "ICL") & (d["Source"] == tables.REPRODUCED)].iloc[0]
    assert icl_row["Variant"] == "few-shot CoT" and icl_row["Train size"] == "—"
    assert icl_row["MATH"].startswith(f"{100 * results[0].scores['pass@1'].mean():.1f} [")
    assert d[d["Method"] == "Instruct"]["Train size"].tolist() == ["780k", "780k", "780k"]
    others = d[d["Method"].isin(["MetaMath", "MMIQC", "DARTMath", "MathFusion", "LEMMA"])]
    assert len(others) == 9 and set(others["Source"]) == {tables.REPORTED}


def test_benchmarks_outside_a_table_get_an_extra_column_or_a_note():
    synthetic = eval_result(entry(benchmark="synthetic_arith_test", tables=["table1", "table3"]),
                            make_verdicts(8, 1, 1.0, 0), 0)
    t1 = build(tables.TABLE1, [synthetic])
    assert list(t1.display.columns)[-2:] == ["synthetic_arith_test*", "AVG"]
    row = t1.display[t1.display["Source"] == tables.REPRODUCED].iloc[0]
    assert row["synthetic_arith_test*"].startswith("100.0") and row["MATH"] == "—" and row["AVG"] == "—"
    assert _reported(t1.display)["synthetic_arith_test*"].eq("—").all()
    t3 = build(tables.TABLE3, [synthetic])
    assert len(t3.display) == 4 and any("synthetic_arith_test" in note for note in t3.notes)


def test_table2_and_table3_match_paper_rows():
    info = tables.FusionInfo(mean_errors=1.5, k_max=4, strategy="highdiv", path="s.json")
    runs = [eval_result(entry(tables=["table2"], variant="tf_k4", method="trajfusion", benchmark=b),
                        make_verdicts(30, 1, 0.5, seed=i, prefix=b, tokens=150), i)
            for i, b in enumerate(["gsm8k", "math"])]
    t2 = build(tables.TABLE2, runs, lambda r: info)
    row = t2.display[(t2.display["Strategy"] == "TF(k_max=4)") & (t2.display["Source"] == tables.DIFF)]
    assert row["#Err"].tolist() == ["+0.01"]
    with pytest.raises(InputError, match="no fusion summary"):
        build(tables.TABLE2, runs)
    # a variant_label naming a paper row selects it (HighDiv also has k_max = 4)
    for r in runs:
        r.entry = dict(r.entry, variant_label="TF(HighDiv)")
    t2 = build(tables.TABLE2, runs, lambda r: info)
    row = t2.display[(t2.display["Strategy"] == "TF(HighDiv)") & (t2.display["Source"] == tables.DIFF)]
    assert row["#Err"].tolist() == ["+0.37"]

    aime = [eval_result(entry(tables=["table3"], backbone="qwen2.5-math-7b", method=m, variant=m, benchmark="aime24",
                              context="32k", path=f"{m}.parquet"), make_verdicts(30, 4, 0.4, seed=i), i)
            for i, m in enumerate(["rft", "trajfusion"])]
    t3 = build(tables.TABLE3, aime)
    rep = t3.long[(t3.long["source"] == tables.REPRODUCED) & (t3.long["row"] == "TrajFusion(32K)")]
    avg = rep[rep["metric"] == "avg@k"].iloc[0]
    assert avg["paper"] == 40.8 and avg["samples_per_problem"] == 4
    assert avg["value"] == pytest.approx(100 * aime[1].scores["avg@k"].mean())
    assert any("k = 4" in note for note in t3.notes)


def test_table1_missing_runs_leave_cells_and_avg_empty_but_keep_the_papers_values():
    results = [eval_result(entry(benchmark=b, method="trajfusion", variant="tf", data_size="100k"),
                           make_verdicts(20, 1, 0.5, seed=i, prefix=b), i) for i, b in enumerate(["math", "gsm8k"])]
    t1 = build(tables.TABLE1, results)
    d = t1.display
    at = d.index[(d["Method"] == "TrajFusion") & (d["Train size"] == "100k") & (d["Backbone"] == "LLaMA3-8B")]
    assert d.loc[at, "Source"].tolist() == [tables.REPORTED, tables.REPRODUCED, tables.DIFF]
    reproduced, diff = d.loc[at[1]], d.loc[at[2]]
    assert reproduced["MATH"].endswith("]") and reproduced["DM"] == "—" and reproduced["AVG"] == "—"
    assert diff["GSM8K"].startswith(("+", "-")) and diff["DM"] == "—" and diff["AVG"] == "—"
    long = t1.long[t1.long["source"] == tables.REPRODUCED].set_index("column")
    assert math.isnan(long.loc["avg", "value"]) and long.loc["avg", "paper"] == 41.3
    assert pd.isna(long.loc["theoremqa", "n_problems"]) and long.loc["math", "n_problems"] == 20
    assert long.loc["theoremqa", "path"] == "" and long.loc["math", "path"] == "x.parquet"
    assert str(t1.long["n_problems"].dtype) == "Int64"


def test_table3_uses_final_checkpoints_beside_the_papers_rows():
    """Runs at first-epoch checkpoints are listed for Table 3 too (as the rules list every entry
    of an experiment); only the final ones fill its cells, so they are no second run of a cell."""
    qwen = {"tables": ["table3", "figure3"], "backbone": "qwen2.5-math-7b", "context": "4k"}
    runs = []
    for method in ("rft", "trajfusion"):
        for checkpoint, seen in (("ckpt-10", 40), ("ckpt-20", 80), ("final", None)):
            for bench in ("aime24", "math500") if checkpoint == "final" else ("aime24",):
                runs.append(eval_result(entry(**qwen, method=method, variant=method, benchmark=bench,
                                              checkpoint=checkpoint, samples_seen=seen,
                                              path=f"{method}-{checkpoint}-{bench}"),
                                        make_verdicts(12, 4, 0.5, seed=len(runs), prefix=bench), len(runs)))
    runs.append(eval_result(entry(tables=["table3"], backbone="llama3-8b", method="rft", variant="rft",
                                  benchmark="aime24", context="32k", path="llama"), make_verdicts(8, 4, 0.5, 9), 9))
    t3 = build(tables.TABLE3, runs)
    d = t3.display
    assert d[["Method", "Source"]].values.tolist()[:6] == [
        ["RFT(4K)", tables.REPORTED], ["RFT(4K)", tables.REPRODUCED], ["RFT(4K)", tables.DIFF],
        ["TrajFusion(4K)", tables.REPORTED], ["TrajFusion(4K)", tables.REPRODUCED], ["TrajFusion(4K)", tables.DIFF]]
    # a run on another backbone follows the paper's rows, without a difference row
    assert d.iloc[-1][["Backbone", "Method", "Source"]].tolist() == ["LLaMA3-8B", "RFT(32K)", tables.REPRODUCED]
    assert d.iloc[1]["AIME25 P@1"] == "—" and d.iloc[2]["AIME25 P@1"] == "—"
    long = t3.long[(t3.long["source"] == tables.REPRODUCED) & (t3.long["row"] == "TrajFusion(4K)")]
    final = next(r for r in runs if r.entry["path"] == "trajfusion-final-aime24")
    p1 = long[(long["column"] == "aime24") & (long["metric"] == "pass@1")].iloc[0]
    assert p1["path"] == "trajfusion-final-aime24" and p1["paper"] == 23.3
    assert p1["value"] == pytest.approx(100 * final.scores["pass@1"].mean())
    assert p1["diff"] == pytest.approx(p1["value"] - 23.3)
    aime25 = long[long["column"] == "aime25"]
    assert aime25["value"].isna().all() and aime25["paper"].tolist() == [16.7, 13.8]
    assert long["column"].tolist() == ["aime24", "aime24", "aime25", "aime25", "math500"]
    assert any("k = 4" in note for note in t3.notes)


def test_table2_long_rows_follow_the_papers_row_then_the_run():
    info = tables.FusionInfo(mean_errors=0.5, k_max=1, strategy="highdiv", path="s.json")
    runs = [eval_result(entry(tables=["table2"], variant="tf_k1", method="trajfusion", benchmark=b),
                        make_verdicts(10, 1, 0.5, seed=i, prefix=b), i) for i, b in enumerate(["math", "gsm8k"])]
    long = build(tables.TABLE2, runs, lambda r: info).long
    k1 = long[long["row"] == "TF(k_max=1)"]
    assert k1[["source", "column", "metric"]].values.tolist() == [
        [tables.REPORTED, "gsm8k", "pass@1"], [tables.REPORTED, "gsm8k", "mean_output_tokens"],
        [tables.REPORTED, "math", "pass@1"], [tables.REPORTED, "math", "mean_output_tokens"],
        [tables.REPORTED, "#Err", "mean_errors"], [tables.REPRODUCED, "#Err", "mean_errors"],
        [tables.REPRODUCED, "#Err", "mean_errors_trained"],
        [tables.REPRODUCED, "gsm8k", "pass@1"], [tables.REPRODUCED, "gsm8k", "mean_output_tokens"],
        [tables.REPRODUCED, "math", "pass@1"], [tables.REPRODUCED, "math", "mean_output_tokens"]]
    err = k1[(k1["source"] == tables.REPRODUCED) & (k1["metric"] == "mean_errors")].iloc[0]
    assert (err["value"], err["paper"], err["diff"]) == (0.5, 0.62, pytest.approx(0.5 - 0.62))
    assert list(long["row"].unique()[:2]) == ["TF(k_max=1)", "TF(k_max=2)"]


def test_significance_pairs_rft_with_trajfusion():
    base = make_verdicts(80, 1, 0.3, seed=1)
    better = base.assign(correct=True, answer="1")
    runs = [eval_result(entry(method="rft", variant="rft", path="a"), base, 0),
            eval_result(entry(method="trajfusion", variant="tf", path="b"), better, 1),
            eval_result(entry(method="trajfusion", variant="tf", benchmark="gsm8k", path="c"), better, 2)]
    sig = tables.build_significance(tables.Inputs(runs, PAPER), n_resamples=300, seed=0)
    assert len(sig.long) == 1  # the gsm8k run has no RFT partner
    row = sig.long.iloc[0]
    n_wrong = int((~base["correct"]).sum())
    assert row["mcnemar_only_b"] == n_wrong and row["mcnemar_only_a"] == 0
    assert row["mcnemar_p"] == pytest.approx(2 * 0.5 ** n_wrong)
    assert row["paired_bootstrap_p"] == pytest.approx(1 / 301)


# ---------------------------------------------------------------------------- figures


def stats_table(n: int, seed: int, constant_entropy: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    k = 16
    n_incorrect = rng.integers(0, k + 1, n)
    entropy = np.zeros(n) if constant_entropy else np.log1p(n_incorrect) * rng.uniform(0.5, 1.0, n)
    return pd.DataFrame({"problem_id": [f"p{i}" for i in range(n)], "source": "s", "K": k,
                         "n_correct": k - n_incorrect, "n_incorrect": n_incorrect, "error_rate": n_incorrect / k,
                         "n_distinct_incorrect": np.minimum(n_incorrect, 3), "entropy": entropy, "n_filtered": 0,
                         "n_timeout": 0, "n_error": 0, "answer_groups": "[]"})


def panel(stats: pd.DataFrame, teacher: str = "qwen", pool: str = "p15k", where: str = "s") -> figures.StatsPanel:
    return figures.StatsPanel(teacher, pool, tuple(sorted(stats["source"].unique())), stats, where)


def _texts(fig) -> str:
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts) + " ".join(t.get_text() for t in fig.texts)


def test_figure1_labels_spearman_and_files(tmp_path):
    panels = [panel(stats_table(200, 0)), panel(stats_table(50, 1), "r1", "p100k")]
    fig = figures.figure1(panels, caveat=SMOKE_CAVEAT)
    assert len(fig.axes) == 4
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    text = _texts(fig)
    assert text.count("mixed outcomes: Spearman ρ = 0.") == 2 and SMOKE_CAVEAT in text
    paths = figures.save_figure(fig, tmp_path / "f1")
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.stat().st_size > 10_000 for p in paths)
    again = figures.save_figure(figures.figure1(panels, SMOKE_CAVEAT), tmp_path / "f1b")
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]


def test_figure1_degenerate_inputs():
    fig = figures.figure1([panel(stats_table(30, 1, constant_entropy=True))])
    assert "Spearman ρ = n/a" in _texts(fig)
    one = figures.figure1([panel(stats_table(1, 0))])
    assert "Spearman ρ = n/a" in _texts(one)
    assert "no statistics tables" in _texts(figures.figure1([]))
    rho, p = figures.spearman([0.1, 0.2, 0.3, 0.4], [1, 2, 3, 5])
    assert rho == pytest.approx(1.0)
    with pytest.raises(InputError, match="missing required column"):
        figures.figure1([panel(stats_table(5, 0).drop(columns="entropy"), where="s.parquet")])


def mixed_sources_manifest(root) -> dict:
    """Two statistics tables of one teacher: the 15K pool and the 100K pool with DeepMath."""
    entries = []
    for pool, sources in (("p15k", ["gsm8k_train", "math_train"]), ("p100k", ["gsm8k_train", "deepmath_103k"])):
        stats = stats_table(40, len(entries)).assign(source=[sources[i % 3 == 0] for i in range(40)])
        stats["problem_id"] = [f"{source}/{i:03d}" for i, source in enumerate(stats["source"])]
        stats = stats.sort_values("problem_id").reset_index(drop=True)
        path = root / f"{pool}.parquet"
        stats.to_parquet(path)
        entries.append({"teacher": "qwen", "pool": pool, "path": str(path)})
    return {"stats": entries}


def test_figure1_subset_shows_only_the_named_sources_problems(tmp_path):
    manifest = mixed_sources_manifest(tmp_path)
    (chosen,) = load_stats(manifest, "m.json", "qwen", "p100k", ("deepmath_103k",))
    expected = pd.read_parquet(tmp_path / "p100k.parquet").query("source == 'deepmath_103k'")
    assert chosen.stats["problem_id"].tolist() == expected["problem_id"].tolist() and len(expected) == 14
    assert (chosen.teacher, chosen.pool, chosen.sources) == ("qwen", "p100k", ("deepmath_103k",))
    fig = figures.figure1([chosen])
    assert fig._suptitle.get_text() == "Sampling statistics of qwen on deepmath_103k (pool p100k): 14 problems"
    assert all(ax.get_title().startswith("qwen on deepmath_103k (pool p100k)") for ax in fig.axes)
    everything = load_stats(manifest, "m.json")
    assert [(p.pool, p.sources, len(p.stats)) for p in everything] == [
        ("p15k", ("gsm8k_train", "math_train"), 40), ("p100k", ("deepmath_103k", "gsm8k_train"), 40)]


def test_figure1_names_that_match_nothing_are_errors(tmp_path):
    manifest = mixed_sources_manifest(tmp_path)
    with pytest.raises(InputError, match=r"p15k.parquet\): --figure1-sources \['deepmath_103k'\]: no problems of "
                                         r"\['deepmath_103k'\]; the table's sources: \['gsm8k_train', 'math_train'\]"):
        load_stats(manifest, "m.json", "qwen", "p15k", ("deepmath_103k",))
    with pytest.raises(InputError, match=r"m.json: --figure1-teacher 'r1' and --figure1-pool None match no"):
        load_stats(manifest, "m.json", "r1", None, ())
    # a misspelt source (any name may be a declared dataset) matches nothing in the statistics
    with pytest.raises(InputError, match=r"--figure1-sources \['deepmth'\]: no problems of \['deepmth'\]"):
        load_stats(manifest, "m.json", "qwen", "p15k", ReportSettings.from_dict({"figure1_sources": ["deepmth"]})
                   .figure1_sources)
    assert ReportSettings.from_dict({"figure1_sources": "deepmath_103k"}).figure1_sources == ("deepmath_103k",)


def test_figures_3_and_4_with_one_checkpoint_and_no_reflections(tmp_path):
    runs = [eval_result(entry(tables=["figure3", "figure4"], method=m, variant=m, benchmark=b, checkpoint="ckpt-10",
                              samples_seen=640, path=f"{m}-{b}"), make_verdicts(20, 1, 0.5, seed=i), i)
            for i, (m, b) in enumerate([(m, b) for m in ("rft", "trajfusion") for b in ("math", "gsm8k")])]
    fig3 = figures.figure3(runs)
    assert len(fig3.axes) == 1
    assert fig3.axes[0].get_xlabel() == "Training samples seen" and "Pass@1" in fig3.axes[0].get_ylabel()
    fig4 = figures.figure4(runs, caveat=SMOKE_CAVEAT)
    assert len(fig4.axes) == 6 and all(ax.get_ylabel() and ax.get_title() for ax in fig4.axes)
    per_1k = [ax for ax in fig4.axes if "per 1,000 tokens" in ax.get_title()]
    assert len(per_1k) == 2
    for ax in per_1k:  # reflections and the generic markers: two labelled series per method
        labels = [line.get_label() for line in ax.get_lines()]
        assert sum(label.endswith(": reflection phrases") for label in labels) == 2
        assert sum(label.endswith(": generic markers (wait, hmm, ...)") for label in labels) == 2
    assert SMOKE_CAVEAT in _texts(fig4)
    for fig, name in ((fig3, "f3"), (fig4, "f4")):
        assert all(p.stat().st_size > 5_000 for p in figures.save_figure(fig, tmp_path / name))
    empty = figures.figure3([r for r in runs if r.bench == "gsm8k"])
    assert "no MATH evaluations" in _texts(empty)


# -------------------------------------------------------------------------- end to end


def write_manifest(root, smoke: bool = True) -> tuple:
    evals = []

    def add(df, **fields):
        path = root / "eval" / f"{len(evals)}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(path)
        evals.append(entry(path=str(path), backbone="smollm2-135m", data_size="embedded", pool="embedded",
                           teacher="smol", profile="embedded", backbone_label="SmolLM2-135M",
                           variant_label={"rft": "Vanilla RFT", "trajfusion": "TrajFusion"}[fields["method"]],
                           **fields))

    # Shaped like the lead's rule output: every entry of an experiment is listed for its table
    # and figures, whatever its checkpoint.
    in_table1 = ["table1", "figure3", "figure4"]
    for m, p in (("rft", 0.3), ("trajfusion", 0.45)):
        for b in ("math", "gsm8k", "synthetic_arith_test"):
            add(make_verdicts(40, 1, p + 0.15, seed=len(evals), prefix=b), tables=in_table1, method=m, variant=m,
                benchmark=b)
        for ckpt, seen, gain in (("ckpt-20", 80, 0.0), ("ckpt-40", 160, 0.1)):
            for b in ("math", "gsm8k"):
                add(make_verdicts(40, 1, p + gain, seed=len(evals), prefix=b, tokens=120 if m == "rft" else 160,
                                  reflections=0.0 if m == "rft" else 0.3),
                    tables=in_table1, method=m, variant=m, benchmark=b, checkpoint=ckpt, samples_seen=seen)
        add(make_verdicts(6, 4, p, seed=len(evals), prefix="aime"), tables=["table3"], method=m, variant=m,
            benchmark="aime24")
        for b in ("gsm8k", "math"):
            add(make_verdicts(30, 1, p, seed=len(evals), prefix=b), tables=["table2"], method=m, variant=m,
                benchmark=b, context="")
    summary = root / "tf.summary.json"
    summary.write_text(json.dumps({"problems": 10, "mean_errors": 0.7, "k_max": 4, "strategy": "highdiv"}))
    stats = root / "stats.parquet"
    stats_table(60, 3).to_parquet(stats)
    manifest = {"smoke_test": smoke, "evals": evals,
                "fusion_summaries": [{"pool": "embedded", "teacher": "smol", "variant": "trajfusion",
                                      "variant_label": "TrajFusion", "k_max": 4, "strategy": "highdiv",
                                      "path": str(summary)}],
                "stats": [{"teacher": "smol", "pool": "embedded", "path": str(stats)}],
                "provenance": {"config_hash": "abc123"}}
    path = root / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path, manifest


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_report_end_to_end_is_complete_and_deterministic(tmp_path):
    manifest_path, manifest = write_manifest(tmp_path)
    out = tmp_path / "report"
    assert run_cli(["report", "--manifest", str(manifest_path), "--out-dir", str(out),
                    "--bootstrap-samples", "200"]) == 0
    names = sorted(p.name for p in out.iterdir())
    expected = {f"{t}.{ext}" for t in ("table1", "table2", "table3", "significance") for ext in ("md", "csv", "tex")}
    expected |= {f"{f}.{ext}" for f in ("figure1", "figure3", "figure4") for ext in ("png", "pdf")}
    assert set(names) == expected | {"metrics.csv", "index.md", "graders.md", "graders.csv"}
    for md in out.glob("*.md"):
        assert SMOKE_CAVEAT in md.read_text()
    for csv in out.glob("*.csv"):
        assert (pd.read_csv(csv)["caveat"] == SMOKE_CAVEAT).all()
    index = (out / "index.md").read_text()
    assert all(f"({name})" in index for name in names if name != "index.md")
    assert "abc123" in index

    metrics_csv = pd.read_csv(out / "metrics.csv")
    assert len(metrics_csv) == 9 * len(manifest["evals"])
    aime = metrics_csv[(metrics_csv["benchmark"] == "aime24") & (metrics_csv["method"] == "trajfusion")]
    assert set(aime["metric"]) == {"pass@1", "avg@k", "maj@k", "pass@4", "mean_output_tokens", "mean_reflections",
                                   "mean_markers", "reflections_per_1k_tokens", "markers_per_1k_tokens"}
    sig = pd.read_csv(out / "significance.csv")
    # final math/gsm8k/synthetic, math/gsm8k at two checkpoints, table2's final math/gsm8k
    # (no context), aime24
    assert len(sig) == 10
    assert sig["mcnemar_p"].between(0, 1).all() and sig["paired_bootstrap_p"].between(0, 1).all()
    t2 = (out / "table2.md").read_text()
    assert "TF(k_max=4, highdiv)" in t2 and "0.70" in t2
    assert "synthetic_arith_test*" in (out / "table1.md").read_text()

    again = tmp_path / "again"
    build_report(manifest_path, again, n_resamples=200)
    for name in names:
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


def test_report_without_smoke_caveat_and_bad_manifests(tmp_path):
    manifest_path, manifest = write_manifest(tmp_path, smoke=False)
    build_report(manifest_path, tmp_path / "r", n_resamples=50)
    assert SMOKE_CAVEAT not in (tmp_path / "r" / "table1.md").read_text()
    assert "caveat" not in pd.read_csv(tmp_path / "r" / "metrics.csv").columns

    bad = dict(manifest, evals=[dict(manifest["evals"][0], method="sft")])
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match=r"evals\[0\]\.method"):
        build_report(tmp_path / "bad.json", tmp_path / "x")
    missing = dict(manifest, evals=[dict(manifest["evals"][0], path=str(tmp_path / "nope.parquet"))])
    (tmp_path / "missing.json").write_text(json.dumps(missing))
    with pytest.raises(InputError, match="nope.parquet: file does not exist"):
        build_report(tmp_path / "missing.json", tmp_path / "x")
    broken = pd.read_parquet(manifest["evals"][0]["path"]).drop(columns="correct")
    broken.to_parquet(tmp_path / "broken.parquet")
    (tmp_path / "broken.json").write_text(json.dumps(dict(manifest, evals=[
        dict(manifest["evals"][0], path=str(tmp_path / "broken.parquet"))])))
    with pytest.raises(InputError, match="broken.parquet: missing required column"):
        build_report(tmp_path / "broken.json", tmp_path / "x")
    assert math.isfinite(pd.read_csv(tmp_path / "r" / "metrics.csv")["value"].iloc[0])


def test_report_reads_statistics_and_verdicts_through_their_contracts(tmp_path):
    manifest_path, manifest = write_manifest(tmp_path)
    stats_path = manifest["stats"][0]["path"]
    stats = pd.read_parquet(stats_path)
    stats.loc[4, "error_rate"] = 1.5
    stats.to_parquet(stats_path)
    with pytest.raises(InputError, match=r"stats.parquet: record 5 \(problem_id='p4'\): field 'error_rate' must be "
                                         r"<= 1, got 1.5$"):
        build_report(manifest_path, tmp_path / "r", n_resamples=10)
    verdicts_path = manifest["evals"][0]["path"]
    verdicts = pd.read_parquet(verdicts_path)
    verdicts.loc[2, "status"] = "maybe"
    verdicts.to_parquet(verdicts_path)
    with pytest.raises(InputError, match=rf"{verdicts_path}: record 3 \(problem_id=.*\): field 'status' must be "
                                         r"one of \['ok', .*\], got 'maybe'$"):
        build_report(manifest_path, tmp_path / "r", n_resamples=10)


def test_spearman_p_value_is_exact_for_few_points():
    from trajfusion.report.figures import spearman

    # Three perfectly ranked points: 2 of the 6 pairings reach |rho| = 1, so p = 1/3 exactly
    # (the asymptotic formula would claim p ~ 0).
    rho, p = spearman([0.4, 0.5, 0.8], [0.7, 1.1, 1.6])
    assert rho == 1.0 and abs(p - 1 / 3) < 1e-12
    rho, p = spearman(list(range(30)), [v + (v % 3) for v in range(30)])
    assert rho > 0.9 and p < 1e-6


def test_cost_table_sums_stages_and_gpu_hours(tmp_path):
    from trajfusion.io import InputError
    from trajfusion.report.cost import cost_table, read_cost_files

    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    files = {"sample/qwen/p15k/shard-0.tsv": (3600, 2000, 3000), "sample/qwen/p15k/shard-1.tsv": (1800, 2500, 1500),
             "train/llama/qwen/p15k/base/tf.tsv": (7200, 90000, 50000), "verify/qwen/p15k.tsv": (600, 4000, 1100)}
    for relative, (wall, rss, cpu) in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + f"{wall}\t0:00:00\t{rss}\t1\t1\t1\t0\t0\t50\t{cpu}\n")
    jobs = read_cost_files(tmp_path, list(files), [("sample/qwen/*", 1), ("train/*/*/*/base/*", 8)])
    table = cost_table(jobs).set_index("stage")
    assert table.loc["sample", "jobs"] == 2 and table.loc["sample", "gpu_h"] == 1.5
    assert table.loc["train", "gpu_h"] == 16.0 and table.loc["verify", "gpu_h"] == 0.0
    assert table.loc["total", "jobs"] == 4 and table.loc["total", "wall_h"] == pytest.approx(13200 / 3600)
    assert table.loc["total", "max_rss_mb"] == 90000
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.tsv").write_text("not\ta\nbenchmark\n")
    with pytest.raises(InputError, match="x.tsv"):
        read_cost_files(tmp_path, ["broken/x.tsv"], [])


def test_cost_table_counts_only_the_listed_jobs_not_an_earlier_configs(tmp_path):
    """The report rule lists its plan's benchmark files: one an earlier config left in the
    same folder is not counted, and a listed job without a file is left out."""
    from trajfusion.report.build import write_cost

    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    cost_dir = tmp_path / "cost"
    for relative, wall in (("fuse/t/p/tf.tsv", 60), ("train/old/t/p/base/tf.tsv", 7200)):
        (cost_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        (cost_dir / relative).write_text(header + f"{wall}\t0:01:00\t100\t1\t1\t1\t0\t0\t50\t{wall}\n")
    out_dir = tmp_path / "report"
    out_dir.mkdir()
    write_cost(cost_dir, ["fuse/t/p/tf.tsv", "fuse/t/p/rft.tsv"], [["train/*", 8]], out_dir, None)
    markdown = (out_dir / "cost.md").read_text()
    assert "| fuse | 1 |" in markdown and "| total | 1 |" in markdown
    assert "train" not in markdown
    assert "train" not in (out_dir / "cost.csv").read_text()


def test_exact_spearman_p_value_at_eight_points_matches_enumeration():
    """All 8! pairings enumerated by hand, with ties, against the exact p-value (which once
    permuted both samples: (8!)^2 statistic evaluations, hours and gigabytes)."""
    import itertools

    from scipy import stats

    from trajfusion.report.figures import spearman

    x = [0.1, 0.3, 0.3, 0.5, 0.6, 0.8, 0.9, 1.0]
    y = [1, 2, 2, 5, 3, 6, 8, 7]
    rho, p = spearman(x, y)
    observed = stats.spearmanr(x, y).statistic
    x_centred = stats.rankdata(x) - stats.rankdata(x).mean()
    perms = np.array(list(itertools.permutations(stats.rankdata(y))))
    perms_centred = perms - perms.mean(axis=1, keepdims=True)
    null = perms_centred @ x_centred / np.sqrt((perms_centred ** 2).sum(axis=1) * (x_centred ** 2).sum())
    tolerance = 1e-12
    expected = min(1.0, 2 * min((null <= observed + tolerance).mean(), (null >= observed - tolerance).mean()))
    assert rho == pytest.approx(observed)
    assert p == pytest.approx(expected)


def test_table2_shows_the_trained_err_next_to_the_fused_one(tmp_path):
    """The length policy can train on fewer errors than were fused: Table 2 shows both, the
    trained value from each run's train_meta.json."""
    manifest_path, manifest = write_manifest(tmp_path)
    for e in manifest["evals"]:
        meta = tmp_path / f"{e['method']}.train_meta.json"
        meta.write_text(json.dumps({"dataset": {"mean_errors_trained": 0.0 if e["method"] == "rft" else 0.55}}))
        if "table2" in e["tables"]:
            e["train_meta"] = str(meta)
    manifest_path.write_text(json.dumps(manifest))
    out = tmp_path / "report"
    assert run_cli(["report", "--manifest", str(manifest_path), "--out-dir", str(out), "--bootstrap-samples",
                    "50"]) == 0
    long = pd.read_csv(out / "table2.csv")
    mine = long[long["source"] == tables.REPRODUCED].set_index(["row", "metric"])["value"]
    assert mine[("TF(k_max=4, highdiv)", "mean_errors")] == 0.7
    assert mine[("TF(k_max=4, highdiv)", "mean_errors_trained")] == 0.55
    assert mine[("Vanilla RFT", "mean_errors_trained")] == 0.0
    md = (out / "table2.md").read_text()
    def cells(line: str) -> list[str]:
        return [cell.strip() for cell in line.strip("|").split("|")]

    header = cells(next(line for line in md.splitlines() if "#Err" in line))
    row = cells(next(line for line in md.splitlines() if "reproduced" in line and "TF(k_max=4" in line))
    at = header.index("#Err")
    assert header[at + 1] == "#Err trained" and row[at:at + 2] == ["0.70", "0.55"]


def test_tapo_rows_name_the_constructor_of_their_data():
    benches = ["math", "gsm8k"]
    results = [eval_result(entry(benchmark=b, variant="tapo", method="tapo", variant_label="TAPO-SFT"),
                           make_verdicts(20, 1, 0.4, seed=i, prefix=b), i) for i, b in enumerate(benches)]
    info = tables.FusionInfo(0.0, 0, "highdiv", "tapo.summary.json", "rule")
    d = build(tables.TABLE1, results, fusion_for=lambda result: info).display
    assert "TAPO-SFT (rule-built)" in d["Method"].tolist()
    for result in results:
        result.entry["tables"] = ["results-tapo"]
    inputs = tables.Inputs(results, PAPER, lambda result: info)
    assert tables.build_results_table("results-tapo", inputs).display["Method"].tolist() == ["TAPO-SFT (rule-built)"]
    assert tables.method_label("tapo", None) == "TAPO-SFT"
