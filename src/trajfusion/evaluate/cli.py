"""``trajfusion evaluate``: sample a model on a benchmark and write the verdict table.

For every benchmark problem the prompt is rendered with the model's template, N samples
are generated (paper Appendix B.4: N = 16 for AIME, 1 elsewhere), each response is judged
against the gold ``answer`` with ``trajfusion.verify.verify_frame`` and its reflections are
counted. The output has the contract columns ``problem_id, sample_idx, response, n_tokens,
finish_reason, gold, answer, correct, status, n_reflections``, sorted by
``(problem_id, sample_idx)``.

Evaluation disables the output filters (truncation, repetition, language switch): every
response is judged on its extracted answer, as in the Qwen2.5-Math evaluation toolkit the
paper uses. A response without an extractable answer is incorrect (the verifier marks it
``filtered:no_answer``).

Reflections are counted as ``trajfusion.evaluate.reflections`` describes. The generation
flags are the sampling stage's (``trajfusion.sample.backends.options``).
"""

from __future__ import annotations

import argparse
import logging

from trajfusion.evaluate.samples import generate_samples, read_benchmark
from trajfusion.evaluate.scoring import judge
from trajfusion.io import InputError, artifact_metadata, sha256_file, write_parquet
from trajfusion.phrases import all_phrases, default_phrases_path
from trajfusion.sample.backends import BACKEND_NAMES, load_backend
from trajfusion.sample.backends.options import add_backend_arguments, backend_options

log = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    if args.samples < 1:
        raise InputError(f"--samples must be >= 1, got {args.samples}")
    phrases = tuple(all_phrases(args.phrases))
    bench = read_benchmark(args.benchmark)
    backend = load_backend(args.backend, args.model, **backend_options(args))
    try:
        samples = generate_samples(backend, bench, args.template, args.samples, args.temperature, args.top_p,
                                   args.max_new_tokens, args.seed)
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()
    verdicts = judge(samples, phrases, args.workers, args.timeout, source=str(args.benchmark))
    settings = {key: value for key, value in sorted(vars(args).items())
                if key not in ("func", "output", "verbose", "command")}
    settings["benchmark_sha256"] = sha256_file(args.benchmark)
    settings["phrases_sha256"] = sha256_file(args.phrases or default_phrases_path())
    write_parquet(verdicts, args.output, metadata={**artifact_metadata(settings), "settings": settings})
    accuracy = verdicts.loc[verdicts["sample_idx"] == 0, "correct"].mean()
    log.info("%s: %d problems, pass@1 %.4f -> %s", args.benchmark, len(bench), accuracy, args.output)
    return 0


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="generate N samples per benchmark problem and verify them",
                       description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model directory (safetensors + tokenizer)")
    p.add_argument("--benchmark", required=True, help="benchmark problem table (.parquet)")
    p.add_argument("--template", required=True, help="prompt template name (resources/templates.yaml)")
    p.add_argument("--backend", choices=BACKEND_NAMES, default="hf")
    p.add_argument("--samples", type=int, required=True, help="samples per problem (16 for AIME, else 1)")
    p.add_argument("--temperature", type=float, required=True)
    p.add_argument("--top-p", type=float, required=True)
    p.add_argument("--max-new-tokens", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    add_backend_arguments(p)
    p.add_argument("--workers", type=int, default=1, help="verifier processes (0: verify in this process)")
    p.add_argument("--timeout", type=float, default=5.0, help="verifier timeout per response, seconds")
    p.add_argument("--phrases", default=None, help="reflection phrase file (default: resources/phrases.yaml)")
    p.add_argument("--output", required=True, help="verdict table (.parquet)")
    p.set_defaults(func=run)
