"""``trajfusion evaluate``: sample a model on a benchmark and write the verdict table.

For every benchmark problem the prompt is rendered with the model's template, N samples
are generated (paper Appendix B.4: N = 16 for AIME, 1 elsewhere), each response is judged
against the gold ``answer`` with ``trajfusion.verify.verify_frame`` under the chosen grader
(setting ``grader``: ``math_verify`` or ``qwen25_math``, the Qwen2.5-Math toolkit's rules) and
again under the other one, and its reflections and generic markers are counted. The output is
the verdict table (``trajfusion.contracts.VERDICTS``), sorted by ``(problem_id, sample_idx)``.

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
from trajfusion.phrases import default_phrases_path, load_phrases
from trajfusion.sample.backends import load_backend
from trajfusion.sample.partial import PartialBatches, job_fingerprint

log = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    settings = EvaluateSettings.from_args(args)
    phrases = load_phrases(args.phrases).error_recognition
    bench = read_benchmark(args.benchmark)
    # The generated batches survive a kill (trajfusion.sample.partial); judging is redone.
    partial = PartialBatches(args.output, job_fingerprint(settings.provenance(), [args.benchmark], args.model))
    backend = load_backend(settings.backend, args.model, **settings.backend_options())
    try:
        samples = generate_samples(backend, bench, settings.template, settings.samples, settings.temperature,
                                   settings.top_p, settings.max_new_tokens, settings.seed, partial)
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()
    verdicts = judge(samples, phrases, settings.workers, settings.timeout, source=str(args.benchmark),
                     grader=settings.grader)
    provenance = {**settings.provenance(), "benchmark_sha256": sha256_file(args.benchmark),
                  "phrases_sha256": sha256_file(args.phrases or default_phrases_path())}
    write(verdicts, args.output, VERDICTS, metadata={**artifact_metadata(provenance), "settings": provenance})
    partial.remove()
    accuracy = verdicts.loc[verdicts["sample_idx"] == 0, "correct"].mean()
    log.info("%s: %d problems, pass@1 %.4f -> %s", args.benchmark, len(bench), accuracy, args.output)
    return 0


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="generate N samples per benchmark problem and verify them",
                       description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model directory (safetensors + tokenizer; for the openai "
                   "backend its tokenizer, and the served model name unless --served-model)")
    p.add_argument("--benchmark", required=True, help="benchmark problem table (.parquet)")
    p.add_argument("--phrases", default=None, help="phrase file whose error_recognition phrases count as reflections "
                   "(default: resources/phrases.yaml)")
    p.add_argument("--output", required=True, help="verdict table (.parquet)")
    EvaluateSettings.add_arguments(p)
    p.set_defaults(func=run)
