"""The model-based constructor: a generation model (the teacher by default) answers the prompt
template (``resources/reflect_prompt.yaml``) in two tagged sections; the answer is parsed and
checked here, and the reconstruction's final answer is judged by the project's verifier.

Parsing (``parse_reply``, on the reply after its ``</think>`` when it has one), first failure
wins: each of the four tags must occur exactly once
(``missing_tags``, ``duplicate_tags``), in the order open/close analysis, open/close
reconstruction (else ``nested_tags``); the analysis must be non-empty (``empty_analysis``) and
name a step as ``Step N`` (the first such mention counts; ``no_step``) with 1 <= N <= the number
of steps of y- (``step_out_of_range``; a number of more than 6 digits is out of range without
being converted); the reconstruction must be non-empty (``empty_reconstruction``). The
reconstruction is then verified against the gold with ``trajfusion.verify.verify_frame`` (the
watchdog pool, so a hanging comparison is a ``verify_timeout``; lenient extraction, output
filters off, as evaluation): no answer, wrong, timeout and error are each a rejection.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import yaml

from trajfusion.io import InputError
from trajfusion.reflect.construct import Construction, Rejection
from trajfusion.reflect.steps import Step, numbered
from trajfusion.trajectory import THINK_CLOSE, split_trajectory

PROMPT_RESOURCE = "reflect_prompt.yaml"
_STEP_RE = re.compile(r"\bstep\s*(\d+)", re.IGNORECASE)
_MAX_STEP_DIGITS = 6


def default_prompt_path() -> Path:
    return Path(str(resources.files("trajfusion") / "resources" / PROMPT_RESOURCE))


def load_prompt(path: str | Path | None = None) -> str:
    path = Path(path) if path else default_prompt_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read the constructor prompt: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("prompt"), str) or not data["prompt"].strip():
        raise InputError(f"{path}: field 'prompt': expected a non-empty string")
    return data["prompt"]


def fill_prompt(template: str, problem: str, incorrect: list[Step], reference: str, analysis_tag: str,
                reconstruction_tag: str) -> str:
    return template.format(problem=problem, steps=numbered(incorrect), n_steps=len(incorrect), reference=reference,
                           analysis_tag=analysis_tag, reconstruction_tag=reconstruction_tag)


class Reply(NamedTuple):
    step: int
    analysis: str
    reconstruction: str


def _section(text: str, tag: str) -> tuple[int, int] | str:
    """(content start, content end) of the one ``<tag>...</tag>``, or a rejection reason."""
    opens, closes = text.count(f"<{tag}>"), text.count(f"</{tag}>")
    if opens == 0 or closes == 0:
        return "missing_tags"
    if opens > 1 or closes > 1:
        return "duplicate_tags"
    start, end = text.index(f"<{tag}>") + len(tag) + 2, text.index(f"</{tag}>")
    return (start, end) if start <= end else "nested_tags"


def answer_part(text: str) -> str:
    """A long-form model's reply without its think block (the tags are looked for after it)."""
    try:
        final = split_trajectory(text).final
    except ValueError:  # an unclosed think block: no answer part, the tags will be missing
        return ""
    return final if THINK_CLOSE in text else text


def parse_reply(text: str, n_steps: int, analysis_tag: str, reconstruction_tag: str) -> Reply | Rejection:
    sections = [_section(text, tag) for tag in (analysis_tag, reconstruction_tag)]
    for reason in ("missing_tags", "duplicate_tags", "nested_tags"):
        if reason in sections:
            return Rejection(reason)
    (a_start, a_end), (r_start, r_end) = sections
    if a_end + len(f"</{analysis_tag}>") > r_start - len(f"<{reconstruction_tag}>"):  # not analysis, then the other
        return Rejection("nested_tags")
    analysis, reconstruction = text[a_start:a_end].strip(), text[r_start:r_end].strip()
    if not analysis:
        return Rejection("empty_analysis")
    found = _STEP_RE.search(analysis)
    if found is None:
        return Rejection("no_step")
    digits = found.group(1)
    if len(digits.lstrip("0")) > _MAX_STEP_DIGITS or not 1 <= int(digits) <= n_steps:
        return Rejection("step_out_of_range")
    if not reconstruction:
        return Rejection("empty_reconstruction")
    return Reply(int(digits), analysis, reconstruction)


def generate_replies(prompts: list[str], keys: list[str], generation, model_dir: str | Path) -> list[str]:
    """One reply per filled prompt, from the generation backend sampling uses."""
    from trajfusion.sample.backends import load_backend
    from trajfusion.templates import load_template

    if not prompts:
        return []
    template = load_template(generation.template)
    backend = load_backend(generation.backend, model_dir, **generation.backend_options())
    try:
        rendered = [template.render_prompt(prompt, backend.tokenizer) for prompt in prompts]
        groups = backend.generate(rendered, n=1, temperature=generation.temperature, top_p=generation.top_p,
                                  max_new_tokens=generation.max_new_tokens, seed=generation.seed, keys=keys)
    finally:
        backend.close()
    return [group[0].text for group in groups]


_STATUS_REJECTION = {"timeout": "verify_timeout", "error": "verify_error"}


def judge_reconstructions(replies: dict[str, Reply], golds: dict[str, str], workers: int,
                          timeout: float) -> dict[str, str | Rejection]:
    """Per problem: the reconstruction's verified final answer, or the rejection."""
    from trajfusion.verify import verify_frame

    if not replies:
        return {}
    frame = pd.DataFrame({"problem_id": list(replies), "gold": [golds[p] for p in replies],
                          "response": [r.reconstruction for r in replies.values()]})
    verdicts = verify_frame(frame, workers=workers, timeout=timeout, filters={"enabled": []},
                            answer_format="lenient", source="reconstructions")
    out: dict[str, str | Rejection] = {}
    for pid, status, correct, answer in zip(verdicts["problem_id"], verdicts["status"], verdicts["correct"],
                                            verdicts["answer"]):
        if status == "ok":
            out[pid] = answer if correct else Rejection("wrong_answer")
        else:
            out[pid] = Rejection(_STATUS_REJECTION.get(status, "no_answer"))
    return out


def construction(reply: Reply, incorrect: list[Step], incorrect_reasoning: str, answer: str) -> Construction:
    kept = incorrect[:reply.step - 1]
    prefix = incorrect_reasoning[kept[0].start:kept[-1].end] if kept else ""
    return Construction(reply.step, len(incorrect), prefix, reply.analysis, reply.reconstruction, answer)
