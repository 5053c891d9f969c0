"""The paper's published numbers (``resources/paper_results.yaml``) as a tidy frame.

``paper_frame`` has one row per paper table x row x column x metric, keyed by the field
names the runs' metrics use (``paper_backbone``, ``method``, ``data_size``, ``context``,
``column``, ``metric``); ``paper_row`` is the row's label and ``order`` its position in the
paper's table. ``match_key`` maps the pipeline's benchmark and backbone names onto the
paper's keys through their aliases.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd
import yaml

from trajfusion.io import InputError

PAPER_TABLES = ("table1", "table2", "table3")
PAPER_COLUMNS = ("table", "order", "paper_row", "paper_backbone", "method", "data_size", "context", "column",
                 "metric", "value")


def default_paper_results() -> Path:
    return Path(str(resources.files("trajfusion") / "resources" / "paper_results.yaml"))


@lru_cache(maxsize=4)
def _load_yaml(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def load_paper_results(path: str | Path | None = None) -> dict:
    path = Path(path) if path else default_paper_results()
    if not path.exists():
        raise InputError(f"{path}: paper results file does not exist")
    data = _load_yaml(str(path))
    for key in ("benchmarks", "backbones", *PAPER_TABLES):
        if not isinstance(data, dict) or key not in data:
            raise InputError(f"{path}: missing top-level key {key!r}")
    return data


def normalize_name(name) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def match_key(name: str | None, section: dict) -> str | None:
    """The key of ``section`` whose own name or one of whose aliases equals ``name`` (normalized)."""
    if name is None:
        return None
    wanted = normalize_name(name)
    for key, spec in section.items():
        if wanted == normalize_name(key) or wanted in {normalize_name(a) for a in spec.get("aliases", [])}:
            return key
    return None


def paper_frame(paper: dict) -> pd.DataFrame:
    """Every published cell, in the file's order; a null cell (a dash in the paper) is NaN."""
    records = []
    for table in PAPER_TABLES:
        spec = paper[table]
        for order, row in enumerate(spec["rows"]):
            fields = {"table": table, "order": order, "paper_row": row["label"],
                      "paper_backbone": row.get("backbone", spec.get("backbone")), "method": row.get("method"),
                      "data_size": row.get("data_size"), "context": row.get("context")}
            for column, cell in row["scores"].items():
                by_metric = cell if isinstance(cell, dict) else {spec["metric"]: cell}
                records += [{**fields, "column": column, "metric": metric,
                             "value": math.nan if value is None else float(value)}
                            for metric, value in by_metric.items()]
    return pd.DataFrame(records, columns=list(PAPER_COLUMNS))
