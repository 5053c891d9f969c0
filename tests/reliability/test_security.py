"""Security (issue 9, item 8).

(a) A scanner over src/, rules/ and the Snakefile for unsafe deserialization and code
    execution, with tests of the scanner itself on bad snippets; models saved as safetensors.
(b) Injection: text that a shell, str.format, %-formatting or Jinja would act on travels
    from a dataset file through pool building, sampling's verified table, fusion, prompt
    templates, training tokenization and evaluation scoring as inert text; and config values
    reach the rules' shell commands quoted, or are refused by the schema.
"""

from __future__ import annotations

import ast
import io
import json
import re
import subprocess
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from test_bad_input import dry_runs, embedded_config, schema_error

from tests.conftest import REPO, make_data_dir
from trajfusion import cli, evaluate
from trajfusion.io import write_parquet
from trajfusion.phrases import load_phrases
from trajfusion.templates import load_template
from trajfusion.train.dataset import IGNORE_INDEX, build_training_rows, load_fused_examples
from trajfusion.verify import verify_frame

# --------------------------------------------------------------------------- (a) scanner

RULES = {
    "yaml-load": "YAML loaded without SafeLoader (use yaml.safe_load)",
    "eval-exec": "eval()/exec() runs text as code",
    "pickle": "pickle-family deserialization runs code from the data",
    "torch-load": "torch.load without weights_only=True unpickles arbitrary objects",
    "trust-remote-code": "trust_remote_code must come from a setting that defaults to False",
    "unsafe-save": "models must be saved as safetensors",
    "shell": "a shell command line built in Python",
}
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
SAFE_LOADERS = {"SafeLoader", "CSafeLoader"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {RULES[self.rule]}"


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _constant(node: ast.AST | None, value) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is type(value) and node.value == value


def _call_rules(call: ast.Call) -> list[str]:
    name = _dotted(call.func)
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    rules = []
    if name in ("eval", "exec"):
        rules.append("eval-exec")
    loader = keywords.get("Loader", call.args[1] if len(call.args) > 1 else None)
    if (name in ("yaml.load", "yaml.load_all") and _dotted(loader or ast.Name("")).split(".")[-1] not in SAFE_LOADERS
            or name.startswith(("yaml.unsafe_load", "yaml.full_load"))):
        rules.append("yaml-load")
    if name.split(".")[0] in PICKLE_MODULES or name.endswith("read_pickle"):
        rules.append("pickle")
    if name == "torch.load" and not _constant(keywords.get("weights_only"), True):
        rules.append("torch-load")
    if name in ("os.system", "os.popen") or _constant(keywords.get("shell"), True):
        rules.append("shell")
    trust = keywords.get("trust_remote_code")
    if trust is not None and not (isinstance(trust, (ast.Name, ast.Attribute)) or _constant(trust, False)):
        rules.append("trust-remote-code")
    if _constant(keywords.get("safe_serialization"), False):
        rules.append("unsafe-save")
    flags = [a.value for a in call.args if isinstance(a, ast.Constant)]
    if name.endswith("add_argument") and "--trust-remote-code" in flags and not (
            _constant(keywords.get("action"), "store_true") and "default" not in keywords):
        rules.append("trust-remote-code")
    return rules


def _parameter_rules(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> list[str]:
    args = function.args
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = list(zip(positional, defaults)) + list(zip(args.kwonlyargs, args.kw_defaults))
    return ["trust-remote-code" for arg, default in pairs
            if arg.arg == "trust_remote_code" and not _constant(default, False)]


def scan_python(source: str, path: str) -> list[Finding]:
    findings = []
    for node in ast.walk(ast.parse(source, filename=path)):
        rules: list[str] = []
        if isinstance(node, ast.Import):
            rules = ["pickle" for alias in node.names if alias.name.split(".")[0] in PICKLE_MODULES]
        elif isinstance(node, ast.ImportFrom):
            rules = ["pickle"] if (node.module or "").split(".")[0] in PICKLE_MODULES else []
        elif isinstance(node, ast.Call):
            rules = _call_rules(node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            rules = _parameter_rules(node)
        findings += [Finding(path, node.lineno, rule) for rule in rules]
    return findings


# Snakemake files are not Python: the same rules as patterns over their code without comments
# (shell command strings included, so a rule that passes --trust-remote-code is caught).
SNAKEMAKE_PATTERNS = {
    "yaml-load": re.compile(r"\byaml\.(?:load|load_all)\((?![^)]*SafeLoader)|\byaml\.(?:full|unsafe)_load"),
    "eval-exec": re.compile(r"(?<![\w.])(?:eval|exec)\s*\("),
    "pickle": re.compile(r"\b(?:" + "|".join(PICKLE_MODULES) + r")\b|read_pickle"),
    "torch-load": re.compile(r"\btorch\.load\((?![^)]*weights_only\s*=\s*True)"),
    "trust-remote-code": re.compile(r"--trust-remote-code|trust_remote_code\s*=\s*True"),
    "unsafe-save": re.compile(r"safe_serialization\s*=\s*False"),
    "shell": re.compile(r"shell\s*=\s*True|\bos\.(?:system|popen)\s*\("),
}


def without_comments(source: str) -> str:
    lines = source.splitlines(keepends=True)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, col = token.start
            lines[row - 1] = lines[row - 1][:col] + "\n"
    return "".join(lines)


def scan_snakemake(source: str, path: str) -> list[Finding]:
    code = without_comments(source)
    return [Finding(path, code.count("\n", 0, match.start()) + 1, rule)
            for rule, pattern in SNAKEMAKE_PATTERNS.items() for match in pattern.finditer(code)]


def scanned_files() -> list[Path]:
    return sorted((REPO / "src").rglob("*.py")) + sorted((REPO / "rules").glob("*.smk")) + [REPO / "Snakefile"]


def scan(path: Path) -> list[Finding]:
    source = path.read_text(encoding="utf-8")
    relative = str(path.relative_to(REPO))
    return scan_python(source, relative) if path.suffix == ".py" else scan_snakemake(source, relative)


PYTHON_VIOLATIONS = [
    ("yaml-load", "import yaml\ncfg = yaml.load(open('c.yaml'))"),
    ("yaml-load", "cfg = yaml.load(text, Loader=yaml.FullLoader)"),
    ("yaml-load", "cfg = yaml.unsafe_load(text)"),
    ("eval-exec", "value = eval(record['answer'])"),
    ("eval-exec", "exec(config['hook'])"),
    ("pickle", "import pickle\nrows = pickle.load(fh)"),
    ("pickle", "from joblib import load"),
    ("pickle", "table = pd.read_pickle(path)"),
    ("torch-load", "state = torch.load(path)"),
    ("torch-load", "state = torch.load(path, weights_only=False)"),
    ("trust-remote-code", "model = AutoModel.from_pretrained(d, trust_remote_code=True)"),
    ("trust-remote-code", "def load(d, trust_remote_code=True):\n    pass"),
    ("trust-remote-code", "p.add_argument('--trust-remote-code', action='store_true', default=True)"),
    ("unsafe-save", "model.save_pretrained(out, safe_serialization=False)"),
    ("shell", "subprocess.run(f'trajfusion fuse {path}', shell=True)"),
    ("shell", "os.system('rm -rf ' + directory)"),
]
PYTHON_CLEAN = """
import yaml
import subprocess
cfg = yaml.safe_load(text)
other = yaml.load(text, Loader=yaml.SafeLoader)
model.eval()
state = torch.load(path, weights_only=True)
def load(d, trust_remote_code: bool = False):
    return AutoModel.from_pretrained(d, trust_remote_code=trust_remote_code)
p.add_argument("--trust-remote-code", action="store_true")
subprocess.run(["git", "rev-parse", "HEAD"], check=True)
# pickle and eval( in a comment are not code
"""
SNAKEMAKE_VIOLATIONS = [
    ("yaml-load", 'cfg = yaml.load(open(config["file"]))'),
    ("eval-exec", 'x = eval(config["expr"])'),
    ("pickle", "import pickle"),
    ("torch-load", 'w = torch.load(input.ckpt)'),
    ("trust-remote-code", 'rule sample:\n    shell:\n        "trajfusion sample --trust-remote-code --pool {input}"'),
    ("unsafe-save", "m.save_pretrained(o, safe_serialization=False)"),
    ("shell", 'os.system(f"rm {output}")'),
]
SNAKEMAKE_CLEAN = 'rule a:\n    run:\n        cfg = yaml.safe_load(open(input[0]))  # never yaml.load( or pickle\n'


@pytest.mark.parametrize("rule, snippet", PYTHON_VIOLATIONS)
def test_scanner_flags_unsafe_python(rule, snippet):
    assert rule in {finding.rule for finding in scan_python(snippet, "bad.py")}


@pytest.mark.parametrize("rule, snippet", SNAKEMAKE_VIOLATIONS)
def test_scanner_flags_unsafe_snakemake_code(rule, snippet):
    assert [finding.rule for finding in scan_snakemake(snippet, "bad.smk")] == [rule]


def test_scanner_accepts_the_safe_forms():
    assert scan_python(PYTHON_CLEAN, "good.py") == []
    assert scan_snakemake(SNAKEMAKE_CLEAN, "good.smk") == []


def test_sources_rules_and_snakefile_have_no_unsafe_code():
    files = scanned_files()
    assert len(files) > 30 and any(f.suffix == ".smk" for f in files)
    findings = [finding for path in files for finding in scan(path)]
    assert not findings, "\n".join(map(str, findings))


def test_trust_remote_code_is_a_flag_that_defaults_to_false():
    # The scanner allows trust_remote_code only as a parameter defaulting to False or passed
    # on as a variable; the one CLI flag is store_true and no rule or config sets it.
    mentions = [path for path in scanned_files() if "trust_remote_code" in path.read_text()
                or "trust-remote-code" in path.read_text()]
    from trajfusion.sample.backends import BACKEND_NAMES

    # every backend loads a tokenizer or a model, so each one's module takes the flag
    assert {p.name for p in mentions} == {"options.py"} | {f"{name}.py" for name in BACKEND_NAMES}
    assert "trust" not in (REPO / "config/schema.yaml").read_text()


def test_prepared_model_is_safetensors_only(tiny_model_dir):
    from safetensors import safe_open

    files = {path.name for path in Path(tiny_model_dir).iterdir()}
    assert "model.safetensors" in files
    assert not {name for name in files if name.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt", ".msgpack"))}
    with safe_open(str(Path(tiny_model_dir) / "model.safetensors"), framework="pt") as weights:
        assert len(list(weights.keys())) > 0
    meta = json.loads((Path(tiny_model_dir) / "prepare_meta.json").read_text())
    assert set(meta["weights_sha256"]) == {"model.safetensors"}


# --------------------------------------------------------------------------- (b) injection


@pytest.fixture
def payloads(tmp_path):
    """Texts a shell, str.format, %-formatting or Jinja would act on; the sentinels and the
    victim directory show whether any of them ran."""
    victim = tmp_path / "victim"
    victim.mkdir()
    sentinels = [tmp_path / f"pwned-{i}" for i in range(5)]
    problem_parts = [
        "{{ 7*7 }}", "${HOME}", f"$(touch {sentinels[0]})", f"; rm -rf {victim}", f"`touch {sentinels[1]}`",
        "{problem}", "{0}", "{input}", "{system}", "%s %(name)s %d", "{% for i in range(3) %}loop{% endfor %}",
        f"{{{{ cycler.__init__.__globals__.os.popen('touch {sentinels[2]}').read() }}}}",
    ]
    gold = f"{{{{ 7*7 }}}} `touch {sentinels[3]}` {{problem}} %s ${{HOME}}"
    return {"problem_parts": problem_parts, "gold": gold, "sentinels": sentinels, "victim": victim,
            "wrong": [f"$(touch {sentinels[4]})", "{{ 8*8 }}"]}


def assert_nothing_ran(payloads) -> None:
    assert not [path for path in payloads["sentinels"] if path.exists()]
    assert payloads["victim"].is_dir()


def dataset_files(payloads) -> tuple[dict[str, bytes], list[str]]:
    """A GSM8K-format training file and a MATH-500-format benchmark whose problems carry the
    payloads and whose gold answer is one; and the problems."""
    problems = [f"What is {i} + 3? " + " ".join(payloads["problem_parts"]) for i in range(2)]
    train = [{"question": problem, "answer": f"Think.\n#### {payloads['gold']}"} for problem in problems]
    bench = [{"problem": problems[0], "answer": payloads["gold"], "unique_id": "test/algebra/1.json",
              "solution": "…", "subject": "Algebra", "level": 1}]
    encode = lambda rows: b"".join(json.dumps(r).encode() + b"\n" for r in rows)  # noqa: E731
    return {"train/gsm8k_train.jsonl": encode(train), "eval/math500_test.jsonl": encode(bench)}, problems


def sampled_responses(pool: pd.DataFrame, payloads) -> pd.DataFrame:
    """What a teacher could have written: the payloads in the reasoning, one correct answer,
    two wrong ones that are payloads themselves."""
    rows = []
    for row in pool.itertuples():
        answers = [row.answer, *payloads["wrong"]]
        for idx, answer in enumerate(answers):
            rows.append({"problem_id": row.problem_id, "sample_idx": idx, "problem": row.problem, "gold": row.answer,
                         "response": f"Consider {' '.join(payloads['problem_parts'])} so \\boxed{{{answer}}}  \n",
                         "n_tokens": 20 + idx, "finish_reason": "stop"})
    return pd.DataFrame(rows)


def test_payloads_flow_through_the_pipeline_as_inert_text(tmp_path, payloads, tiny_model_dir):
    files, problems = dataset_files(payloads)
    data_dir = make_data_dir(tmp_path / "data", files)
    spec = json.dumps({"sources": [{"name": "gsm8k_train"}], "decontaminate_against": []})
    assert cli.main(["build-pool", "--spec", spec, "--data-dir", str(data_dir), "--seed", "0",
                     "--output", str(tmp_path / "pool.parquet"), "--report", str(tmp_path / "pool.json")]) == 0
    assert cli.main(["prepare-benchmark", "--name", "math500", "--data-dir", str(data_dir),
                     "--output", str(tmp_path / "bench.parquet")]) == 0
    pool = pd.read_parquet(tmp_path / "pool.parquet")
    bench = pd.read_parquet(tmp_path / "bench.parquet")
    assert pool["problem"].tolist() == problems and set(pool["answer"]) == {payloads["gold"]}
    assert bench["problem"].tolist() == problems[:1] and bench["answer"].tolist() == [payloads["gold"]]

    samples = sampled_responses(pool, payloads)
    verified = verify_frame(samples, workers=0, timeout=5)
    assert verified["correct"].tolist() == [True, False, False] * 2
    assert verified["response"].tolist() == samples["response"].tolist()
    write_parquet(verified, tmp_path / "verified.parquet")
    fused_path = tmp_path / "fused.jsonl"
    assert cli.main(["fuse", "--input", str(tmp_path / "verified.parquet"), "--output", str(fused_path),
                     "--k-max", "2", "--alpha", "10", "--seed", "0"]) == 0
    fused = [json.loads(line) for line in fused_path.read_text().splitlines()]
    responses = dict(zip(zip(samples["problem_id"], samples["sample_idx"]), samples["response"]))
    for row, problem in zip(fused, problems, strict=True):
        user, assistant = (m["content"] for m in row["messages"])
        assert user == problem  # the problem verbatim, not formatted or rendered
        assert row["n_errors"] == 2
        for idx in [row["correct_index"], *row["error_indices"]]:
            assert responses[(row["problem_id"], idx)].rstrip() in assistant

    check_templates_keep_problems_verbatim(problems, tiny_model_dir)
    check_training_rows_hold_the_text(fused_path, fused, tiny_model_dir)
    check_evaluation_scores_payload_answers(bench, payloads)
    assert_nothing_ran(payloads)


MARK = "\u2063MARK\u2063"


def check_templates_keep_problems_verbatim(problems, model_dir) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    for name in ("qwen25_math", "llama3", "deepseek_math", "chat"):
        template = load_template(name)
        for problem in problems:
            prompt = template.render_prompt(problem, tokenizer)
            # Rendering the problem is substituting it as a value: nothing in it is evaluated.
            assert prompt == template.render_prompt(MARK, tokenizer).replace(MARK, problem), name
            assert prompt.count(problem) == 1 and "{{ 7*7 }}" in prompt and "looploop" not in prompt


def check_training_rows_hold_the_text(fused_path, fused, model_dir) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows, stats = build_training_rows(load_fused_examples(fused_path), load_template("chat"), tokenizer,
                                      max_length=8192)
    assert stats.n_used == len(fused) and stats.n_truncated == 0
    for row, example in zip(rows, fused, strict=True):
        user, assistant = (m["content"] for m in example["messages"])
        assert user in tokenizer.decode(row["input_ids"], clean_up_tokenization_spaces=False)
        completion = [t for t, label in zip(row["input_ids"], row["labels"]) if label != IGNORE_INDEX]
        assert tokenizer.decode(completion, clean_up_tokenization_spaces=False) == assistant + tokenizer.eos_token


def check_evaluation_scores_payload_answers(bench, payloads) -> None:
    samples = pd.DataFrame([{"problem_id": pid, "sample_idx": idx, "response": f"So \\boxed{{{answer}}}",
                             "n_tokens": 5, "finish_reason": "stop", "gold": gold, "answer_type": "latex"}
                            for pid, gold in zip(bench["problem_id"], bench["answer"])
                            for idx, answer in enumerate([gold, *payloads["wrong"]])])
    phrases = load_phrases().error_recognition
    verdicts = evaluate.judge(samples, phrases, workers=0, timeout=5)
    assert verdicts["correct"].tolist() == [True, False, False]
    assert verdicts["response"].tolist() == samples["response"].tolist()
    assert verdicts["gold"].tolist() == [payloads["gold"]] * 3


# --------------------------------------------------------------------------- config -> shell

SHELLY = "it's $(touch {s}) `touch {s}` ; rm -rf {victim} & %s"


@pytest.fixture(scope="module")
def shell_dry_runs(tmp_path_factory):
    """`snakemake -n -p` on a config whose free-text values are shell payloads, and one whose
    file path is: the first must quote them, the second must be refused."""
    root = tmp_path_factory.mktemp("shell")
    (root / "victim").mkdir()
    payload = SHELLY.format(s=root / "pwned", victim=root / "victim")
    label = SHELLY.format(s=root / "pwned-by-label", victim=root / "victim")

    def quoted(c):
        c["data_dir"] = f"{root}/data dir {payload}"
        Path(c["data_dir"]).mkdir(parents=True)  # SHA256SUMS is a declared input of the data rules
        (Path(c["data_dir"]) / "SHA256SUMS").write_bytes((REPO / "data" / "SHA256SUMS").read_bytes())
        # Braces too: a string in a rule's params would be read as a wildcard pattern.
        c["pools"]["embedded"]["sources"].append({"name": "deepmath_103k", "n": 2, "select": "random",
                                                  "options": {"location": payload + " {x} {pool}"}})
        c["fusion"]["variants"]["tf"]["label"] = label
        c["backbones"]["smollm2-135m"]["label"] = label
        c["experiments"]["table1"]["data_size"] = label

    configs = {"quoted": embedded_config(quoted),
               "refused": embedded_config(lambda c: c["fusion"].__setitem__("phrases", f"p.yaml; touch {root}/pwned"))}
    return root, configs, dry_runs(configs, root, "-p")


def shell_commands(output: str) -> list[str]:
    return [line.split("Shell command: ", 1)[1] for line in output.splitlines() if "Shell command: " in line]


def test_config_text_reaches_shell_commands_quoted(shell_dry_runs):
    root, configs, results = shell_dry_runs
    result = results["quoted"]
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    commands = shell_commands(result.stdout + result.stderr)
    assert not [c for c in commands if "pwned-by-label" in c]  # labels never reach a shell
    carrying = [c for c in commands if "pwned" in c]
    assert {c.split()[1] for c in carrying} == {"build-pool", "prepare-benchmark"}
    for command in carrying:
        # Run what the shell would run, with the program swapped for one that prints its arguments.
        program = command.split(" > ", 1)[0]  # without the redirection to the log
        argv = run_in_bash(program.replace("trajfusion", "printf '%s\\0'", 1), root)
        assert argv[argv.index("--data-dir") + 1] == configs["quoted"]["data_dir"]
        if argv[0] == "build-pool":
            settings = json.loads(argv[argv.index("--settings") + 1])
            assert settings["spec"] == configs["quoted"]["pools"]["embedded"]
    assert not any("rm -rf" in c or "touch" in c for c in commands if c not in carrying)
    assert not (root / "pwned").exists() and (root / "victim").is_dir()


def run_in_bash(command: str, cwd: Path) -> list[str]:
    out = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, timeout=30, check=True).stdout
    return out.decode().split("\0")[:-1]


def test_a_file_path_with_shell_syntax_is_refused(shell_dry_runs):
    root, _, results = shell_dry_runs
    output = results["refused"].stdout + results["refused"].stderr
    assert results["refused"].returncode != 0
    assert "instance['fusion']['phrases']" in output and "Job stats" not in output, output[-3000:]
    assert not (root / "refused" / "results").exists()


@pytest.mark.parametrize("mutate, key", [
    (lambda c: c["experiments"].__setitem__("t1; touch x", c["experiments"]["table2"]), ["experiments"]),
    (lambda c: c["fusion"]["variants"].__setitem__("tf$(id)", {"k_max": 0}), ["fusion", "variants"]),
    (lambda c: c["models"].__setitem__("m`id`", c["models"]["smollm2-135m"]), ["models"]),
    (lambda c: c["training_profiles"]["embedded-long"]["rope_scaling"].__setitem__("x'; touch y; '", 1),
     ["training_profiles", "embedded-long", "rope_scaling"]),
    (lambda c: c["training_profiles"]["embedded-long"]["rope_scaling"].__setitem__("beta", "'; touch y; '"),
     ["training_profiles", "embedded-long", "rope_scaling", "beta"]),
    (lambda c: c["training"].__setitem__("deepspeed", "zero1.json; touch y"), ["training", "deepspeed"]),
    (lambda c: c.__setitem__("data_dir", "data/{pool}"), ["data_dir"]),
    (lambda c: c["verify"].__setitem__("filters", {"note": "$(touch y)"}), ["verify", "filters"]),
], ids=["experiment-name", "variant-name", "model-name", "rope-scaling-key", "rope-scaling-value", "deepspeed-path",
        "data-dir-braces", "filter-text"])
def test_schema_refuses_shell_syntax_where_rules_use_values_unquoted(mutate, key):
    error = schema_error(embedded_config(mutate))
    assert error is not None and list(error.absolute_path) == key, error


def test_schema_accepts_shell_syntax_in_labels():
    # Labels only reach the report manifest (a Python `run:` block), never a shell command
    # (test_config_text_reaches_shell_commands_quoted), so any text is allowed.
    def labels(c):
        c["fusion"]["variants"]["tf"]["label"] = SHELLY
        c["backbones"]["smollm2-135m"]["label"] = SHELLY

    assert schema_error(embedded_config(labels)) is None
