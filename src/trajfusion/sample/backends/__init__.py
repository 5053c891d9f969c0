"""Text generation backends: one interface over transformers (``hf``), vLLM (``vllm``) and an
OpenAI-compatible server (``openai``: vLLM, SGLang, llama.cpp, ``transformers serve``), used by
sampling and by evaluation.

``load_backend(name, model_dir, **options)`` returns an object with
``generate(prompts, n, temperature, top_p, max_new_tokens, seed, keys) -> list[list[Completion]]``
(outer list: prompts, inner: the n completions of that prompt), a ``tokenizer`` attribute
for rendering chat templates, and ``close()``. Prompts are encoded with the BOS rule of
``trajfusion.templates.encode_prompts``, as in training (the openai backend sends the text the
server tokenizes to those ids: ``trajfusion.sample.backends.openai``). Backend modules are imported
lazily so that importing this package stays cheap; ``options`` holds the generation
settings both stages extend (``GenerationSettings``) and the backends' defaults.
"""

from __future__ import annotations

import abc
import gc
import hashlib
import importlib
import inspect
import time
from dataclasses import dataclass
from pathlib import Path

from trajfusion.contracts import FINISH_REASONS
from trajfusion.io import InputError, check_model_dir
from trajfusion.templates import encode_prompts

_BACKENDS = {
    "hf": ("trajfusion.sample.backends.hf", "HFBackend"),
    "vllm": ("trajfusion.sample.backends.vllm", "VLLMBackend"),
    "openai": ("trajfusion.sample.backends.openai", "OpenAIBackend"),
}
BACKEND_NAMES = tuple(_BACKENDS)
# The environment (envs/<name>.yaml) a generation job of each backend runs in under
# `--sdm conda`: hf needs torch and transformers (the training env has their GPU builds),
# vLLM its own env (it pins its own torch), openai only an HTTP client and a tokenizer (the
# light CPU env: the server generates).
BACKEND_ENVS = {"hf": "train", "vllm": "vllm", "openai": "core"}
assert set(BACKEND_ENVS) == set(_BACKENDS)
# Backends whose model runs elsewhere (a server): their jobs use no GPU and no torch.
SERVER_BACKENDS = frozenset({"openai"})
# Backends seeding every request (prompt) on its own: a prompt's samples do not depend on the
# batch, so sampling shards need not hold whole batches (trajfusion.sample.shards).
PER_REQUEST_SEEDED = frozenset({"vllm", "openai"})
assert SERVER_BACKENDS | PER_REQUEST_SEEDED <= set(_BACKENDS)


def backend_module(name: str) -> str:
    """The module implementing backend ``name`` (not imported here)."""
    return _BACKENDS[name][0]


@dataclass(frozen=True)
class Completion:
    text: str
    n_tokens: int  # generated tokens, including the stop token, excluding padding
    finish_reason: str  # "stop" (a stop token was generated) or "length" (max_new_tokens hit)


def derive_seed(*parts: int | str) -> int:
    """A seed in [0, 2**31) derived deterministically from ``parts`` (e.g. seed and shard).

    Hashing rather than adding keeps seeds of neighbouring shards/batches unrelated:
    (seed=1, shard=0) and (seed=0, shard=1) get different streams.
    """
    blob = ("trajfusion-seed:" + ":".join(str(p) for p in parts)).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big") % (2**31)


def check_sampling_args(prompts: list[str], n: int, temperature: float, top_p: float,
                        max_new_tokens: int) -> None:
    if not all(isinstance(p, str) for p in prompts):
        raise InputError("prompts must be strings")
    if n < 1:
        raise InputError(f"n (samples per prompt) must be >= 1, got {n}")
    if max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0:
        raise InputError(f"temperature must be >= 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise InputError(f"top_p must be in (0, 1], got {top_p}")


def batches(items: list, size: int | None):
    """Consecutive chunks of ``items`` of length ``size`` (all at once when ``size`` is None)."""
    size = size or max(len(items), 1)
    return [items[i:i + size] for i in range(0, len(items), size)]


class BatchedBackend(abc.ABC):
    """What the backends share: argument checks, prompt encoding, batching, one seed per
    prompt derived from (seed, key) and the progress bar. A prompt's key is its problem_id
    (its position when no keys are given), so a prompt's samples do not depend on which other
    prompts a call holds: vLLM and openai seed each request with its own seed; transformers has one RNG
    per ``generate`` call and seeds each batch with its first prompt's seed, so its samples are
    independent of the call only when the batches are (sampling shards hold whole batches:
    ``trajfusion.sample.shards``). A backend sets ``tokenizer``, ``batch_size`` and ``progress``
    and implements ``_generate_batch`` (or ``_generate_batches``, to work on several batches at
    once; results still come back, and are recorded, batch by batch in order)."""

    tokenizer = None
    batch_size: int | None = None
    progress: bool = True

    def generate(self, prompts: list[str], n: int, temperature: float, top_p: float,
                 max_new_tokens: int, seed: int, keys: list[str] | None = None,
                 partial=None) -> list[list[Completion]]:
        """The n completions of each prompt. ``partial`` (``trajfusion.sample.partial.PartialBatches``)
        supplies batches completed by an earlier, killed run and records each new one."""
        from tqdm.auto import tqdm

        check_sampling_args(prompts, n, temperature, top_p, max_new_tokens)
        keys = list(range(len(prompts))) if keys is None else list(keys)
        if len(keys) != len(prompts):
            raise InputError(f"{len(keys)} keys for {len(prompts)} prompts")
        seeds = [derive_seed(seed, key) for key in keys]
        results: list[list[Completion]] = []
        generated_tokens = 0
        started = time.perf_counter()
        with tqdm(total=len(prompts), unit="problem", desc="sampling", disable=not self.progress) as bar:
            encoded = self.encode(prompts)
            chunks = list(zip(*(batches(items, self.batch_size) for items in (encoded, seeds, keys)), strict=True))
            done = [partial.done.get(tuple(batch_keys)) if partial is not None else None
                    for _, _, batch_keys in chunks]
            fresh = self._generate_batches([(batch, batch_seeds) for (batch, batch_seeds, _), groups
                                            in zip(chunks, done, strict=True) if groups is None],
                                           n, temperature, top_p, max_new_tokens)
            for (batch, _, batch_keys), groups in zip(chunks, done, strict=True):
                if groups is None:
                    groups = next(fresh)
                    generated_tokens += sum(c.n_tokens for group in groups for c in group)
                    if partial is not None:
                        partial.record(batch_keys, groups)
                results.extend(groups)
                bar.update(len(batch))
                bar.set_postfix(tok_s=f"{generated_tokens / (time.perf_counter() - started):.1f}")
        return results

    def encode(self, prompts: list[str]) -> list:
        """What ``_generate_batch`` receives for each prompt: its token ids."""
        return encode_prompts(self.tokenizer, prompts)

    def _generate_batches(self, todo: list[tuple[list, list[int]]], n: int, temperature: float, top_p: float,
                          max_new_tokens: int):
        """The completions of each ``(batch, seeds)`` of ``todo``, batch by batch, in order."""
        return (self._generate_batch(batch, n, temperature, top_p, max_new_tokens, batch_seeds)
                for batch, batch_seeds in todo)

    @abc.abstractmethod
    def _generate_batch(self, batch: list[list[int]], n: int, temperature: float, top_p: float,
                        max_new_tokens: int, seeds: list[int]) -> list[list[Completion]]:
        """The n completions of each prompt of ``batch`` (token ids); ``seeds``: one per prompt."""

    def close(self) -> None:
        gc.collect()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_backend(name: str, model_dir: str | Path, **options):
    """Construct backend ``name`` (one of ``BACKEND_NAMES``) for the model in ``model_dir`` (for
    openai: its tokenizer; the server holds the model)."""
    if name not in _BACKENDS:
        raise InputError(f"unknown generation backend {name!r}; known: {list(BACKEND_NAMES)}")
    if not Path(model_dir).is_dir():
        raise InputError(f"{model_dir}: model directory does not exist")
    check_model_dir(model_dir)
    module_name, class_name = _BACKENDS[name]
    backend_class = getattr(importlib.import_module(module_name), class_name)
    accepted = set(inspect.signature(backend_class).parameters) - {"model_dir"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InputError(f"backend {name!r}: unknown option(s) {unknown}; accepted: {sorted(accepted)}")
    return backend_class(str(model_dir), **options)


__all__ = ["BACKEND_NAMES", "PER_REQUEST_SEEDED", "SERVER_BACKENDS", "BatchedBackend", "Completion", "FINISH_REASONS",
           "batches", "check_sampling_args", "derive_seed", "load_backend"]
