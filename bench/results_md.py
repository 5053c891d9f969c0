"""bench/results.md: each benchmark owns one `## ` section and replaces only that section.

Each benchmark also records its headline figure (measured, baseline, ratio, target) in
bench/metrics.json; `bench/run_all.py` turns those into the summary at the top of
results.md.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results.md"
METRICS = BENCH / "metrics.json"


def replace_section(text: str, section: str) -> str:
    """``text`` with the section whose heading is ``section``'s first line replaced, or appended."""
    heading = section.splitlines()[0]
    body = section.strip("\n") + "\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: body + "\n", text, count=1).rstrip("\n") + "\n"
    base = text.rstrip("\n") + "\n\n" if text.strip() else "# Benchmark results\n\n"
    return base + body


def write_section(section: str, path: str | Path = RESULTS) -> Path:
    from trajfusion.io import write_text

    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    write_text(replace_section(text, section), path)
    return path


def record_headline(name: str, *, measured: str, baseline: str, ratio: str, target: str, met: bool,
                    path: str | Path = METRICS) -> None:
    """Store benchmark ``name``'s headline figure for the summary table."""
    from trajfusion.io import write_json

    path = Path(path)
    metrics = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    metrics[name] = {"measured": measured, "baseline": baseline, "ratio": ratio, "target": target, "met": met}
    write_json(metrics, path)
