"""The vllm backend against the pinned vLLM release's own code.

vLLM cannot be imported here (its wheel is built against the CUDA build of another torch), so
its source is read from the pinned wheel (downloaded once, without dependencies, into
``.cache/wheels``): every argument the backend passes, every field it reads and the prompt
format it sends must exist there. What the backend passes is recorded by running it against
tests/test_generation.py's FakeVLLM, and what it reads is taken from its own source, so a new
call is checked without editing this file. vLLM's RoPE loader (``patch_rope_parameters``) runs
for real on the config the 32K training writes. The fake stays the test of behaviour.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from test_generation import FakeVLLM

from trajfusion.sample.backends import FINISH_REASONS, load_backend

REPO = Path(__file__).resolve().parents[1]
WHEELS = REPO / ".cache" / "wheels"
BACKEND_SOURCE = REPO / "src" / "trajfusion" / "sample" / "backends" / "vllm.py"


def pinned_vllm() -> str:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (requirement,) = extras["vllm"]
    return requirement.split("==")[1]


@pytest.fixture(scope="module")
def wheel() -> zipfile.ZipFile:
    version = pinned_vllm()
    found = sorted(WHEELS.glob(f"vllm-{version}-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
                        f"vllm=={version}", "--dest", str(WHEELS)], check=True, timeout=900)
        found = sorted(WHEELS.glob(f"vllm-{version}-*.whl"))
    return zipfile.ZipFile(found[0])


def module(wheel: zipfile.ZipFile, name: str) -> ast.Module:
    return ast.parse(wheel.read(name.replace(".", "/") + ".py").decode())


def top_level(tree: ast.Module, name: str):
    return next(node for node in tree.body if getattr(node, "name", None) == name)


def annotated_fields(cls: ast.ClassDef) -> set[str]:
    return {node.target.id for node in cls.body if isinstance(node, ast.AnnAssign)}


def method(cls: ast.ClassDef, name: str) -> ast.FunctionDef:
    return next(node for node in cls.body if isinstance(node, ast.FunctionDef) and node.name == name)


def parameters(function: ast.FunctionDef) -> dict[str, ast.arg]:
    args = function.args
    return {a.arg: a for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}


@pytest.fixture
def recorded(monkeypatch, tiny_model_dir) -> FakeVLLM:
    """What the backend passes to vLLM: one engine, one generate call with two prompts."""
    fake = FakeVLLM()
    monkeypatch.setitem(sys.modules, "vllm", fake.module)
    backend = load_backend("vllm", tiny_model_dir, tensor_parallel_size=2, max_model_len=4096, seed=7,
                           dtype="bfloat16", gpu_memory_utilization=0.8, batch_size=None, progress=False)
    backend.generate(["a", "b"], n=2, temperature=0.7, top_p=0.95, max_new_tokens=8, seed=1, keys=["p/0", "p/1"])
    return fake


def test_engine_arguments_exist_in_llm_or_engine_args(wheel, recorded):
    llm = top_level(module(wheel, "vllm.entrypoints.llm"), "LLM")
    init = method(llm, "__init__")
    engine_fields = annotated_fields(top_level(module(wheel, "vllm.engine.arg_utils"), "EngineArgs"))
    # LLM(**kwargs) hands the keywords it does not name to EngineArgs(...).
    forwards = any(isinstance(node, ast.Call) and getattr(node.func, "id", None) == "EngineArgs"
                   and any(k.arg is None for k in node.keywords) for node in ast.walk(init))
    assert init.args.kwarg is not None and forwards
    unknown = sorted(set(recorded.init_kwargs) - set(parameters(init)) - engine_fields)
    assert unknown == [], f"vllm {pinned_vllm()} has no LLM/EngineArgs argument {unknown}"


def test_sampling_params_fields_exist_and_generate_takes_one_per_request(wheel, recorded):
    fields = annotated_fields(top_level(module(wheel, "vllm.sampling_params"), "SamplingParams"))
    (call,) = recorded.calls
    assert isinstance(call["params"], list) and len(call["params"]) == 2  # one per request, own seed
    for params in call["params"]:
        assert set(vars(params)) <= fields, sorted(set(vars(params)) - fields)
    generate = method(top_level(module(wheel, "vllm.entrypoints.llm"), "LLM"), "generate")
    accepted = parameters(generate)
    assert {"prompts", "sampling_params", "use_tqdm"} <= set(accepted)
    assert "Sequence[SamplingParams]" in ast.unparse(accepted["sampling_params"].annotation)


def test_token_id_prompts_have_the_tokens_prompt_shape(wheel, recorded):
    tokens_prompt = annotated_fields(top_level(module(wheel, "vllm.inputs.llm"), "TokensPrompt"))
    for prompt in recorded.calls[0]["prompts"]:
        assert set(prompt) <= tokens_prompt and "prompt_token_ids" in prompt


def test_output_fields_the_backend_reads_exist(wheel):
    outputs = module(wheel, "vllm.outputs")
    read = {}
    for node in ast.walk(ast.parse(BACKEND_SOURCE.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("request",
                                                                                                     "sample"):
            read.setdefault(node.value.id, set()).add(node.attr)
    assert read["request"] and read["sample"], "the backend's names for outputs changed; update this test"
    request_fields = set(parameters(method(top_level(outputs, "RequestOutput"), "__init__")))
    completion_fields = annotated_fields(top_level(outputs, "CompletionOutput"))
    assert read["request"] <= request_fields, sorted(read["request"] - request_fields)
    assert read["sample"] <= completion_fields, sorted(read["sample"] - completion_fields)
    engine = wheel.read("vllm/v1/engine/__init__.py").decode()
    finish_reasons = ast.literal_eval(re.search(r"FINISH_REASON_STRINGS = (\(.*?\))", engine).group(1))
    assert set(FINISH_REASONS) <= set(finish_reasons)


def _vllm_rope_loader(wheel):
    """vLLM's patch_rope_parameters and the helpers it calls, run from the wheel's source."""
    from transformers.configuration_utils import ALLOWED_LAYER_TYPES  # what vLLM imports from transformers

    namespace = {"ALLOWED_LAYER_TYPES": ALLOWED_LAYER_TYPES, "logger": logging.getLogger("vllm-wheel")}
    namespace["logger"].warning_once = namespace["logger"].warning
    config_utils = module(wheel, "vllm.config.utils")
    rope = module(wheel, "vllm.transformers_utils.config")
    getattr_iter = top_level(config_utils, "getattr_iter")
    names = ("is_rope_parameters_nested", "patch_legacy_rope_type", "patch_rope_parameters")
    functions = [top_level(rope, name) for name in names]
    for function in (getattr_iter, *functions):
        function.returns = None
        for arg in parameters(function).values():
            arg.annotation = None
    # patch_rope_parameters imports getattr_iter from vllm.config.utils: take the wheel's copy.
    functions[-1].body = [stmt for stmt in functions[-1].body if not isinstance(stmt, ast.ImportFrom)]
    code = ast.Module(body=[getattr_iter, *functions], type_ignores=[])
    exec(compile(ast.fix_missing_locations(code), "vllm-wheel", "exec"), namespace)
    return namespace["patch_rope_parameters"]


def test_vllm_reads_the_rope_scaling_the_32k_training_writes(wheel, tiny_model_dir, tmp_path):
    from transformers import AutoConfig

    from trajfusion.train.trainer import apply_rope_scaling

    config = AutoConfig.from_pretrained(tiny_model_dir)
    yarn = {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 4096}  # config/paper.yaml
    apply_rope_scaling(config, yarn, 32768)
    config.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    loaded = AutoConfig.from_pretrained(tmp_path)  # vLLM loads the config with transformers' AutoConfig
    _vllm_rope_loader(wheel)(loaded)  # raises on a RoPE config vLLM cannot use
    assert {key: loaded.rope_parameters[key] for key in yarn} == yarn, written
    assert loaded.max_position_embeddings >= 32768
