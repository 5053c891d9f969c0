"""trajfusion export: every format loads in `datasets` with the system prompt, the problem and the
fused assistant text unchanged; LLaMA-Factory's dataset_info.json entry; the dataset card and its
licenses; bad input; the Snakemake target."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, e2e_config, snakemake
from trajfusion import cli
from trajfusion.export import FORMATS, ExportSettings, export_file, load_licenses
from trajfusion.fuse import FuseSettings, fuse_file, parse_alpha
from trajfusion.io import write_parquet
from trajfusion.templates import load_template

SYSTEM = load_template("qwen25_math").system
# Texts that a careless export would alter: braces, backslashes, a "{system}" placeholder,
# unicode, code fences, leading and trailing whitespace, an empty line.
PROBLEMS = {
    "gsm8k_train/00001": "What is {x} if \\frac{1}{2}x = 2? {system} {input}",
    "math_train/algebra/1.json": "  Ünïcode — solve $x^2 = 4$.\n\nTwo lines, trailing space ",
    "synthetic_arith/00002": "Mia has 12 apples. ```code``` How many?",
}
# LLaMA-Factory's data/README.md, the sharegpt section: the keys of a dataset description, and
# the keys its "columns" and "tags" objects may have.
LLAMAFACTORY_ENTRY_KEYS = {"hf_hub_url", "ms_hub_url", "script_url", "file_name", "formatting", "ranking", "subset",
                           "split", "folder", "num_samples", "columns", "tags"}
LLAMAFACTORY_COLUMNS = {"prompt", "query", "response", "history", "messages", "system", "tools", "images", "chosen",
                        "rejected", "kto_tag"}
LLAMAFACTORY_TAGS = {"role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag",
                     "system_tag"}


def _verified_rows(pid: str, problem: str) -> list[dict]:
    def row(idx, answer, correct, response):
        return {"problem_id": pid, "sample_idx": idx, "problem": problem, "response": response, "n_tokens": 10 + idx,
                "finish_reason": "stop", "gold": "4", "answer": answer, "correct": correct, "status": "ok",
                "answer_group": None if correct else answer}

    return [row(0, "4", True, "<think>2 + 2 = 4, so \\boxed{4}</think>\nSo the answer is 4."),
            row(1, "5", False, "I think 2+2=5 {weird} ``` \\boxed{5}"), row(2, "3", False, "Maybe 3\n\n"),
            row(3, "4", True, "Two plus two is four.")]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A working directory with a pool table and two fused datasets (TrajFusion, RFT) built by
    the real fuse stage, at their pipeline paths."""
    root = tmp_path_factory.mktemp("export")
    verified = root / "verified.parquet"
    write_parquet(pd.DataFrame([r for pid, text in PROBLEMS.items() for r in _verified_rows(pid, text)]), verified)
    pool = pd.DataFrame({"problem_id": list(PROBLEMS), "problem": list(PROBLEMS.values()), "answer": "4",
                         "source": [pid.split("/")[0] for pid in PROBLEMS], "level": None, "subject": None,
                         "year": pd.array([None] * len(PROBLEMS), dtype="Int64"), "answer_type": "integer",
                         "flags": None})
    write_parquet(pool, root / "results" / "pools" / "e2e.parquet")
    fused = root / "results" / "fused" / "tiny" / "e2e"
    fuse_file(verified, fused / "tf.jsonl", FuseSettings(k_max=2, alpha=parse_alpha("2"), strategy="highdiv"),
              progress=False)
    fuse_file(verified, fused / "rft.jsonl", FuseSettings(k_max=0), progress=False)
    return root


def fused_rows(workdir: Path, variant: str) -> list[dict]:
    path = workdir / "results" / "fused" / "tiny" / "e2e" / f"{variant}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run_export(*args: str) -> int:
    return cli.main(["export", *args])


def load_json(path: Path, cache: Path):
    import datasets

    return datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(cache))


# Where each format keeps the system prompt, the problem and the assistant text (read here
# without the exporter's code).
READERS = {
    "messages": lambda r: (r["messages"][0], r["messages"][1], r["messages"][2]),
    "sharegpt": lambda r: ({"role": "system", "content": r["system"]},
                           {"role": r["conversations"][0]["from"], "content": r["conversations"][0]["value"]},
                           {"role": r["conversations"][1]["from"], "content": r["conversations"][1]["value"]}),
    "alpaca": lambda r: ({"role": "system", "content": r["system"]}, {"role": "user", "content": r["instruction"]},
                         {"role": "assistant", "content": r["output"]}),
    "prompt_completion": lambda r: (r["prompt"][0], r["prompt"][1], r["completion"][0]),
}
ROLES = {"sharegpt": ("system", "human", "gpt")}


@pytest.mark.parametrize("variant", ["tf", "rft"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_loads_in_datasets_with_the_texts_unchanged(workdir, tmp_path, fmt, variant):
    fused = workdir / "results" / "fused" / "tiny" / "e2e" / f"{variant}.jsonl"
    out = tmp_path / fmt / "train.jsonl"
    assert run_export("--input", str(fused), "--output", str(out), "--format", fmt, "--template", "qwen25_math") == 0
    loaded = load_json(out, tmp_path / "cache")
    rows = {row["problem_id"]: row for row in fused_rows(workdir, variant)}
    assert len(loaded) == len(rows) == len(PROBLEMS)
    for record in loaded:
        system, user, assistant = READERS[fmt](record)
        row = rows[record["id"]]  # the provenance columns are kept
        assert (system["role"], user["role"], assistant["role"]) == ROLES.get(fmt, ("system", "user", "assistant"))
        assert system["content"] == SYSTEM
        assert user["content"] == row["messages"][0]["content"] == PROBLEMS[record["id"]]
        assert assistant["content"] == row["messages"][1]["content"]
        assert (record["n_errors"], record["correct_index"], record["k_max"], record["alpha"]) == \
            (row["n_errors"], row["correct_index"], row["k_max"], row["alpha"])
    if variant == "tf":
        assert any(record["n_errors"] > 0 for record in loaded)


@pytest.mark.parametrize("fmt", ["messages", "prompt_completion"])
def test_trl_reads_the_chat_formats_as_conversational(workdir, tmp_path, fmt):
    from trl.data_utils import is_conversational

    out = tmp_path / "train.jsonl"
    assert run_export("--input", str(workdir / "results/fused/tiny/e2e/tf.jsonl"), "--output", str(out),
                      "--format", fmt, "--system", "Think, then box.") == 0
    for record in load_json(out, tmp_path / "cache"):
        assert is_conversational(record)
        assert (record.get("messages") or record["prompt"])[0] == {"role": "system", "content": "Think, then box."}


def test_without_provenance_only_the_formats_columns_remain(workdir, tmp_path):
    out = tmp_path / "train.jsonl"
    assert run_export("--input", str(workdir / "results/fused/tiny/e2e/tf.jsonl"), "--output", str(out),
                      "--format", "alpaca", "--template", "chat", "--no-provenance") == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(set(record) == {"instruction", "input", "output", "system"} for record in records)
    assert all(record["input"] == "" for record in records)


# ---- LLaMA-Factory ------------------------------------------------------------------------

def test_sharegpt_dataset_info_entry_names_the_columns_and_tags_llamafactory_reads(workdir, tmp_path):
    out = tmp_path / "data" / "fused_tf.jsonl"
    assert run_export("--input", str(workdir / "results/fused/tiny/e2e/tf.jsonl"), "--output", str(out),
                      "--format", "sharegpt", "--template", "qwen25_math") == 0
    info = json.loads((out.parent / "dataset_info.json").read_text())
    entry = info["fused_tf"]  # the default name: the file's
    assert entry == {"file_name": "fused_tf.jsonl", "formatting": "sharegpt",
                     "columns": {"messages": "conversations", "system": "system"},
                     "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}}
    assert set(entry) <= LLAMAFACTORY_ENTRY_KEYS and set(entry["columns"]) <= LLAMAFACTORY_COLUMNS
    assert set(entry["tags"]) <= LLAMAFACTORY_TAGS
    # What LLaMA-Factory's sharegpt converter requires of each record, read through the entry:
    # user turns at odd positions, assistant turns at even ones, an even count, a string system.
    tags, columns = entry["tags"], entry["columns"]
    for record in load_json(out.parent / entry["file_name"], tmp_path / "cache"):
        turns = record[columns["messages"]]
        assert len(turns) % 2 == 0
        assert [t[tags["role_tag"]] for t in turns] == [tags["user_tag"], tags["assistant_tag"]] * (len(turns) // 2)
        assert all(isinstance(t[tags["content_tag"]], str) for t in turns)
        assert record[columns["system"]] == SYSTEM


def test_dataset_info_is_merged_into_an_existing_file(workdir, tmp_path):
    folder = tmp_path / "llamafactory_data"
    folder.mkdir()
    other = {"alpaca_en_demo": {"file_name": "alpaca_en_demo.json"}}
    (folder / "dataset_info.json").write_text(json.dumps(other))
    fused = str(workdir / "results/fused/tiny/e2e/tf.jsonl")
    for name in ("tf", "tf", "rft"):  # a rerun replaces its entry
        assert run_export("--input", fused, "--output", str(folder / "sub" / f"{name}.jsonl"), "--format",
                          "sharegpt", "--template", "chat", "--name", name, "--dataset-info",
                          str(folder / "dataset_info.json"), "--card", str(folder / "sub" / f"{name}.md")) == 0
    info = json.loads((folder / "dataset_info.json").read_text())
    assert list(info) == ["alpaca_en_demo", "tf", "rft"]
    assert info["alpaca_en_demo"] == other["alpaca_en_demo"] and info["rft"]["file_name"] == "sub/rft.jsonl"
    assert not list(folder.glob(".*.tmp"))


def test_a_malformed_dataset_info_is_refused_before_anything_is_written(workdir, tmp_path, capsys):
    (tmp_path / "dataset_info.json").write_text("[1, 2]")
    out = tmp_path / "train.jsonl"
    code = run_export("--input", str(workdir / "results/fused/tiny/e2e/tf.jsonl"), "--output", str(out),
                      "--format", "sharegpt", "--template", "chat")
    assert code == cli.EXIT_INPUT_ERROR
    assert f"{tmp_path / 'dataset_info.json'}: expected a JSON object" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset_info.json"]


# ---- the dataset card ---------------------------------------------------------------------

def test_the_card_describes_the_data_and_names_its_sources_licenses(workdir, tmp_path):
    from huggingface_hub import DatasetCard

    out = tmp_path / "card" / "train.jsonl"
    assert run_export("--input", str(workdir / "results/fused/tiny/e2e/tf.jsonl"), "--output", str(out),
                      "--format", "messages", "--template", "qwen25_math", "--pool-table",
                      str(workdir / "results/pools/e2e.parquet"), "--teacher-model", "tiny: a test model") == 0
    text = (out.parent / "README.md").read_text(encoding="utf-8")
    card = DatasetCard(text)
    assert card.data.license == "mit"
    assert card.data.configs == [{"config_name": "default", "data_files": [{"split": "train", "path": "train.jsonl"}]}]
    licenses = load_licenses()
    for source in ("gsm8k_train", "math_train", "synthetic_arith"):
        assert f"| `{source}` | 1 | {licenses[source].note} (`mit`) |" in text
    assert SYSTEM in text and "template `qwen25_math`" in text
    # teacher, pool and variant read from the input's results/fused/ path; the summary's settings
    assert "| teacher | `tiny` |" in text and "| pool | `e2e` |" in text and "| variant | `tf` |" in text
    assert "| `alpha` | `2` |" in text and "| `strategy` | `highdiv` |" in text and "- records: 3" in text
    assert "tiny: a test model" in text
    # `datasets` reads the card's configs: the folder loads as its train split.
    import datasets

    assert len(datasets.load_dataset(str(out.parent), split="train", cache_dir=str(tmp_path / "cache"))) == 3


def test_a_source_without_a_declared_license_is_flagged(workdir, tmp_path):
    rows = fused_rows(workdir, "rft")
    rows[0]["problem_id"] = "my_own_data/7"
    fused = tmp_path / "mine.jsonl"
    fused.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out" / "train.jsonl"
    export_file(fused, out, ExportSettings(format="alpaca", template="chat"))
    text = (out.parent / "README.md").read_text()
    assert "| `my_own_data` | 1 | license not declared" in text
    assert yaml.safe_load(text.split("---")[1])["license"] == ["mit", "unknown"]
    assert "| teacher | (not recorded) |" in text  # no results/fused/ path to read it from
    # a config's `datasets:` entry declares it
    declared = ExportSettings(format="alpaca", template="chat", dataset_licenses={"my_own_data": "cc0-1.0"})
    export_file(fused, out, declared)
    text = (out.parent / "README.md").read_text()
    assert "| `my_own_data` | 1 | cc0-1.0 (`cc0-1.0`) | declared in the config (`datasets:`) |" in text
    assert yaml.safe_load(text.split("---")[1])["license"] == ["cc0-1.0", "mit"]


def test_the_license_resource_agrees_with_data_readme_and_covers_every_source():
    from trajfusion.data import SOURCES

    licenses = load_licenses()
    assert set(SOURCES) <= set(licenses)
    # data/README.md's file tables: | `file` | `registry name` | repo @ commit | path | records | license |
    stated = {}
    for line in (REPO / "data" / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 6 and re.fullmatch(r"`\w+`", cells[1]):
            stated[cells[1].strip("`")] = cells[5]
    bundled = [source for source in SOURCES if source in stated]
    assert len(bundled) >= 3
    for source in bundled:
        assert licenses[source].note == stated[source], source


# ---- bad input ----------------------------------------------------------------------------

def _fused_with(tmp_path: Path, workdir: Path, edit) -> Path:
    lines = (workdir / "results/fused/tiny/e2e/tf.jsonl").read_text().splitlines()
    path = tmp_path / "fused.jsonl"
    path.write_text("\n".join(edit(lines)) + "\n")
    return path


@pytest.mark.parametrize("args, expected", [
    (["--input", "{tmp}/missing.jsonl"], "{tmp}/missing.jsonl: fused dataset does not exist"),
    (["--input", "{bad_line}"], "{bad_line}:2: malformed JSON"),
    (["--input", "{no_messages}"], "{no_messages}: record 1 (problem_id='gsm8k_train/00001'): field '(top level)' "
     "'messages' is a required property"),
    (["--template", "nope"], "unknown template 'nope'"),
    (["--template", "few_shot_cot_math"], "--template: template 'few_shot_cot_math' has no system prompt"),
    (["--template", "chat", "--system", "S"], "--template, --system: give exactly one"),
    (["--settings", '{{"format": "yaml"}}'], "--format: expected one of"),
    (["--system", " "], "--system: must not be empty"),
    (["--summary", "{tmp}/none.json"], "{tmp}/none.json: fusion summary does not exist"),
    (["--summary", "{rft_summary}"], "{rft_summary}: field 'alpha' is None, the fused rows have ['2']"),
    (["--pool-table", "{small_pool}"], "{small_pool}: no row for problem_id"),
    (["--format", "alpaca", "--dataset-info", "{tmp}/d.json"], "--dataset-info: only with --format sharegpt"),
])
def test_bad_input_is_one_line_naming_file_record_and_field(workdir, tmp_path, capsys, args, expected):
    names = {"tmp": str(tmp_path),
             "bad_line": str(_fused_with(tmp_path, workdir, lambda lines: [lines[0], "{oops", *lines[1:]])),
             "no_messages": str(tmp_path / "no_messages.jsonl"),
             "rft_summary": str(workdir / "results/fused/tiny/e2e/rft.summary.json"),
             "small_pool": str(tmp_path / "pool.parquet")}
    row = json.loads((workdir / "results/fused/tiny/e2e/tf.jsonl").read_text().splitlines()[0])
    (tmp_path / "no_messages.jsonl").write_text(json.dumps({k: v for k, v in row.items() if k != "messages"}) + "\n")
    pd.read_parquet(workdir / "results/pools/e2e.parquet").iloc[:1].to_parquet(tmp_path / "pool.parquet")
    given = [arg.format(**names) for arg in args]
    defaults = {"--input": str(workdir / "results/fused/tiny/e2e/tf.jsonl"), "--format": "messages",
                "--template": "qwen25_math"}
    if "--system" in given or "--settings" in given:
        defaults.pop("--template")
    if "--settings" in given:
        defaults.pop("--format")
    argv = [*given, *[item for flag, value in defaults.items() if flag not in given for item in (flag, value)]]
    out = tmp_path / "out" / "train.jsonl"
    assert run_export(*argv, "--output", str(out)) == cli.EXIT_INPUT_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected.format(**names) in err, err
    assert not out.parent.exists() or not any(out.parent.iterdir())  # nothing written, no temp file left


# ---- the plan and the Snakemake target ------------------------------------------------------

def _validated(relative: str, changes: dict | None = None) -> dict:
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / relative).read_text())
    config.update(changes or {})
    validate(config, str(REPO / "config" / "schema.yaml"))
    return config


def test_the_plan_exports_each_fused_dataset_with_the_templates_it_was_trained_with():
    from trajfusion.plan import REFLECT, Plan, backbone_template, variant_kind

    config = _validated("config/paper.yaml")
    plan = Plan.from_config(config)
    for teacher, pool, variant in plan.fused_datasets:
        trained = {backbone_template(config, run.backbone) for run in plan.runs
                   if (run.teacher, run.pool, run.variant) == (teacher, pool, variant)}
        assert set(plan.export_templates(teacher, pool, variant)) == trained
    assert max(len(plan.export_templates(*key)) for key in plan.fused_datasets) > 1  # several backbones
    # TAPO's datasets are not exported (the card describes fusion).
    fused = [key for key in plan.fused_datasets if variant_kind(config, key[2]) != REFLECT]
    assert len(fused) < len(plan.fused_datasets)
    assert len(plan.exports) == sum(len(plan.export_templates(*key)) for key in fused) * len(FORMATS)
    chosen = Plan.from_config(_validated("config/paper.yaml", {"export": {"template": "chat", "formats": ["alpaca"]}}))
    assert {(e["template"], e["format"]) for e in chosen.exports} == {("chat", "alpaca")}


def test_the_schema_lists_the_export_formats():
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    formats = schema["properties"]["export"]["properties"]["formats"]
    assert tuple(formats["items"]["enum"]) == FORMATS and tuple(formats["default"]) == FORMATS


def test_snakemake_export_plans_every_export_and_runs_one_job(workdir, tmp_path):
    from tests.test_config import job_counts

    config, configfile = e2e_config(tmp_path / "no-model", workdir)
    result = snakemake(workdir, configfile, "-n", "-p", "export")
    assert result.returncode == 0, result.stderr[-3000:]
    counts = job_counts(result.stdout)
    n_fused = len({(e["teacher"], e["pool"], v) for e in config["experiments"].values() for v in e["variants"]})
    assert all(counts[f"export_{fmt}"] == n_fused for fmt in FORMATS)  # one backbone template: chat
    assert "\"template\": \"chat\"" in result.stdout and not any(rule.startswith("train") for rule in counts)
    for declared in ("resources/templates.yaml", "resources/licenses.yaml", "results/pools/e2e.parquet",
                     "results/fused/tiny/e2e/lowdiv.summary.json"):
        assert declared in result.stdout, declared  # every file the command reads is an input
    # One real export job on the fused fixture (the upstream rules left out).
    target = "results/export/tiny/e2e/tf/chat/sharegpt/train.jsonl"
    result = snakemake(workdir, configfile, "--allowed-rules", "export_sharegpt", "--", target)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    folder = workdir / Path(target).parent
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "dataset_info.json", "train.jsonl"]
    info = json.loads((folder / "dataset_info.json").read_text())
    assert list(info) == ["tiny-e2e-tf-chat"] and info["tiny-e2e-tf-chat"]["file_name"] == "train.jsonl"
    card = (folder / "README.md").read_text()
    assert "| teacher model | `tiny: a local model directory` |" in card and "`synthetic_arith`" in card
    assert (workdir / "results/logs/export/tiny/e2e/tf/chat/sharegpt.log").exists()
    record = json.loads((folder / "train.jsonl").read_text().splitlines()[0])
    assert record["system"] == load_template("chat").system
