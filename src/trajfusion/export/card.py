"""The dataset card (``README.md``) of an exported file: Hugging Face front matter, then what
the data is, how it was built, its counts, its system prompt and the licenses of its sources.

Everything on the card comes from the fused file (its rows' provenance columns), its
``.summary.json``, the pool table (each problem's source) and ``resources/licenses.yaml``; no
time stamps, so the card is byte-identical for the same inputs.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import yaml

from trajfusion.export.formats import DESCRIPTIONS, PROVENANCE
from trajfusion.export.licenses import UNKNOWN, SourceLicense

# The fusion settings the card lists, in this order, from the summary (else the rows).
SETTING_ROWS = (("k_max", "maximum fused errors; 0 is vanilla RFT"),
                ("alpha", "alpha of k(x) = min(k_max, floor(alpha · r · u))"), ("strategy", "error selection"),
                ("seed", "fusion seed"), ("certainty_prob", "probability of a certainty phrase"),
                ("keep_final", "y*'s own text after `</think>` kept"), ("phrases", "phrase file"),
                ("phrases_sha256", "phrase file SHA-256"))


@dataclass(frozen=True)
class CardFacts:
    name: str
    format: str
    data_file: str  # the exported file, relative to the card
    input_path: str
    input_sha256: str
    system: str
    template: str | None
    teacher: str | None
    pool: str | None
    variant: str | None
    teacher_model: str | None
    rows: tuple[dict, ...]  # the fused rows
    sources: Counter  # records per pool source
    licenses: dict[str, SourceLicense]
    summary: dict | None
    summary_path: str | None
    provenance: bool
    version: str


def render_card(facts: CardFacts) -> str:
    parts = [_front_matter(facts), f"# {facts.name}\n", _what(facts), _built(facts), _counts(facts),
             _system(facts), _fields(facts), _license_section(facts)]
    return "\n".join(parts)


# ---- front matter -------------------------------------------------------------------------

def card_licenses(facts: CardFacts) -> list[str]:
    """The Hub license ids of the sources present, ``unknown`` for an undeclared one."""
    return sorted({facts.licenses[s].license if s in facts.licenses else UNKNOWN for s in facts.sources})


def size_category(n: int) -> str:
    bounds = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))
    return next((label for bound, label in bounds if n < bound), "1M<n<10M")


def _front_matter(facts: CardFacts) -> str:
    licenses = card_licenses(facts) or [UNKNOWN]
    meta = {"license": licenses[0] if len(licenses) == 1 else licenses, "language": ["en"],
            "task_categories": ["text-generation"], "tags": ["math", "reasoning", "synthetic", "trajfusion"],
            "size_categories": [size_category(len(facts.rows))], "pretty_name": facts.name,
            "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": facts.data_file}]}]}
    return f"---\n{yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)}---\n"


# ---- body -------------------------------------------------------------------------------

def _k_max(facts: CardFacts) -> int:
    return int((facts.summary or {}).get("k_max", max((row["k_max"] for row in facts.rows), default=0)))


def _named(value: str | None) -> str:
    return f"`{value}`" if value else "(not recorded)"


def _what(facts: CardFacts) -> str:
    origin = f"teacher {_named(facts.teacher)} on pool {_named(facts.pool)}, variant {_named(facts.variant)}"
    if _k_max(facts) == 0:
        kind = ("vanilla rejection-sampling fine-tuning (RFT) data: each record is one problem and one correct "
                "response y* of the teacher, as `<think>` reasoning followed by `The answer is \\boxed{...}`.")
    else:
        kind = ("TrajFusion data: each record is one problem and one response that fuses up to k_max of the "
                "teacher's incorrect responses, each followed by an error-recognition phrase, with a correct "
                "response y* and a success phrase, in one `<think>` block followed by `The answer is "
                "\\boxed{...}`. A problem fuses k(x) = min(k_max, floor(alpha · r · u)) errors (r: its error "
                "rate, u: its distinct wrong answers); k = 0 is a plain RFT record.")
    return (f"## What it is\n\nSupervised fine-tuning data for mathematical reasoning, built by trajfusion from "
            f"{origin}. It is {kind}\n\nFormat `{facts.format}`: {DESCRIPTIONS[facts.format]}. Load it with "
            f"`datasets.load_dataset(\"json\", data_files=\"{facts.data_file}\")`.\n")


def _setting_values(facts: CardFacts) -> dict:
    first = facts.rows[0] if facts.rows else {}
    values = {key: first.get(key) for key in ("k_max", "alpha", "strategy", "seed")}
    values.update({key: value for key, value in (facts.summary or {}).items() if key in dict(SETTING_ROWS)})
    return values


def _built(facts: CardFacts) -> str:
    rows = [("teacher", _named(facts.teacher)), ("teacher model", _named(facts.teacher_model)),
            ("pool", _named(facts.pool)), ("variant", _named(facts.variant)),
            ("fused input", f"`{facts.input_path}`"), ("fused input SHA-256", f"`{facts.input_sha256}`")]
    if facts.summary is not None:
        rows += [("fusion summary", f"`{facts.summary_path}`"),
                 ("fusion config hash", f"`{facts.summary.get('config_hash', '(not recorded)')}`")]
    rows += [("exported by", f"`trajfusion export` {facts.version}")]
    table = "\n".join(f"| {key} | {value} |" for key, value in rows)
    values = _setting_values(facts)
    settings = "\n".join(f"| `{key}` | `{values[key]}` | {text} |" for key, text in SETTING_ROWS if key in values)
    return (f"## How it was built\n\n| | |\n|---|---|\n{table}\n\nFusion settings (the fusion summary's, else the "
            f"rows'):\n\n| setting | value | meaning |\n|---|---|---|\n{settings}\n")


def _counts(facts: CardFacts) -> str:
    n = len(facts.rows)
    errors = Counter(row["n_errors"] for row in facts.rows)
    mean = sum(k * count for k, count in errors.items()) / n if n else 0.0
    lines = [f"- records: {n}", f"- mean fused errors per record (#Err): {mean:.4f}"]
    summary = facts.summary or {}
    if "dropped_no_correct" in summary:
        lines.append(f"- problems of the pool dropped without a correct response: {summary['dropped_no_correct']}")
    if "problems_short_of_k" in summary:
        lines.append(f"- records with fewer errors than k(x) (the teacher's wrong answers ran out): "
                     f"{summary['problems_short_of_k']}")
    if "mean_response_chars" in summary:
        lines.append(f"- mean response length: {summary['mean_response_chars']:.1f} characters, "
                     f"{summary.get('mean_fused_tokens', 0):.1f} teacher tokens")
    by_k = "\n".join(f"| {k} | {errors[k]} |" for k in sorted(errors))
    by_source = "\n".join(f"| `{source}` | {count} |" for source, count in sorted(facts.sources.items()))
    return ("## Counts\n\n" + "\n".join(lines) + f"\n\n| fused errors | records |\n|---|---|\n{by_k}\n\n"
            f"| source | records |\n|---|---|\n{by_source}\n")


def _fence(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _system(facts: CardFacts) -> str:
    origin = f"the system prompt of template `{facts.template}`" if facts.template else "a system prompt given by hand"
    fence = _fence(facts.system)
    return (f"## System prompt\n\nEvery record carries {origin} unchanged:\n\n{fence}text\n{facts.system}\n{fence}\n\n"
            "Only its text is exported: the trainer's chat template places it (a text template's own layout and "
            "special tokens are not part of the data).\n")


def _fields(facts: CardFacts) -> str:
    if not facts.provenance:
        return "## Provenance columns\n\nNone (exported without provenance).\n"
    kept = ", ".join(f"`{exported}`" for exported in PROVENANCE.values())
    return (f"## Provenance columns\n\nBeside the format's own columns each record keeps {kept}: `id` is the "
            "problem id (`<source>/<key>`), `error_indices` and `correct_index` the teacher's sample numbers of "
            "the fused errors and of y*, and `n_errors`, `alpha`, `k_max`, `strategy`, `seed` the fusion's.\n")


def _license_section(facts: CardFacts) -> str:
    rows = []
    for source, count in sorted(facts.sources.items()):
        entry = facts.licenses.get(source)
        if entry is None:
            rows.append(f"| `{source}` | {count} | license not declared (add it to trajfusion's "
                        "`resources/licenses.yaml`); check its terms before publishing | |")
        else:
            rows.append(f"| `{source}` | {count} | {entry.note} (`{entry.license}`) | {entry.origin} |")
    model = _named(facts.teacher_model)
    return ("## Licenses\n\nThe problems come from these sources, under these licenses:\n\n"
            "| source | records | license | origin |\n|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
            f"The responses were written by the teacher model {model}: its license or terms of use may restrict "
            "what its outputs can be used for (not checked here).\n")
