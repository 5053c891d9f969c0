"""The environment check (scripts/check_envs.py) reads the environments as pip will see them;
the resolution itself runs in CI (.ci/run), as it needs the package index."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

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
