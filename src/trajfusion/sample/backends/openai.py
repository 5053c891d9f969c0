"""The openai backend: generation by a running OpenAI-compatible server (vLLM, SGLang, llama.cpp,
``transformers serve``, ...) through its completions endpoint, ``BASE_URL/completions``.

Prompts are rendered by this project's templates with the tokenizer of the local model
directory (``--model``: the tokenizer and chat template of the model the server serves) and
sent as text (``prompt_format: text``) or as the token ids the hf and vllm backends generate
from (``tokens``; vLLM, SGLang and llama.cpp accept them, ``transformers serve`` does not).

BOS (assumption, documented in the README): servers tokenize a text prompt with the
tokenizer's default special tokens (vLLM, SGLang and ``transformers serve`` call the tokenizer
with them; llama.cpp adds BOS when the model's metadata says so). A rendered prompt that already
starts with the BOS text (e.g. Llama 3's ``<|begin_of_text|>``) would then start with two BOS
tokens, which the other backends avoid (``trajfusion.templates.encode_prompt``). So the text
sent is the rendered prompt without its leading BOS text when the tokenizer adds BOS itself: the
server's tokens are then the other backends' ids. The backend checks this with the local
tokenizer and warns about prompts for which it does not hold.

Seeds: each request carries a ``seed``: with one request per prompt (``n`` samples, the
default), the prompt's seed (``derive_seed(seed, problem_id)``, as the vllm backend seeds a
request); with ``per_sample_requests``, ``derive_seed(prompt seed, sample index)`` for each
sample. A sample is thus a function of (seed, problem_id, sample index), the model, the server
and the sampling settings, not of the sharding or batching, where the server honours ``seed``
per request (vLLM, SGLang, llama.cpp). ``transformers serve`` ignores ``n`` and seeds its
process-wide torch RNG when a request arrives: its samples are reproducible with
``concurrency: 1`` only. A greedy request (temperature 0) is sent once and its completion
repeated ``n`` times, as the hf backend does.

Token counts: ``usage.completion_tokens`` of a one-completion response (exact, counted by the
server, stop token included). The API has no per-choice count, so for a response with several
completions the text is re-tokenized with the local tokenizer, plus the stop token for
``finish_reason: stop``, capped at ``max_new_tokens`` (approximate: a re-tokenization can differ
from the generated ids where tokens merge).

Requests run ``concurrency`` at a time; a connection error, a timeout, HTTP 429 or a 5xx is
retried ``max_retries`` times after ``retry_backoff`` seconds doubled each time (at most
``MAX_DELAY``, longer when the server's ``Retry-After`` asks for it); another 4xx is not retried.
The last failure raises ``ServerError`` naming the URL, the status and an excerpt of the body.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from concurrent.futures import Future

from trajfusion.io import InputError
from trajfusion.sample.backends import FINISH_REASONS, BatchedBackend, Completion, derive_seed
from trajfusion.sample.backends.options import BACKEND_DEFAULTS, PROMPT_FORMATS
from trajfusion.templates import default_prefix_ids, encode_prompt

log = logging.getLogger(__name__)
_DEFAULTS = BACKEND_DEFAULTS["openai"]
MAX_DELAY = 60.0  # seconds between two tries at most (unless the server's Retry-After asks for more)
EXCERPT = 300  # characters of a response body quoted in an error


class ServerError(OSError):
    """The server could not be reached, or refused or garbled a request (one line: URL, status, body)."""


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT else flat[:EXCERPT] + "..."


def server_text(tokenizer, prompt: str, prefix_ids: list[int]) -> str:
    """The text a server tokenizing with the tokenizer's default special tokens turns into
    ``encode_prompt``'s ids: ``prompt`` without its leading BOS text when the tokenizer adds BOS."""
    if prefix_ids:
        lead = tokenizer.decode(prefix_ids)
        if lead and prompt.startswith(lead):
            return prompt[len(lead):]
    return prompt


class OpenAIBackend(BatchedBackend):
    def __init__(self, model_dir: str, batch_size: int = _DEFAULTS["batch_size"],
                 base_url: str = _DEFAULTS["base_url"], served_model: str | None = _DEFAULTS["served_model"],
                 api_key_env: str | None = _DEFAULTS["api_key_env"], concurrency: int = _DEFAULTS["concurrency"],
                 max_retries: int = _DEFAULTS["max_retries"], retry_backoff: float = _DEFAULTS["retry_backoff"],
                 request_timeout: float = _DEFAULTS["request_timeout"],
                 prompt_format: str = _DEFAULTS["prompt_format"],
                 per_sample_requests: bool = _DEFAULTS["per_sample_requests"], trust_remote_code: bool = False,
                 progress: bool = True):
        import requests
        from transformers import AutoTokenizer

        _check_options(batch_size, concurrency, max_retries, retry_backoff, request_timeout, prompt_format)
        self._requests = requests
        self.batch_size = batch_size
        self.progress = progress
        self.url = base_url.rstrip("/") + "/completions"
        self.served_model = served_model or str(model_dir)
        self.headers = _auth_headers(api_key_env)
        self.concurrency, self.max_retries = concurrency, max_retries
        self.retry_backoff, self.request_timeout = retry_backoff, request_timeout
        self.prompt_format, self.per_sample_requests = prompt_format, per_sample_requests
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
        self._local = threading.local()
        self._prompt_lengths: dict[str, int] = {}  # text sent -> its hf/vllm prompt ids' length
        self._length_warned = False
        log.info("openai backend: %s, model %r, %d request(s) at once", self.url, self.served_model, concurrency)

    # ---- prompts --------------------------------------------------------------------

    def encode(self, prompts: list[str]) -> list:
        """Token ids (``prompt_format: tokens``) or the text the server tokenizes to them."""
        prefix = default_prefix_ids(self.tokenizer)
        ids = [encode_prompt(self.tokenizer, prompt, prefix) for prompt in prompts]
        if self.prompt_format == "tokens":
            return ids
        texts = [server_text(self.tokenizer, prompt, prefix) for prompt in prompts]
        self._prompt_lengths.update(zip(texts, map(len, ids), strict=True))
        differ = sum(self.tokenizer(text)["input_ids"] != want for text, want in zip(texts, ids, strict=True))
        if differ:
            log.warning("%d of %d prompts: the server's tokenization of the text sent (default special tokens) "
                        "differs from the hf/vllm backends' prompt ids; prompt_format: tokens sends the ids",
                        differ, len(prompts))
        return texts

    # ---- generation -----------------------------------------------------------------

    def _generate_batch(self, batch: list, n: int, temperature: float, top_p: float, max_new_tokens: int,
                        seeds: list[int]) -> list[list[Completion]]:
        return next(self._generate_batches([(batch, seeds)], n, temperature, top_p, max_new_tokens))

    def _generate_batches(self, todo, n, temperature, top_p, max_new_tokens):
        """All requests of ``todo`` go to a pool of ``concurrency`` workers at once; each batch's
        completions are returned as soon as it and the batches before it are complete."""
        pool = _Pool(self._post, self.concurrency)
        try:
            plans = [[self._submit(pool, prompt, seed, n, temperature, top_p, max_new_tokens)
                      for prompt, seed in zip(batch, seeds, strict=True)] for batch, seeds in todo]
            for plan in plans:
                yield [self._collect(futures, repeat, max_new_tokens) for futures, repeat in plan]
        finally:
            pool.close()

    def _submit(self, pool, prompt, seed: int, n: int, temperature: float, top_p: float, max_new_tokens: int):
        """The futures of one prompt's requests and how often to repeat their completions."""
        body = {"model": self.served_model, "prompt": prompt, "max_tokens": max_new_tokens,
                "temperature": temperature, "top_p": top_p}
        if temperature == 0:  # greedy: n equal completions, decoded once
            return [pool.submit({**body, "seed": seed})], n
        if self.per_sample_requests:
            return [pool.submit({**body, "seed": derive_seed(seed, index)}) for index in range(n)], 1
        return [pool.submit({**body, "seed": seed, **({"n": n} if n > 1 else {})})], 1

    def _collect(self, futures: list[Future], repeat: int, max_new_tokens: int) -> list[Completion]:
        completions = [c for future in futures for c in self._completions(*future.result(), max_new_tokens)]
        return [c for c in completions for _ in range(repeat)]

    def _completions(self, body: dict, answer: dict, max_new_tokens: int) -> list[Completion]:
        """The completions of one response, checked: one per requested sample, known finish reasons."""
        choices = answer.get("choices") if isinstance(answer, dict) else None
        if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
            raise ServerError(f"{self.url}: response without a list of choices: {_excerpt(str(answer))}")
        wanted = body.get("n", 1)
        if len(choices) != wanted:
            hint = "the server ignores n; set per_sample_requests: true" if len(choices) == 1 else "expected n"
            raise ServerError(f"{self.url}: {len(choices)} completion(s) for a request with n={wanted}: {hint}")
        usage = answer.get("usage") or {}
        self._check_prompt_tokens(body["prompt"], usage.get("prompt_tokens"))
        exact = usage.get("completion_tokens") if wanted == 1 else None
        out = []
        for choice in sorted(choices, key=lambda c: c.get("index", 0)):
            reason, text = choice.get("finish_reason"), choice.get("text")
            if reason not in FINISH_REASONS or not isinstance(text, str):
                raise ServerError(f"{self.url}: a completion with finish_reason={reason!r} and text of type "
                                  f"{type(text).__name__}; expected one of {list(FINISH_REASONS)} and a string")
            tokens = exact if isinstance(exact, int) else self._count(text, reason, max_new_tokens)
            out.append(Completion(text=text, n_tokens=tokens, finish_reason=reason))
        return out

    def _check_prompt_tokens(self, prompt, read) -> None:
        """Warn (once) when the server's ``usage.prompt_tokens`` says it read a prompt as other
        tokens than the hf/vllm backends' ids (a doubled BOS, another tokenizer)."""
        want = len(prompt) if isinstance(prompt, list) else self._prompt_lengths.get(prompt)
        if isinstance(read, int) and want is not None and read != want and not self._length_warned:
            self._length_warned = True
            log.warning("%s: the server read a prompt as %d tokens where the hf/vllm backends' prompt ids have %d: "
                        "does it add a BOS the text already has, or serve another tokenizer than %s?", self.url,
                        read, want, self.served_model)

    def _count(self, text: str, reason: str, max_new_tokens: int) -> int:
        counted = len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) + (reason == "stop")
        return min(counted, max_new_tokens)

    # ---- HTTP -----------------------------------------------------------------------

    def _session(self):
        if not hasattr(self._local, "session"):
            self._local.session = self._requests.Session()
        return self._local.session

    def _post(self, body: dict) -> tuple[dict, dict]:
        """(body, the server's JSON answer), retried as the module docstring says."""
        transient = (self._requests.ConnectionError, self._requests.Timeout,
                     self._requests.exceptions.ChunkedEncodingError)
        for attempt in range(self.max_retries + 1):
            wait = None
            try:
                response = self._session().post(self.url, json=body, headers=self.headers,
                                                timeout=self.request_timeout)
            except transient as exc:
                problem = _describe(exc)
            else:
                if response.status_code == 200:
                    return body, self._json(response)
                problem = f"HTTP {response.status_code}: {_excerpt(response.text)}"
                if not _retryable(response.status_code):
                    raise ServerError(f"{self.url}: {problem} (not retried)")
                wait = _retry_after(response)
            if attempt < self.max_retries:
                delay = max(min(MAX_DELAY, self.retry_backoff * 2 ** attempt), wait or 0)
                log.warning("%s: %s; retry %d/%d in %.1f s", self.url, problem, attempt + 1, self.max_retries, delay)
                time.sleep(delay)
        raise ServerError(f"{self.url}: {problem} (after {self.max_retries + 1} attempt(s))")

    def _json(self, response) -> dict:
        try:
            return response.json()
        except ValueError:
            raise ServerError(f"{self.url}: HTTP 200 with a body that is not JSON: {_excerpt(response.text)}") from None

    def close(self) -> None:
        super().close()


def _describe(exc: Exception) -> str:
    """A requests error by its root cause (urllib3's "Max retries exceeded" wrapper left out)."""
    inner = exc.args[0] if exc.args else exc
    return f"{type(exc).__name__} ({_excerpt(str(getattr(inner, 'reason', inner)))})"


def _retry_after(response) -> float | None:
    """The server's Retry-After in seconds (the numeric form), capped at 10 * MAX_DELAY."""
    try:
        return min(float(response.headers.get("Retry-After", "")), 10 * MAX_DELAY)
    except ValueError:
        return None


def _auth_headers(api_key_env: str | None) -> dict:
    if api_key_env is None:
        return {}
    key = os.environ.get(api_key_env)
    if not key:
        raise InputError(f"--api-key-env: environment variable {api_key_env} is not set or empty")
    return {"Authorization": f"Bearer {key}"}


def _check_options(batch_size, concurrency, max_retries, retry_backoff, request_timeout, prompt_format) -> None:
    for name, value, low in (("batch_size", batch_size, 1), ("concurrency", concurrency, 1),
                             ("max_retries", max_retries, 0), ("retry_backoff", retry_backoff, 0)):
        if value < low:
            raise InputError(f"{name} must be >= {low}, got {value}")
    if request_timeout <= 0:
        raise InputError(f"request_timeout must be positive, got {request_timeout}")
    if prompt_format not in PROMPT_FORMATS:
        raise InputError(f"prompt_format must be one of {list(PROMPT_FORMATS)}, got {prompt_format!r}")


class _Pool:
    """``size`` daemon threads calling ``work`` on the submitted items in submission order.
    Daemons, so that a failed job exits at once instead of waiting for requests in flight."""

    def __init__(self, work, size: int):
        self._work = work
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._futures: list[Future] = []
        self._threads = [threading.Thread(target=self._run, daemon=True, name=f"openai-request-{i}")
                         for i in range(size)]
        for thread in self._threads:
            thread.start()

    def submit(self, item) -> Future:
        future: Future = Future()
        self._futures.append(future)
        self._queue.put((future, item))
        return future

    def _run(self) -> None:
        while (task := self._queue.get()) is not None:
            future, item = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._work(item))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                future.set_exception(exc)

    def close(self) -> None:
        """Cancel what has not started; the threads end once the requests in flight return."""
        for future in self._futures:
            future.cancel()
        for _ in self._threads:
            self._queue.put(None)
