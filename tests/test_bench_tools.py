"""The benchmark runner's bookkeeping: sections, headlines, the summary and per-stage times."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench_embedded  # noqa: E402
import results_md  # noqa: E402
import run_all  # noqa: E402


def test_a_section_is_replaced_in_place_and_a_new_one_appended():
    text = "# Benchmark results\n\n## A\nold a\n\n## B\nb\n"
    replaced = results_md.replace_section(text, "## A\nnew a\n")
    assert replaced == "# Benchmark results\n\n## A\nnew a\n\n## B\nb\n"
    assert results_md.replace_section(replaced, "## C\nc").endswith("## B\nb\n\n## C\nc\n")


def test_headlines_accumulate_and_the_summary_goes_first(tmp_path):
    metrics = tmp_path / "metrics.json"
    results_md.record_headline("Fusion", measured="19 s", baseline="12 s", ratio="1.5x", target="< 60 s", met=True,
                               path=metrics)
    results_md.record_headline("Verification", measured="900/s", baseline="100/s", ratio="9.0x", target=">= 20x",
                               met=False, path=metrics)
    results_md.record_headline("Fusion", measured="18 s", baseline="12 s", ratio="1.5x", target="< 60 s", met=True,
                               path=metrics)
    loaded = json.loads(metrics.read_text())
    assert list(loaded) == ["Fusion", "Verification"] and loaded["Fusion"]["measured"] == "18 s"
    summary = run_all.summary_section(loaded, {"fuse": 60.0}, ["- CPU: test"], "2026-01-01 00:00")
    assert "| Verification | 900/s | 100/s | 9.0x | >= 20x | **no** |" in summary
    assert "| Fusion | 18 s | 12 s | 1.5x | < 60 s | yes |" in summary
    text = "# Benchmark results\n\n## Fusion\nx\n\n## Summary\nstale\n"
    updated = run_all.put_summary_first(text, summary)
    assert updated.startswith("# Benchmark results\n\n## Summary\n") and "stale" not in updated
    assert updated.count("## Summary") == 1 and "## Fusion\nx" in updated


def test_stage_times_sum_the_benchmark_files_per_rule(tmp_path):
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    files = {"evaluate/m/a.tsv": "2.5", "evaluate/m/b.tsv": "1.5", "train/x.tsv": "10.0", "report.tsv": "0.5"}
    for relative, seconds in files.items():
        path = tmp_path / "results" / "cost" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + f"{seconds}\t0:00:02\t1\t1\t1\t1\t0\t0\t0\t1\n")
    stages = bench_embedded.stage_times(tmp_path)
    assert stages == {"evaluate": (2, pytest.approx(4.0)), "train": (1, 10.0), "report": (1, 0.5)}
    section = bench_embedded.render(elapsed=8.0, stages=stages)
    assert "| total | 4 | 14 |" in section and "**1.81x**" in section
