"""One export: a fused dataset in, the records of one format, the dataset card and (sharegpt)
LLaMA-Factory's ``dataset_info.json`` entry out. Every input is read and checked before the first
output is written; each output is written atomically."""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

from trajfusion.contracts import FUSED_EXAMPLE, PROBLEMS, check_records
from trajfusion.contracts import read as read_table
from trajfusion.export.card import CardFacts, render_card
from trajfusion.export.formats import DATASET_INFO_FORMATS, export_record
from trajfusion.export.licenses import declared_licenses, load_licenses
from trajfusion.export.llamafactory import dataset_info_lock, merged_dataset_info, write_dataset_info
from trajfusion.export.settings import ExportSettings
from trajfusion.fuse.build import default_summary_path
from trajfusion.io import InputError, library_versions, read_json_file, read_jsonl, sha256_file, write_jsonl, write_text
from trajfusion.plan import match
from trajfusion.templates import load_template

log = logging.getLogger(__name__)

CARD_NAME = "README.md"
DATASET_INFO_NAME = "dataset_info.json"  # LLaMA-Factory's DATA_CONFIG
# The fused-row columns that must agree with the summary's, when both are there.
SUMMARY_KEYS = ("alpha", "k_max", "strategy", "seed")


def system_prompt(settings: ExportSettings) -> str:
    """The given system prompt, or the template's; a few-shot template has none to give."""
    if settings.system is not None:
        return settings.system
    template = load_template(settings.template)
    if template.kind == "few_shot" or not template.system.strip():
        raise InputError(f"--template: template {settings.template!r} has no system prompt (kind "
                         f"{template.kind!r}); export takes a chat or text template, or --system TEXT")
    return template.system


def read_fused(path: str | Path) -> list[dict]:
    """The fused rows, each checked against the fused dataset's contract (file, record, field)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: fused dataset does not exist")
    return list(check_records(read_jsonl(path), FUSED_EXAMPLE, str(path)))


def read_summary(path: Path | None, explicit: bool, rows: list[dict]) -> dict | None:
    """The fusion summary (None when the default one is absent), checked against the rows."""
    if path is None or (not explicit and not path.exists()):
        return None
    summary = read_json_file(path, "fusion summary")
    if not isinstance(summary, dict):
        raise InputError(f"{path}: expected a JSON object")
    if "problems" in summary and summary["problems"] != len(rows):
        raise InputError(f"{path}: field 'problems' is {summary['problems']}, but the fused dataset has "
                         f"{len(rows)} records: the summary belongs to another file")
    for key in SUMMARY_KEYS:
        values = {row[key] for row in rows}
        if rows and key in summary and values != {summary[key]}:
            raise InputError(f"{path}: field {key!r} is {summary[key]!r}, the fused rows have "
                             f"{sorted(values, key=str)}")
    return summary


def source_counts(rows: list[dict], pool_table: str | Path | None) -> Counter:
    """Records per pool source: from the pool table's ``source`` column, else the problem id's
    ``<source>/`` prefix (the built-in sources' id scheme)."""
    if pool_table is None:
        return Counter(row["problem_id"].split("/", 1)[0] if "/" in row["problem_id"] else "(unknown)"
                       for row in rows)
    pool = read_table(pool_table, PROBLEMS, columns=["problem_id", "source"])
    sources = dict(zip(pool["problem_id"].tolist(), pool["source"].tolist()))
    missing = [row["problem_id"] for row in rows if row["problem_id"] not in sources]
    if missing:
        raise InputError(f"{pool_table}: no row for problem_id {missing[0]!r} of the fused dataset "
                         f"({len(missing)} missing): the pool table belongs to another pool")
    return Counter(sources[row["problem_id"]] for row in rows)


def dataset_name(settings: ExportSettings, output: Path) -> str:
    if settings.name is not None:
        return settings.name
    return output.name[:-len(".jsonl")] if output.name.endswith(".jsonl") else output.stem


def export_file(input_path: str | Path, output: str | Path, settings: ExportSettings, *,
                summary_path: str | Path | None = None, pool_table: str | Path | None = None,
                card_path: str | Path | None = None, dataset_info_path: str | Path | None = None) -> dict:
    """Write the export, its card and (sharegpt) its dataset_info.json entry; returns the counts."""
    input_path, output = Path(input_path), Path(output)
    if output.resolve() == input_path.resolve():
        raise InputError(f"--output: {output} is the input file")
    card_path = Path(card_path) if card_path else output.with_name(CARD_NAME)
    with_info = settings.format in DATASET_INFO_FORMATS
    if dataset_info_path is not None and not with_info:
        raise InputError(f"--dataset-info: only with --format {' or '.join(DATASET_INFO_FORMATS)} "
                         f"(got --format {settings.format})")
    system = system_prompt(settings)
    rows = read_fused(input_path)
    summary_file = Path(summary_path) if summary_path else default_summary_path(input_path)
    facts = _card_facts(input_path, output, card_path, settings, system, rows,
                        read_summary(summary_file, summary_path is not None, rows), summary_file, pool_table)
    card = render_card(facts)
    records = (export_record(row, settings.format, system, settings.provenance) for row in rows)
    if not with_info:
        write_jsonl(records, output)
        write_text(card, card_path)
    else:
        info_path = Path(dataset_info_path) if dataset_info_path else output.with_name(DATASET_INFO_NAME)
        with dataset_info_lock(info_path):
            info = merged_dataset_info(info_path, facts.name, output)
            write_jsonl(records, output)
            write_text(card, card_path)
            write_dataset_info(info, info_path)
    log.info("exported %d records (%s, system prompt %s) -> %s; card %s", len(rows), settings.format,
             f"of template {settings.template!r}" if settings.template else "given", output, card_path)
    return {"records": len(rows), "sources": dict(facts.sources)}


def _card_facts(input_path: Path, output: Path, card_path: Path, settings: ExportSettings, system: str,
                rows: list[dict], summary: dict | None, summary_file: Path, pool_table) -> CardFacts:
    wildcards = match("fused", input_path) or {}
    return CardFacts(
        name=dataset_name(settings, output), format=settings.format,
        data_file=Path(os.path.relpath(output, card_path.parent)).as_posix(), input_path=str(input_path),
        input_sha256=sha256_file(input_path), system=system, template=settings.template,
        teacher=settings.teacher or wildcards.get("teacher"), pool=settings.pool or wildcards.get("pool"),
        variant=settings.variant or wildcards.get("variant"), teacher_model=settings.teacher_model,
        rows=tuple(rows), sources=source_counts(rows, pool_table),
        licenses={**load_licenses(), **declared_licenses(settings.dataset_licenses)}, summary=summary,
        summary_path=str(summary_file) if summary is not None else None, provenance=settings.provenance,
        version=library_versions(("trajfusion",))["trajfusion"])
