"""Generation backends: the hf backend on a tiny random Llama (conftest's ``tiny_model_dir``),
the vLLM backend on a fake ``vllm`` module."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from trajfusion.io import InputError
from trajfusion.sample.backends import Completion, derive_seed, load_backend
from trajfusion.templates import encode_prompts

PROMPTS = ["What is 2 + 3?", "A train travels 60 km in 1.5 hours. What is its average speed in km/h?", "x"]


def build_eos_prone_model(source: Path, directory: Path, eos_weight: float = 1.4) -> Path:
    """A copy of the tiny model whose EOS probability is raised at every step (~0.05 at 1.4).

    Residual dimension 0 is held at 1 for every token (embeddings set to 1, no layer
    writes to it), so after the final RMSNorm it is a large positive constant; only the
    EOS row of the (untied) output layer reads it.
    """
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(source)
    eos = AutoTokenizer.from_pretrained(source).eos_token_id
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = 1.0
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[0] = 0.0
            layer.mlp.down_proj.weight[0] = 0.0
        model.lm_head.weight[:, 0] = 0.0
        model.lm_head.weight[eos, 0] = eos_weight
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(source).save_pretrained(directory)
    return directory


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The test machine's cores are shared; one thread avoids oversubscription (3x faster)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def hf_backend(tiny_model_dir):
    backend = load_backend("hf", tiny_model_dir, batch_size=2, progress=False)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def eos_backend(tiny_model_dir, tmp_path_factory):
    directory = build_eos_prone_model(tiny_model_dir, tmp_path_factory.mktemp("eos-model"))
    backend = load_backend("hf", directory, batch_size=3, progress=False)
    yield backend
    backend.close()


# ------------------------------------------------------------------------------- hf


def test_hf_returns_n_completions_per_prompt_and_hits_length(hf_backend):
    results = hf_backend.generate(PROMPTS, n=3, temperature=0.7, top_p=0.95, max_new_tokens=5, seed=11)
    assert len(results) == len(PROMPTS)
    for group in results:
        assert len(group) == 3
        for completion in group:
            assert isinstance(completion, Completion)
            # A random model over a 49k vocabulary essentially never emits EOS in 5 steps.
            assert (completion.finish_reason, completion.n_tokens) == ("length", 5)
            assert isinstance(completion.text, str) and completion.text


def test_hf_counts_tokens_up_to_eos_and_marks_stop(eos_backend):
    max_new = 12
    results = eos_backend.generate(PROMPTS, n=4, temperature=1.0, top_p=1.0, max_new_tokens=max_new, seed=3)
    completions = [c for group in results for c in group]
    reasons = {c.finish_reason for c in completions}
    assert reasons == {"stop", "length"}, "seed should give a batch mixing early stops and full-length rows"
    for c in completions:
        if c.finish_reason == "length":
            assert c.n_tokens == max_new
        else:
            assert 1 <= c.n_tokens <= max_new
    # Rows that stopped early were padded up to the batch length; padding is not counted.
    assert min(c.n_tokens for c in completions) < max_new


def test_completion_accounting_on_token_lists(eos_backend):
    eos = eos_backend.tokenizer.eos_token_id
    word = eos_backend.tokenizer("hello", add_special_tokens=False)["input_ids"]
    stopped = eos_backend._completion([*word, eos, eos, eos])  # EOS then padding (pad == EOS)
    assert stopped == Completion(text="hello", n_tokens=len(word) + 1, finish_reason="stop")
    truncated = eos_backend._completion([*word, *word])
    assert truncated == Completion(text="hellohello", n_tokens=2 * len(word), finish_reason="length")


def test_hf_greedy_eos_model_stops_immediately(tiny_model_dir, tmp_path):
    # With weight 3.0, EOS is the argmax at every step, so greedy decoding stops at once.
    directory = build_eos_prone_model(tiny_model_dir, tmp_path / "eos-greedy", eos_weight=3.0)
    backend = load_backend("hf", directory, progress=False)
    try:
        results = backend.generate(PROMPTS[:2], n=2, temperature=0.0, top_p=1.0, max_new_tokens=8, seed=0)
    finally:
        backend.close()
    assert results == [[Completion("", 1, "stop")] * 2] * 2


def test_hf_same_seed_same_text_other_seed_differs(hf_backend):
    kwargs = dict(n=2, temperature=0.7, top_p=0.95, max_new_tokens=4)
    first = hf_backend.generate(PROMPTS, seed=5, **kwargs)
    again = hf_backend.generate(PROMPTS, seed=5, **kwargs)
    other = hf_backend.generate(PROMPTS, seed=6, **kwargs)
    assert first == again
    assert first != other
    # The n samples of one prompt are distinct draws, not copies.
    assert first[0][0].text != first[0][1].text


def test_hf_batched_greedy_equals_one_prompt_at_a_time(tiny_model_dir, hf_backend):
    """Left padding + attention mask: padding must not change what a prompt generates."""
    single = load_backend("hf", tiny_model_dir, batch_size=1, progress=False)
    try:
        alone = single.generate(PROMPTS, n=1, temperature=0.0, top_p=1.0, max_new_tokens=8, seed=0)
    finally:
        single.close()
    batched_backend = load_backend("hf", tiny_model_dir, batch_size=len(PROMPTS), progress=False)
    try:
        batched = batched_backend.generate(PROMPTS, n=1, temperature=0.0, top_p=1.0, max_new_tokens=8, seed=0)
    finally:
        batched_backend.close()
    assert batched == alone


def test_hf_rejects_bad_sampling_arguments(hf_backend):
    with pytest.raises(InputError, match="top_p"):
        hf_backend.generate(PROMPTS, n=1, temperature=0.7, top_p=0.0, max_new_tokens=4, seed=0)
    with pytest.raises(InputError, match="n \\(samples per prompt\\)"):
        hf_backend.generate(PROMPTS, n=0, temperature=0.7, top_p=0.9, max_new_tokens=4, seed=0)


def test_load_backend_errors(tiny_model_dir, tmp_path):
    with pytest.raises(InputError, match="unknown generation backend 'nope'"):
        load_backend("nope", tiny_model_dir)
    with pytest.raises(InputError, match="model directory does not exist"):
        load_backend("hf", tmp_path / "missing")
    with pytest.raises(InputError, match=r"unknown option\(s\) \['tensor_parallel_size'\]"):
        load_backend("hf", tiny_model_dir, tensor_parallel_size=2)
    with pytest.raises(InputError, match="unknown dtype 'fp7'"):
        load_backend("hf", tiny_model_dir, dtype="fp7")


# ------------------------------------------------------------------------- helpers


class _BosTokenizer:
    """Minimal tokenizer that, like Llama 3's, prepends BOS (id 1) by default."""

    bos_token_id = 1

    def __call__(self, text, add_special_tokens=True):
        ids = [1] if text.startswith("<s>") else []
        ids += [ord(ch) for ch in text.removeprefix("<s>")]
        return {"input_ids": ([1] if add_special_tokens else []) + ids}


def test_encode_prompts_adds_bos_once():
    assert encode_prompts(_BosTokenizer(), ["ab", "<s>ab"]) == [[1, 97, 98], [1, 97, 98]]


def test_encode_prompts_leaves_tokenizers_without_default_bos_alone(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert encode_prompts(tokenizer, ["hello"]) == [tokenizer("hello", add_special_tokens=False)["input_ids"]]


def test_derive_seed_is_stable_and_separates_parts():
    assert derive_seed(1, 0) == derive_seed(1, 0)
    assert len({derive_seed(1, 0), derive_seed(0, 1), derive_seed(1, 1), derive_seed(10)}) == 4
    assert all(0 <= derive_seed(s, i) < 2**31 for s in range(3) for i in range(3))


# ------------------------------------------------------------------------- vllm (fake)


class FakeVLLM:
    """A stand-in for the ``vllm`` module that records what the backend passes to it.

    Its outputs have vLLM's shape: ``RequestOutput.outputs[j]`` with ``index``, ``text``,
    ``token_ids`` and ``finish_reason``, listed in reverse index order to check sorting.
    """

    def __init__(self, finish_reasons=("length", "stop")):
        self.module = types.ModuleType("vllm")
        self.module.LLM = self._make_llm
        self.module.SamplingParams = lambda **kwargs: types.SimpleNamespace(**kwargs)
        self.init_kwargs = None
        self.calls = []
        self.requests = 0
        self.finish_reasons = finish_reasons

    def _make_llm(self, **kwargs):
        self.init_kwargs = kwargs
        return types.SimpleNamespace(generate=self._generate)

    def _generate(self, prompts, sampling_params, use_tqdm=True):
        # vLLM takes one SamplingParams for all prompts or a list with one per prompt.
        self.calls.append({"prompts": prompts, "params": sampling_params, "use_tqdm": use_tqdm})
        per_prompt = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(prompts)
        assert len(per_prompt) == len(prompts)
        outputs = []
        for prompt, params in zip(prompts, per_prompt):
            samples = [types.SimpleNamespace(index=j, text=f"req{self.requests}-s{j}", token_ids=list(range(j + 2)),
                                             finish_reason=self.finish_reasons[j % len(self.finish_reasons)])
                       for j in reversed(range(params.n))]
            outputs.append(types.SimpleNamespace(prompt_token_ids=prompt["prompt_token_ids"], outputs=samples))
            self.requests += 1
        return outputs


@pytest.fixture
def fake_vllm(monkeypatch):
    fake = FakeVLLM()
    monkeypatch.setitem(sys.modules, "vllm", fake.module)
    return fake


def test_vllm_backend_engine_arguments(fake_vllm, tiny_model_dir):
    load_backend("vllm", tiny_model_dir, tensor_parallel_size=2, max_model_len=4096, seed=7,
                 dtype="bfloat16", gpu_memory_utilization=0.8, progress=False)
    assert fake_vllm.init_kwargs == {"model": str(tiny_model_dir), "tensor_parallel_size": 2, "max_model_len": 4096,
                                     "seed": 7, "dtype": "bfloat16", "gpu_memory_utilization": 0.8,
                                     "trust_remote_code": False}


def test_vllm_backend_one_call_per_batch_with_n_samples(fake_vllm, tiny_model_dir):
    backend = load_backend("vllm", tiny_model_dir, batch_size=2, progress=False)
    prompts = [f"problem {i}" for i in range(5)]
    results = backend.generate(prompts, n=4, temperature=0.7, top_p=0.95, max_new_tokens=64, seed=9)

    assert len(fake_vllm.calls) == 3  # batches of 2, 2, 1
    expected_ids = encode_prompts(backend.tokenizer, prompts)
    sent = [p["prompt_token_ids"] for call in fake_vllm.calls for p in call["prompts"]]
    assert sent == expected_ids
    # One SamplingParams per request, seeded from (seed, the prompt's key: here its position).
    sent_params = [vars(params) for call in fake_vllm.calls for params in call["params"]]
    assert sent_params == [{"n": 4, "temperature": 0.7, "top_p": 0.95, "max_tokens": 64, "seed": derive_seed(9, i)}
                           for i in range(5)]
    assert [[c.text for c in group] for group in results] == [[f"req{i}-s{j}" for j in range(4)] for i in range(5)]
    assert [c.n_tokens for c in results[0]] == [2, 3, 4, 5]  # len(token_ids)
    assert [c.finish_reason for c in results[0]] == ["length", "stop", "length", "stop"]


def test_vllm_request_seeds_follow_the_keys_not_the_batch(fake_vllm, tiny_model_dir):
    keys = ["p/3", "p/1", "p/7"]
    whole = load_backend("vllm", tiny_model_dir, progress=False)
    whole.generate(["a", "b", "c"], n=2, temperature=0.7, top_p=0.95, max_new_tokens=8, seed=4, keys=keys)
    split = load_backend("vllm", tiny_model_dir, batch_size=1, progress=False)
    split.generate(["c"], n=2, temperature=0.7, top_p=0.95, max_new_tokens=8, seed=4, keys=keys[2:])
    seeds = [[params.seed for params in call["params"]] for call in fake_vllm.calls]
    assert seeds == [[derive_seed(4, key) for key in keys], [derive_seed(4, "p/7")]]
    with pytest.raises(InputError, match="2 keys for 3 prompts"):
        whole.generate(["a", "b", "c"], n=2, temperature=0.7, top_p=0.95, max_new_tokens=8, seed=4, keys=keys[:2])


def test_vllm_backend_without_batch_size_sends_everything_at_once(fake_vllm, tiny_model_dir):
    backend = load_backend("vllm", tiny_model_dir, progress=False)
    backend.generate(["a", "b", "c"], n=2, temperature=0.7, top_p=0.95, max_new_tokens=8, seed=1)
    assert [len(call["prompts"]) for call in fake_vllm.calls] == [3]


def test_vllm_backend_rejects_unknown_finish_reason(monkeypatch, tiny_model_dir):
    fake = FakeVLLM(finish_reasons=("abort",))
    monkeypatch.setitem(sys.modules, "vllm", fake.module)
    backend = load_backend("vllm", tiny_model_dir, progress=False)
    with pytest.raises(RuntimeError, match="finish_reason='abort'"):
        backend.generate(["a"], n=1, temperature=0.7, top_p=0.95, max_new_tokens=8, seed=1)


def test_vllm_missing_gives_install_hint(monkeypatch, tiny_model_dir):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(InputError, match=r"pip install 'trajfusion\[vllm\]'"):
        load_backend("vllm", tiny_model_dir)
