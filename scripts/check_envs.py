"""Resolve every environment's dependency set with pip, installing nothing.

The environments: the CPU default that ``scripts/setup.sh --dev`` installs, and each
``envs/*.yaml`` (conda environment files whose ``pip:`` list is what matters). For each, pip's
resolver runs with ``--dry-run --ignore-installed`` on the package index (CUDA wheels are
resolved from their metadata, not downloaded); an environment whose requirements conflict
fails with pip's explanation. An environment that runs a generation backend (``BACKEND_ENVS``)
must install every package the backend's module imports and, unless the backend generates on a
server (``SERVER_BACKENDS``: the job needs no GPU), must not pin the CPU torch build.
Index options inside a requirement (``--index-url`` of the CPU
torch build) are dropped: the resolver sees the same version on PyPI.

    python scripts/check_envs.py [--report-dir DIR] [ENV ...]     # ENV: setup, core, train, vllm
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from trajfusion.sample.backends import BACKEND_ENVS, SERVER_BACKENDS, backend_module

REPO = Path(__file__).resolve().parents[1]
ENVS_DIR = REPO / "envs"
SHOWN = ("torch", "transformers", "trl", "accelerate", "vllm", "deepspeed", "numpy", "snakemake",
         "snakemake-executor-plugin-slurm")


def setup_requirements() -> list[str]:
    """What scripts/setup.sh --dev installs: its default torch pin, then the project with [dev]."""
    script = (REPO / "scripts" / "setup.sh").read_text()
    match = re.search(r'"torch==\$\{TORCH_VERSION:-([^}]+)\}"', script)
    if not match:
        raise SystemExit("scripts/setup.sh: no torch==${TORCH_VERSION:-X} pin found")
    return [f"torch=={match.group(1)}", f"-e {REPO}[dev]"]


def env_file_requirements(path: Path) -> list[str]:
    """The pip requirements of a conda environment file, ``..`` resolved against its folder."""
    spec = yaml.safe_load(path.read_text())
    pip_lists = [item["pip"] for item in spec.get("dependencies", []) if isinstance(item, dict) and "pip" in item]
    if len(pip_lists) != 1:
        raise SystemExit(f"{path}: expected one 'pip:' list under dependencies, found {len(pip_lists)}")
    requirements = []
    for entry in pip_lists[0]:
        requirement = re.sub(r"\s+--(extra-)?index-url\s+\S+", "", str(entry)).strip()
        if requirement.startswith("-e "):
            target = requirement[3:].strip()
            base, extras = (target.split("[", 1) + [""])[:2]
            requirement = f"-e {(path.parent / base).resolve()}" + (f"[{extras}" if extras else "")
        requirements.append(requirement)
    return requirements


def imported_packages(module: str) -> set[str]:
    """Top-level third-party names ``module`` imports anywhere (lazy imports too), read from its
    source without importing it (the vLLM backend's imports need a GPU stack)."""
    tree = ast.parse(Path(importlib.util.find_spec(module).origin).read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and not node.level}
    tops = {name.split(".")[0] for name in names}
    return {top for top in tops if top not in sys.stdlib_module_names and top not in ("trajfusion", "__future__")}


def backend_problems(env: str, requirements: list[str], versions: dict[str, str]) -> list[str]:
    """Why ``env`` cannot run the generation backends mapped to it (empty: it can)."""
    problems = []
    for backend in (b for b, name in BACKEND_ENVS.items() if name == env):
        missing = sorted(imported_packages(backend_module(backend)) - set(versions))
        if missing:
            problems.append(f"backend {backend} imports {missing}, which envs/{env}.yaml does not install")
        if backend not in SERVER_BACKENDS and any("download.pytorch.org/whl/cpu" in r for r in requirements):
            problems.append(f"backend {backend} may run on a GPU, but envs/{env}.yaml pins the CPU torch build")
    return problems


def raw_requirements(env: str) -> list[str]:
    """An env file's pip entries as written (index options kept); none for the setup env."""
    path = ENVS_DIR / f"{env}.yaml"
    if not path.exists():
        return []
    spec = yaml.safe_load(path.read_text())
    return [str(entry) for item in spec["dependencies"] if isinstance(item, dict) for entry in item.get("pip", [])]


def environments() -> dict[str, list[str]]:
    found = {"setup": setup_requirements()}
    for path in sorted(ENVS_DIR.glob("*.yaml")):
        found[path.stem] = env_file_requirements(path)
    return found


def resolve(requirements: list[str], report: Path) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as tmp:
        req_file = Path(tmp) / "requirements.txt"
        req_file.write_text("\n".join(requirements) + "\n")
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                   "--disable-pip-version-check", "--report", str(report), "-r", str(req_file)]
        return subprocess.run(command, capture_output=True, text=True)


def resolved_versions(report: Path) -> dict[str, str]:
    installs = json.loads(report.read_text())["install"]
    return {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in installs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("envs", nargs="*", help="environments to check (default: all)")
    parser.add_argument("--report-dir", type=Path, default=None, help="keep pip's JSON reports here")
    args = parser.parse_args(argv)
    known = environments()
    unknown = sorted(set(args.envs) - set(known))
    if unknown:
        parser.error(f"unknown environment(s) {unknown}; known: {sorted(known)}")
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        report_dir = args.report_dir or Path(tmp)
        report_dir.mkdir(parents=True, exist_ok=True)
        for name in args.envs or known:
            report = report_dir / f"{name}.json"
            result = resolve(known[name], report)
            if result.returncode != 0:
                failed.append(name)
                explanation = "\n".join(line for line in result.stderr.splitlines()
                                        if not line.startswith("WARNING: Location"))  # find-links noise
                print(f"{name}: DOES NOT RESOLVE ({' '.join(known[name])})\n{explanation.strip()}")
                continue
            versions = resolved_versions(report)
            raw = raw_requirements(name)
            problems = backend_problems(name, raw, versions)
            if problems:
                failed.append(name)
                print(f"{name}: resolves, but " + "; ".join(problems))
                continue
            shown = ", ".join(f"{pkg} {versions[pkg]}" for pkg in SHOWN if pkg in versions)
            print(f"{name}: resolves ({len(versions)} packages): {shown}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
