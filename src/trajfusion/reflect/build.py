"""The stage's entry points: a verified table in, the micro-reflective rows and their summary out."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from trajfusion.contracts import REFLECTED_EXAMPLE, write_records
from trajfusion.fuse.inputs import FrameTexts, check_texts, read_verified, validate_verified
from trajfusion.fuse.render import split_or_fail
from trajfusion.io import InputError, artifact_metadata, sha256_file, write_json
from trajfusion.reflect import model, rule
from trajfusion.reflect.construct import REJECTIONS, Construction, Rejection, render
from trajfusion.reflect.selection import capped_order, plan_reflection
from trajfusion.reflect.settings import ReflectSettings
from trajfusion.reflect.steps import split_steps

log = logging.getLogger(__name__)


class Candidate:
    """One candidate problem's texts, split into steps."""

    def __init__(self, pid, problem, gold, incorrect_text, correct_text, plan_row, settings, source):
        self.pid, self.problem, self.gold = pid, problem, gold
        self.plan = plan_row
        self.incorrect = split_or_fail(incorrect_text, pid, int(plan_row["incorrect_index"]), source).reasoning
        self.correct = split_or_fail(correct_text, pid, int(plan_row["correct_index"]), source).reasoning
        self.incorrect_steps = split_steps(self.incorrect, settings.step_split)
        self.correct_steps = split_steps(self.correct, settings.step_split)


def load_candidates(plan: pd.DataFrame, meta: pd.DataFrame, texts, settings: ReflectSettings,
                    source: str) -> list[Candidate]:
    correct_pos, incorrect_pos = plan["correct_pos"].to_numpy(), plan["incorrect_pos"].to_numpy()
    problems = texts.take("problem", correct_pos)
    check_texts(problems, correct_pos, source, "problem", meta)
    golds = texts.take("gold", correct_pos) if settings.constructor == "model" else [None] * len(plan)
    positions = np.concatenate([correct_pos, incorrect_pos])
    responses = texts.take("response", positions)
    check_texts(responses, positions, source, "response", meta)
    n = len(plan)
    return [Candidate(pid, problems[i], golds[i], responses[n + i], responses[i], plan.iloc[i], settings, source)
            for i, pid in enumerate(plan.index.tolist())]


def construct_by_rule(candidates: list[Candidate]) -> dict[str, Construction | Rejection]:
    return {c.pid: rule.construct(c.incorrect_steps, c.incorrect, c.correct_steps, c.correct, c.plan["answer"],
                                  c.plan["incorrect_answer"]) for c in candidates}


def construct_by_model(candidates: list[Candidate], settings: ReflectSettings, model_dir,
                       prompt_path) -> dict[str, Construction | Rejection]:
    template = model.load_prompt(prompt_path)
    prompts = [model.fill_prompt(template, c.problem, c.incorrect_steps, c.correct, settings.analysis_tag,
                                 settings.reconstruction_tag) for c in candidates]
    replies = model.generate_replies(prompts, [c.pid for c in candidates], settings.generation_settings(), model_dir)
    return construct_from_replies(candidates, replies, settings)


def construct_from_replies(candidates: list[Candidate], replies: list[str],
                           settings: ReflectSettings) -> dict[str, Construction | Rejection]:
    """Parse each candidate's reply and verify its reconstruction against the gold."""
    tags = settings.analysis_tag, settings.reconstruction_tag
    parsed = {c.pid: model.parse_reply(model.answer_part(text), len(c.incorrect_steps), *tags)
              for c, text in zip(candidates, replies, strict=True)}
    ok = {pid: reply for pid, reply in parsed.items() if not isinstance(reply, Rejection)}
    judged = model.judge_reconstructions(ok, {c.pid: c.gold for c in candidates}, settings.workers, settings.timeout)
    out: dict[str, Construction | Rejection] = {}
    for c in candidates:
        reply = parsed[c.pid]
        verdict = judged.get(c.pid, reply)
        out[c.pid] = verdict if isinstance(verdict, Rejection) else \
            model.construction(reply, c.incorrect_steps, c.incorrect, verdict)
    return out


def reflect_rows(meta: pd.DataFrame, texts, settings: ReflectSettings, source: str = "<table>",
                 model_dir=None, prompt_path=None) -> tuple[list[dict], dict]:
    """The rows (sorted by problem_id) and the summary of one micro-reflective dataset."""
    plan, counts = plan_reflection(meta, settings)
    candidates = load_candidates(plan, meta, texts, settings, source)
    if settings.constructor == "rule":
        built = construct_by_rule(candidates)
    else:
        built = construct_by_model(candidates, settings, model_dir, prompt_path)
    constructed = [pid for pid in plan.index if isinstance(built[pid], Construction)]
    kept = set(constructed)
    if settings.max_constructions is not None:
        kept = set(capped_order(pd.Index(constructed), settings.seed)[:settings.max_constructions])
    rows = [_row(pid, c, built[pid], settings) for c in candidates if (pid := c.pid) in kept]
    rejected = [built[pid].reason for pid in plan.index if isinstance(built[pid], Rejection)]
    if not rows:
        raise InputError(f"{source}: no micro-reflective trajectory was constructed ({len(plan)} of "
                         f"{counts['problems']} problems in the band [{settings.band_low}, {settings.band_high}], "
                         f"{counts['with_correct_and_incorrect']} with correct and incorrect samples; rejections "
                         f"{_nonzero(rejected)}): an empty dataset cannot be trained on; widen the band "
                         f"(reflect.band_low, reflect.band_high) or sample more")
    summary = {**counts, "attempted": len(plan), "constructed": len(rows), "capped": len(constructed) - len(rows),
               "rejections": {reason: rejected.count(reason) for reason in REJECTIONS[settings.constructor]},
               **_summary_settings(settings)}
    return rows, summary


def _nonzero(reasons: list[str]) -> dict:
    return {reason: reasons.count(reason) for reason in dict.fromkeys(reasons)}


def _row(pid: str, candidate: Candidate, built: Construction, settings: ReflectSettings) -> dict:
    text, span = render(built, settings.analysis_tag, settings.reconstruction_tag)
    return {"problem_id": pid,
            "messages": [{"role": "user", "content": candidate.problem}, {"role": "assistant", "content": text}],
            "n_errors": 0, "error_indices": [], "correct_index": int(candidate.plan["correct_index"]), "alpha": None,
            "k_max": 0, "strategy": "highdiv", "seed": int(settings.seed), "error_spans": [], "success_span": None,
            "incorrect_index": int(candidate.plan["incorrect_index"]), "failure_step": built.failure_step,
            "n_steps": built.n_steps, "constructor": settings.constructor, "prefix_span": list(span),
            "loss_on_prefix": settings.loss_on_prefix}


def _summary_settings(settings: ReflectSettings) -> dict:
    return {"constructor": settings.constructor, "band": [settings.band_low, settings.band_high],
            "max_constructions": settings.max_constructions, "incorrect_rule": settings.incorrect_rule,
            "step_split": settings.step_split, "tags": [settings.analysis_tag, settings.reconstruction_tag],
            "loss_on_prefix": settings.loss_on_prefix, "seed": int(settings.seed),
            # The report's fusion lookup reads these: no incorrect trajectory is fused whole.
            "mean_errors": 0.0, "k_max": 0}


def reflect_frame(df: pd.DataFrame, settings: ReflectSettings, source: str = "<table>", model_dir=None,
                  prompt_path=None) -> tuple[list[dict], dict]:
    """``reflect_rows`` on an in-memory verified table."""
    return reflect_rows(validate_verified(df, source), FrameTexts(df, source), settings, source, model_dir,
                        prompt_path)


def reflect_file(input_path: str | Path, output: str | Path, summary_path: str | Path, settings: ReflectSettings,
                 model_dir=None, prompt_path=None) -> dict:
    """Write one micro-reflective dataset (JSONL) and its summary JSON; returns the summary."""
    meta, texts = read_verified(input_path)
    rows, summary = reflect_rows(meta, texts, settings, str(input_path), model_dir, prompt_path)
    write_records(rows, output, REFLECTED_EXAMPLE)
    inputs = {"input_sha256": sha256_file(input_path)}
    if settings.constructor == "model":
        inputs["prompt_sha256"] = sha256_file(prompt_path or model.default_prompt_path())
    provenance = {"command": "reflect", "settings": settings.provenance(), **inputs}
    write_json({**summary, **artifact_metadata(provenance)}, summary_path)
    log.info("%d of %d candidate problems constructed (%s constructor; rejections %s) -> %s", summary["constructed"],
             summary["candidates"], settings.constructor, summary["rejections"], output)
    return summary
