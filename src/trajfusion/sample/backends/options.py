"""The generation settings of ``trajfusion sample`` and ``trajfusion evaluate``, declared once
(``GenerationSettings``, extended by both stages' settings), and the backends' defaults for
the tuning options left unset (``BACKEND_DEFAULTS``: the backend constructors default to
them, the help texts show them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from trajfusion.sample.backends import BACKEND_NAMES
from trajfusion.settings import Settings, at_least, positive, setting

log = logging.getLogger(__name__)

DTYPES = ("float32", "bfloat16", "float16", "auto")
PROMPT_FORMATS = ("text", "tokens")

# The tuning options each backend takes, with its default for an option left unset (None:
# decided when the backend starts, as _UNSET_MEANS says).
BACKEND_DEFAULTS = {
    "hf": {"batch_size": 8, "dtype": None, "device": None, "threads": None},
    "vllm": {"batch_size": None, "dtype": "auto", "tensor_parallel_size": 1, "max_model_len": None,
             "gpu_memory_utilization": 0.9},
    # Assumptions (the issue names the options, not their values): the port vLLM and
    # `transformers serve` listen on by default; 8 requests in flight; 5 retries waiting 1, 2, 4,
    # 8, 16 s; a request may take 30 min (a 16K-token response on a busy server); 32 prompts per
    # batch, the unit a killed job resumes from.
    "openai": {"batch_size": 32, "base_url": "http://127.0.0.1:8000/v1", "served_model": None,
               "api_key_env": None, "concurrency": 8, "max_retries": 5, "retry_backoff": 1.0,
               "request_timeout": 1800.0, "prompt_format": "text", "per_sample_requests": False},
}
_UNSET_MEANS = {
    ("hf", "dtype"): "float32 on CPU, else bfloat16",
    ("hf", "device"): "cuda if available, else cpu",
    ("hf", "threads"): "torch's choice",
    ("vllm", "batch_size"): "all prompts at once",
    ("vllm", "max_model_len"): "the model's",
    ("openai", "served_model"): "the --model directory as given, the name `vllm serve DIR` gives it",
    ("openai", "api_key_env"): "no key sent",
}
_TUNING_OPTIONS = sorted({name for options in BACKEND_DEFAULTS.values() for name in options})


def for_backend(spec: dict) -> dict:
    """A config section (a teacher, the evaluation) without the tuning options its backend does
    not take, so that a rule passes only what the chosen backend uses."""
    taken = BACKEND_DEFAULTS[spec["backend"]]
    return {key: value for key, value in spec.items() if key not in _TUNING_OPTIONS or key in taken}


def _backend_help(option: str, text: str) -> str:
    """``text`` with the backends taking ``option`` and their defaults, from BACKEND_DEFAULTS."""
    defaults = {backend: _UNSET_MEANS.get((backend, option), options[option])
                for backend, options in BACKEND_DEFAULTS.items() if option in options}
    if len(defaults) == 1:
        ((backend, default),) = defaults.items()
        return f"{text} ({backend} only; unset: {default})"
    return f"{text} (unset: {'; '.join(f'{backend} {default}' for backend, default in defaults.items())})"


def _share(value) -> str | None:
    return None if 0 < value <= 1 else "must be in (0, 1]"


@dataclass(frozen=True, kw_only=True)
class GenerationSettings(Settings):
    """How a model generates: the prompt template, the sampling parameters and the backend
    with its tuning options. Tuning options left unset (None) take the backend's default."""

    template: str = setting(help="prompt template name (trajfusion.templates, resources/templates.yaml)")
    backend: str = setting("hf", help="generation backend", choices=BACKEND_NAMES)
    temperature: float = setting(help="sampling temperature (0: greedy)", check=at_least(0))
    top_p: float = setting(help="nucleus sampling probability mass", check=_share)
    max_new_tokens: int = setting(help="generated tokens per response at most", check=at_least(1))
    seed: int = setting(help="base seed; the seeds of shards and batches derive from it")
    batch_size: int | None = setting(None, help=_backend_help("batch_size", "prompts per generate call"),
                                     check=at_least(1))
    dtype: str | None = setting(None, help=_backend_help("dtype", "model dtype"), choices=DTYPES)
    device: str | None = setting(None, help=_backend_help("device", "torch device"))
    threads: int | None = setting(None, help=_backend_help("threads", "torch threads on CPU (pass the job's core "
                                                           "allotment)"), check=at_least(1), affects_output=False)
    trust_remote_code: bool = setting(False, help="allow model code from the model directory")
    tensor_parallel_size: int | None = setting(None, help=_backend_help("tensor_parallel_size", "GPUs per model"),
                                               check=at_least(1))
    max_model_len: int | None = setting(None, help=_backend_help("max_model_len", "context length"),
                                        check=at_least(1))
    gpu_memory_utilization: float | None = setting(
        None, help=_backend_help("gpu_memory_utilization", "share of GPU memory for the engine"), check=_share)
    base_url: str | None = setting(None, help=_backend_help(
        "base_url", "the server's OpenAI API root; requests go to BASE_URL/completions"), affects_output=False)
    served_model: str | None = setting(None, help=_backend_help(
        "served_model", "the model name the server knows (the requests' model field)"))
    api_key_env: str | None = setting(None, help=_backend_help(
        "api_key_env", "environment variable holding the API key (sent as a Bearer token)"), affects_output=False)
    concurrency: int | None = setting(None, help=_backend_help("concurrency", "requests in flight at once"),
                                      check=at_least(1), affects_output=False)
    max_retries: int | None = setting(None, help=_backend_help(
        "max_retries", "retries of a request after a connection error, timeout, HTTP 429 or 5xx"),
        check=at_least(0), affects_output=False)
    retry_backoff: float | None = setting(None, help=_backend_help(
        "retry_backoff", "seconds before the first retry, doubled for each next one"), check=at_least(0),
        affects_output=False)
    request_timeout: float | None = setting(None, help=_backend_help(
        "request_timeout", "seconds a request may take"), check=positive, affects_output=False)
    prompt_format: str | None = setting(None, help=_backend_help(
        "prompt_format", "send the prompt as text (the server tokenizes it) or as token ids"),
        choices=PROMPT_FORMATS)
    per_sample_requests: bool | None = setting(None, help=_backend_help(
        "per_sample_requests", "one request per sample, seeded from (seed, problem_id, sample index), "
        "instead of one request with n per prompt: for servers that ignore n (transformers serve)"))

    def backend_options(self) -> dict:
        """The ``load_backend`` options: the set tuning options the chosen backend takes (a
        warning names those it ignores), the engine seed for vllm, trust_remote_code."""
        taken = BACKEND_DEFAULTS[self.backend]
        options = {name: getattr(self, name) for name in taken if getattr(self, name) is not None}
        ignored = [name for name in _TUNING_OPTIONS if name not in taken and getattr(self, name) is not None]
        if ignored:
            log.warning("backend %s ignores option(s) %s", self.backend, ignored)
        if self.backend == "vllm":
            options["seed"] = self.seed
        options["trust_remote_code"] = self.trust_remote_code
        return options
