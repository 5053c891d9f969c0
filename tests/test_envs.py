"""The environment check (scripts/check_envs.py) reads the environments as pip will see them;
the resolution itself runs in CI (.ci/run), as it needs the package index."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import local_snakemake_env
from trajfusion.sample.backends import BACKEND_ENVS, backend_module

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_envs", REPO / "scripts" / "check_envs.py")
check_envs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_envs)


def test_env_file_entries_become_pip_requirements(tmp_path):
    envs = tmp_path / "envs"
    envs.mkdir()
    (envs / "gpu.yaml").write_text(
        'dependencies:\n  - python=3.11\n  - pip:\n'
        '      - "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"\n'
        '      - "-e ..[vllm]"\n')
    assert check_envs.env_file_requirements(envs / "gpu.yaml") == ["torch==2.13.0", f"-e {tmp_path}[vllm]"]


def test_env_file_without_one_pip_list_is_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("dependencies:\n  - python=3.11\n")
    with pytest.raises(SystemExit, match="bad.yaml: expected one 'pip:' list"):
        check_envs.env_file_requirements(path)


def test_every_environment_is_checked_and_installs_this_project():
    found = check_envs.environments()
    assert set(found) == {"setup", *(p.stem for p in (REPO / "envs").glob("*.yaml"))}
    for name, requirements in found.items():
        assert any(r.startswith(f"-e {REPO}") for r in requirements), name


def test_env_files_pin_nothing_the_project_pins():
    # One place for each version: a package pinned in pyproject.toml (dependencies or extras)
    # is not pinned again in an environment file.
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    pinned = {re.split(r"[\[=<>! ]", d, maxsplit=1)[0].lower() for d in declared if "==" in d}
    for path in (REPO / "envs").glob("*.yaml"):
        for requirement in check_envs.env_file_requirements(path):
            if not requirement.startswith("-e "):
                name = re.split(r"[\[=<>! ]", requirement, maxsplit=1)[0].lower()
                assert name not in pinned, f"{path.name} pins {name} again"


def test_cpu_environment_files_pin_the_torch_of_the_setup_script():
    setup_torch = check_envs.setup_requirements()[0]
    for path in (REPO / "envs").glob("*.yaml"):
        torch_pins = [r for r in check_envs.env_file_requirements(path) if r.startswith("torch")]
        assert torch_pins in ([], [setup_torch]), f"{path.name}: {torch_pins} vs scripts/setup.sh {setup_torch}"


def test_generation_backends_import_what_their_envs_must_install():
    assert {"torch", "transformers"} <= check_envs.imported_packages(backend_module("hf"))
    assert "vllm" in check_envs.imported_packages(backend_module("vllm"))
    # The openai backend talks HTTP and loads a tokenizer: no torch, no vllm.
    assert check_envs.imported_packages(backend_module("openai")) == {"requests", "transformers"}


def test_a_backend_env_missing_a_package_or_with_cpu_torch_is_refused():
    train = check_envs.raw_requirements("train")
    assert check_envs.backend_problems("train", train, {"torch": "2.13.0", "transformers": "5.20.2"}) == []
    assert check_envs.backend_problems("train", train, {"torch": "2.13.0"}) == [
        "backend hf imports ['transformers'], which envs/train.yaml does not install"]
    core = check_envs.raw_requirements("core")
    assert any("whl/cpu" in r for r in core)
    with_cpu_torch = check_envs.backend_problems("train", core, {"torch": "2.13.0", "transformers": "5.20.2"})
    assert with_cpu_torch == ["backend hf may run on a GPU, but envs/train.yaml pins the CPU torch build"]
    # The openai backend's server generates: its CPU env may pin the CPU torch build.
    assert BACKEND_ENVS["openai"] == "core"
    assert check_envs.backend_problems("core", core, {"requests": "2.34.2", "transformers": "5.20.2"}) == []
    assert check_envs.backend_problems("core", core, {"transformers": "5.20.2"}) == [
        "backend openai imports ['requests'], which envs/core.yaml does not install"]


def rule_envs(tmp_path: Path, config: dict) -> dict[str, list[str]]:
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, str(REPO / "tests" / "rule_envs.py"), str(configfile), str(tmp_path)],
                            env=local_snakemake_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("teacher_backend, evaluation_backend", [("hf", "vllm"), ("vllm", "hf"), ("openai", "openai")])
def test_each_generation_job_runs_in_its_backends_env(tmp_path, teacher_backend, evaluation_backend):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for teacher in config["teachers"].values():
        teacher["backend"] = teacher_backend
    config["evaluation"]["backend"] = evaluation_backend
    envs = rule_envs(tmp_path, config)
    assert envs["sample_shard"] == [f"{BACKEND_ENVS[teacher_backend]}.yaml"]
    assert envs["evaluate"] == envs["evaluate_baseline"] == [f"{BACKEND_ENVS[evaluation_backend]}.yaml"]
    assert envs["train_embedded"] == envs["prepare_model"] == ["train.yaml"]
    assert envs["verify"] == envs["fuse"] == envs["report"] == ["core.yaml"]
    # every job but the target and the local manifest (a `run:` block in Snakemake's own
    # Python) names an env
    assert {rule for rule, files in envs.items() if None in files} == {"all", "report_manifest"}


def test_every_backend_env_is_an_env_file():
    assert all((REPO / "envs" / f"{env}.yaml").exists() for env in BACKEND_ENVS.values())
