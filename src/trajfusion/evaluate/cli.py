"""``trajfusion evaluate``: sample a model on a benchmark and write the verdict table.

For every benchmark problem the prompt is rendered with the model's template, N samples
are generated (paper Appendix B.4: N = 16 for AIME, 1 elsewhere), each response is judged
against the gold ``answer`` with ``trajfusion.verify.verify_frame`` and its reflections are
counted. The output has the contract columns ``problem_id, sample_idx, response, n_tokens,
finish_reason, gold, answer, correct, status, n_reflections``, sorted by
``(problem_id, sample_idx)``.

Evaluation disables the output filters (truncation, unclosed think block, repetition,
language switch, too little reasoning) and extracts answers with the lenient rule whatever the
teacher's ``answer_format``: every response is judged on its extracted answer, as in the
Qwen2.5-Math evaluation toolkit the paper uses. A response without an extractable answer is
incorrect (the verifier marks it ``filtered:no_answer``).

Reflections are counted as ``trajfusion.evaluate.reflections`` describes. The settings
(``trajfusion.evaluate.settings``: flags or ``--settings JSON``) extend the sampling stage's
generation settings (``trajfusion.sample.backends.options``).
"""

from __future__ import annotations

import argparse
import logging

from trajfusion.contracts import VERDICTS, write
from trajfusion.evaluate.samples import generate_samples, read_benchmark
from trajfusion.evaluate.scoring import judge
from trajfusion.evaluate.settings import EvaluateSettings
from trajfusion.io import artifact_metadata, sha256_file
from trajfusion.phrases import all_phrases, default_phrases_path
from trajfusion.sample.backends import load_backend

log = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    settings = EvaluateSettings.from_args(args)
    phrases = tuple(all_phrases(args.phrases))
    bench = read_benchmark(args.benchmark)
    backend = load_backend(settings.backend, args.model, **settings.backend_options())
    try:
        samples = generate_samples(backend, bench, settings.template, settings.samples, settings.temperature,
                                   settings.top_p, settings.max_new_tokens, settings.seed)
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()
    verdicts = judge(samples, phrases, settings.workers, settings.timeout, source=str(args.benchmark))
    provenance = {**settings.provenance(), "benchmark_sha256": sha256_file(args.benchmark),
                  "phrases_sha256": sha256_file(args.phrases or default_phrases_path())}
    write(verdicts, args.output, VERDICTS, metadata={**artifact_metadata(provenance), "settings": provenance})
    accuracy = verdicts.loc[verdicts["sample_idx"] == 0, "correct"].mean()
    log.info("%s: %d problems, pass@1 %.4f -> %s", args.benchmark, len(bench), accuracy, args.output)
    return 0


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="generate N samples per benchmark problem and verify them",
                       description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model directory (safetensors + tokenizer)")
    p.add_argument("--benchmark", required=True, help="benchmark problem table (.parquet)")
    p.add_argument("--phrases", default=None, help="reflection phrase file (default: resources/phrases.yaml)")
    p.add_argument("--output", required=True, help="verdict table (.parquet)")
    EvaluateSettings.add_arguments(p)
    p.set_defaults(func=run)
