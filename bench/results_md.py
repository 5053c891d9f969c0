"""bench/results.md: each benchmark owns one `## ` section and replaces only that section."""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.md"


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
