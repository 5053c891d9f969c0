"""The distillation runs in the report: diagnostics figure and table from a synthetic
diagnostics.jsonl, distilled models as Table 1 rows, and their paired tests against the SFT runs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.test_report import make_verdicts, write_manifest
from trajfusion.io import InputError
from trajfusion.report import build_report
from trajfusion.report.distill import diagnostics_table, read_diagnostics

RECORDS = [  # step, loss, mean divergence, share (null: no high-loss token at that step)
    {"step": 1, "epoch": 0.1, "loss": 0.9, "mean_divergence": 0.8, "high_loss_low_future_share": 0.5,
     "high_loss_tokens": 4.0, "completion_tokens": 20.0},
    {"step": 2, "epoch": 0.2, "loss": 0.5, "mean_divergence": 0.4, "high_loss_low_future_share": 0.25,
     "high_loss_tokens": 4.0, "completion_tokens": 20.0},
    {"step": 3, "epoch": 0.3, "loss": 0.3, "mean_divergence": 0.2, "high_loss_low_future_share": None,
     "high_loss_tokens": 0.0, "completion_tokens": 20.0},
]


def write_diagnostics(path, records=RECORDS):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_diagnostics_are_read_by_step_with_null_as_nan(tmp_path):
    records = [RECORDS[1], RECORDS[0], RECORDS[2]]  # out of order
    frame = read_diagnostics(write_diagnostics(tmp_path / "d.jsonl", records), "manifest")
    assert frame["step"].tolist() == [1, 2, 3]
    assert frame["mean_divergence"].tolist() == [0.8, 0.4, 0.2]
    assert frame["high_loss_low_future_share"].iloc[:2].tolist() == [0.5, 0.25]
    assert pd.isna(frame["high_loss_low_future_share"].iloc[2])


def test_a_malformed_diagnostics_line_names_the_file_and_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\n" + json.dumps({"step": 2, "loss": 0.1}) + "\n")
    with pytest.raises(InputError, match=r"d.jsonl:2: .*missing \['mean_divergence', 'high_loss_low_future_share'\]"):
        read_diagnostics(path, "manifest")
    with pytest.raises(InputError, match="file does not exist"):
        read_diagnostics(tmp_path / "none.jsonl", "manifest distill_runs[0]")


def test_the_diagnostics_table_summarizes_each_run(tmp_path):
    path = str(write_diagnostics(tmp_path / "d.jsonl"))
    run = {"experiment": "table1", "backbone": "smol", "student": "tf", "method": "topd",
           "label": "TOPD (from TrajFusion)", "path": path}
    table = diagnostics_table("table1", [(run, read_diagnostics(path, "m"))])
    row = table.long.iloc[0]
    assert table.name == "distill-table1"
    assert (row["steps_logged"], row["first_mean_divergence"], row["last_mean_divergence"]) == (3, 0.8, 0.2)
    assert row["mean_share"] == pytest.approx(0.375)  # mean over the steps with high-loss tokens
    assert row["last_loss"] == 0.3
    shown = table.display.iloc[0]
    assert shown["Mean divergence (first → last step)"] == "0.8000 → 0.2000"
    assert shown["High-loss, low-future share (mean)"] == "0.375"


def distilled_manifest(root):
    """The report test's manifest plus two distilled models on Table 1's benchmarks and their
    diagnostics."""
    manifest_path, manifest = write_manifest(root)
    runs = []
    for i, (method, label) in enumerate((("opd", "OPD (from TrajFusion)"), ("topd", "TOPD (from TrajFusion)"))):
        for bench in ("math", "gsm8k"):
            path = root / "eval" / f"distilled-{method}-{bench}.parquet"
            make_verdicts(40, 1, 0.7, seed=100 + i, prefix=bench).to_parquet(path)
            manifest["evals"].append({
                "experiment": "main", "tables": ["table1"], "backbone": "smollm2-135m", "teacher": "smol",
                "profile": "embedded", "variant": f"tf/{method}", "variant_label": label, "method": method,
                "backbone_label": "SmolLM2-135M", "pool": "embedded", "data_size": "embedded", "context": "4k",
                "checkpoint": "final", "samples_seen": None, "benchmark": bench, "path": str(path)})
        diagnostics = write_diagnostics(root / f"{method}.jsonl")
        runs.append({"experiment": "main", "backbone": "smollm2-135m", "student": "tf", "method": method,
                     "label": label, "path": str(diagnostics)})
    manifest["distill_runs"] = runs
    manifest_path.write_text(json.dumps(manifest))
    return manifest_path


def test_the_report_shows_distilled_models_beside_the_sft_runs(tmp_path):
    out = tmp_path / "report"
    written = build_report(distilled_manifest(tmp_path), out, n_resamples=200)
    for name in ("distill-main.png", "distill-main.pdf", "distill-main.md", "distill-main.csv",
                 "significance-distill.md", "significance-distill.csv"):
        assert (out / name).stat().st_size > 0, name
    assert {p.name for p in written["Distillation"]} >= {"distill-main.png", "distill-main.md"}
    assert "(distill-main.png)" in (out / "index.md").read_text()
    table1 = pd.read_csv(out / "table1.csv")
    topd = table1[(table1["variant"] == "TOPD (from TrajFusion)") & (table1["column"] == "math")]
    assert topd["row"].tolist() == ["TOPD"] and topd["source"].tolist() == ["reproduced"]
    # each distilled model against the RFT and the TrajFusion run, on math and gsm8k
    sig = pd.read_csv(out / "significance-distill.csv")
    assert len(sig) == 2 * 2 * 2
    assert set(sig["sft_variant"]) == {"rft", "trajfusion"} and set(sig["distilled_variant"]) == {"tf/opd", "tf/topd"}
    assert sig["mcnemar_p"].between(0, 1).all() and sig["paired_bootstrap_p"].between(0, 1).all()
    assert "TOPD (from TrajFusion)" in (out / "significance-distill.md").read_text()
    # the RFT/TrajFusion table is unchanged by the distilled models
    assert len(pd.read_csv(out / "significance.csv")) == 10
    diagnostics = pd.read_csv(out / "distill-main.csv")
    assert diagnostics["label"].tolist() == ["OPD (from TrajFusion)", "TOPD (from TrajFusion)"]


def test_a_report_without_distillation_writes_no_distillation_outputs(tmp_path):
    manifest_path, _ = write_manifest(tmp_path)
    build_report(manifest_path, tmp_path / "r", n_resamples=50)
    assert not list((tmp_path / "r").glob("*distill*"))
