"""The transformers backend: batched ``model.generate`` with left padding.

Each batch of prompts is one ``generate`` call with ``num_return_sequences=n``; the RNG is
reseeded per batch with the seed of its first prompt, so a batch's samples depend on the
batch (its prompts, hence the batch size: padding and the RNG's order change with it), not on
what else the call or the shard holds.
"""

from __future__ import annotations

import logging
import time

from trajfusion.io import InputError
from trajfusion.sample.backends import BatchedBackend, Completion
from trajfusion.sample.backends.options import BACKEND_DEFAULTS, DTYPES

log = logging.getLogger(__name__)
_DEFAULTS = BACKEND_DEFAULTS["hf"]


class HFBackend(BatchedBackend):
    def __init__(self, model_dir: str, batch_size: int = _DEFAULTS["batch_size"],
                 dtype: str | None = _DEFAULTS["dtype"], device: str | None = _DEFAULTS["device"],
                 threads: int | None = _DEFAULTS["threads"],
                 trust_remote_code: bool = False, progress: bool = True):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        if threads is not None:
            # On shared CPUs more threads than free cores slows generation down ~10x
            # (measured on 2 busy cores), so jobs pin this to their allotment.
            if threads < 1:
                raise InputError(f"threads must be >= 1, got {threads}")
            torch.set_num_threads(threads)
        self.batch_size = batch_size
        self.progress = progress
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
        self.tokenizer.padding_side = "left"  # generation continues from the right edge
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        started = time.perf_counter()
        self.model = AutoModelForCausalLM.from_pretrained(
            model_dir, dtype=_torch_dtype(dtype, self.device), trust_remote_code=trust_remote_code)
        self.model.to(self.device).eval()
        log.info("loaded %s on %s (%s) in %.1f s", model_dir, self.device, self.model.dtype,
                 time.perf_counter() - started)
        self.stop_token_ids = _stop_token_ids(self.model, self.tokenizer, model_dir)

    def _generate_batch(self, batch: list[list[int]], n: int, temperature: float, top_p: float,
                        max_new_tokens: int, seeds: list[int]) -> list[list[Completion]]:
        import torch

        torch.manual_seed(seeds[0])
        inputs = self.tokenizer.pad({"input_ids": batch}, padding=True, return_tensors="pt").to(self.device)
        options = _decoding_options(temperature, top_p)
        # Greedy decoding gives n identical sequences, and transformers refuses
        # num_return_sequences > 1 without sampling: decode once and repeat.
        sequences = n if options["do_sample"] else 1
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                num_return_sequences=sequences, max_new_tokens=max_new_tokens,
                eos_token_id=sorted(self.stop_token_ids), pad_token_id=self.tokenizer.pad_token_id, **options)
        new_tokens = output[:, inputs["input_ids"].shape[1]:].tolist()
        completions = [self._completion(tokens) for tokens in new_tokens for _ in range(n // sequences)]
        # generate() returns the sequences of each prompt consecutively.
        return [completions[i * n:(i + 1) * n] for i in range(len(batch))]

    def _completion(self, tokens: list[int]) -> Completion:
        stop_at = next((i for i, token in enumerate(tokens) if token in self.stop_token_ids), None)
        kept = tokens if stop_at is None else tokens[:stop_at + 1]
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        return Completion(text=text, n_tokens=len(kept), finish_reason="length" if stop_at is None else "stop")

    def close(self) -> None:
        import torch

        self.model = None
        super().close()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def _decoding_options(temperature: float, top_p: float) -> dict:
    """Pure temperature + nucleus sampling, as vLLM does with explicit SamplingParams.

    Values are always set explicitly: otherwise transformers fills them from the model's
    generation_config.json (e.g. a top_k or repetition_penalty the paper did not use).
    """
    if temperature == 0:
        return {"do_sample": False, "repetition_penalty": 1.0}
    return {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0, "repetition_penalty": 1.0}


def _torch_dtype(name: str | None, device):
    import torch

    if name is None:
        return torch.float32 if device.type == "cpu" else torch.bfloat16
    if name not in DTYPES:
        raise InputError(f"unknown dtype {name!r}; choose from {list(DTYPES)}")
    return name if name == "auto" else getattr(torch, name)


def _stop_token_ids(model, tokenizer, model_dir: str) -> frozenset[int]:
    """EOS ids of the generation config (may be several, e.g. Llama 3) plus the tokenizer's."""
    configured = model.generation_config.eos_token_id
    ids = set(configured if isinstance(configured, list) else [configured])
    ids.add(tokenizer.eos_token_id)
    ids.discard(None)
    if not ids:
        raise InputError(f"{model_dir}: neither generation_config.json nor the tokenizer defines an EOS token")
    return frozenset(ids)
