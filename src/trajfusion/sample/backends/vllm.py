"""The vLLM backend: offline ``vllm.LLM`` with one ``generate`` call per batch.

Each batch goes to vLLM in a single call with one ``SamplingParams(n=n, seed=...)`` per
request, so a prompt's samples follow its own seed whatever the batch holds (up to the
numerics of batched kernels) and the n samples of a prompt share its prefix in the KV cache.
Prompts are passed as token ids encoded exactly as the hf backend encodes them
(``trajfusion.templates.encode_prompts``), so both backends see the same input. vLLM is
imported only when this backend is constructed.
"""

from __future__ import annotations

import logging
import time

from trajfusion.io import InputError
from trajfusion.sample.backends import FINISH_REASONS, BatchedBackend, Completion
from trajfusion.sample.backends.options import BACKEND_DEFAULTS

log = logging.getLogger(__name__)
_DEFAULTS = BACKEND_DEFAULTS["vllm"]


class VLLMBackend(BatchedBackend):
    def __init__(self, model_dir: str, batch_size: int | None = _DEFAULTS["batch_size"],
                 dtype: str = _DEFAULTS["dtype"], tensor_parallel_size: int = _DEFAULTS["tensor_parallel_size"],
                 max_model_len: int | None = _DEFAULTS["max_model_len"],
                 gpu_memory_utilization: float = _DEFAULTS["gpu_memory_utilization"], seed: int = 0,
                 trust_remote_code: bool = False, progress: bool = True):
        try:
            import vllm
        except ImportError as exc:
            raise InputError(f"the vllm backend needs vLLM, which is not importable ({exc}); "
                             "install the extra: pip install 'trajfusion[vllm]'") from None
        from transformers import AutoTokenizer

        if batch_size is not None and batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self._vllm = vllm
        self.batch_size = batch_size
        self.progress = progress
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
        started = time.perf_counter()
        self.llm = vllm.LLM(model=model_dir, tensor_parallel_size=tensor_parallel_size,
                            max_model_len=max_model_len, seed=seed, dtype=dtype,
                            gpu_memory_utilization=gpu_memory_utilization,
                            trust_remote_code=trust_remote_code)
        log.info("vLLM engine for %s ready in %.1f s (tensor parallel %d)", model_dir,
                 time.perf_counter() - started, tensor_parallel_size)

    def _generate_batch(self, batch: list[list[int]], n: int, temperature: float, top_p: float,
                        max_new_tokens: int, seeds: list[int]) -> list[list[Completion]]:
        params = [self._vllm.SamplingParams(n=n, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens,
                                            seed=seed) for seed in seeds]
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in batch], params, use_tqdm=self.progress)
        return _to_completions(outputs, len(batch), n)

    def close(self) -> None:
        self.llm = None
        super().close()


def _to_completions(outputs, n_prompts: int, n: int) -> list[list[Completion]]:
    """Map vLLM ``RequestOutput`` objects (in prompt order) to groups of ``Completion``."""
    if len(outputs) != n_prompts:
        raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {n_prompts} prompts")
    groups = []
    for request in outputs:
        samples = sorted(request.outputs, key=lambda sample: sample.index)
        if len(samples) != n:
            raise RuntimeError(f"vLLM returned {len(samples)} completions for a prompt, expected {n}")
        groups.append([_completion(sample) for sample in samples])
    return groups


def _completion(sample) -> Completion:
    if sample.finish_reason not in FINISH_REASONS:
        raise RuntimeError(f"vLLM completion ended with finish_reason={sample.finish_reason!r}; "
                           f"expected one of {list(FINISH_REASONS)}")
    return Completion(text=sample.text, n_tokens=len(sample.token_ids), finish_reason=sample.finish_reason)
