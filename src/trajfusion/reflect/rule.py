"""The rule-based constructor (no model): for tests and CPU runs whose model cannot follow the
constructor prompt.

Rule (this project's; the TAPO summary does not say how the failure point is found):

1. *Failure step* f: the first step of y- with a result (a number right after ``=``,
   ``trajfusion.reflect.steps.results``) that y+ never states (not among all numbers of y+'s
   reasoning and its answer); failing that, the first step stating y-'s final answer when y+
   never states that number. Neither: rejected ``no_contradiction``.
2. *Matching point* m of y+: the last step of y+ whose results are all stated in the kept prefix
   (y- steps 1..f-1) and which has at least one result; 0 when there is none.
3. *Continuation*: y+'s steps m+1.. in order; none left: rejected ``empty_continuation``.
4. *Diagnosis*: a template naming step f, the contradicting number and the kept steps.

The text then ends in y+'s (verified) final answer.
"""

from __future__ import annotations

from fractions import Fraction

from trajfusion.reflect.construct import Construction, Rejection, render
from trajfusion.reflect.steps import Step, as_number, numbers, results, split_steps
from trajfusion.reflection_tags import ANALYSIS_TAG, RECONSTRUCTION_TAG
from trajfusion.trajectory import split_trajectory

DIAGNOSIS = ("Step {step} is wrong: it arrives at {value}, which does not follow from the problem. {kept} "
             "The reasoning is redone from there.")


def _show(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def failure_point(incorrect: list[Step], known: set[Fraction], wrong_answer: str | None) -> tuple[int, Fraction] | None:
    """(1-based step, the contradicting number) of the first contradicting step of y-, or None."""
    for i, step in enumerate(incorrect, start=1):
        for value in results(step.text):
            if value not in known:
                return i, value
    wrong = as_number(wrong_answer) if wrong_answer else None
    if wrong is not None and wrong not in known:
        for i, step in enumerate(incorrect, start=1):
            if wrong in numbers(step.text):
                return i, wrong
    return None


def matching_point(correct: list[Step], kept: set[Fraction]) -> int:
    """The last step of y+ (1-based) whose results are all in ``kept``; 0 when none."""
    last = 0
    for j, step in enumerate(correct, start=1):
        found = results(step.text)
        if found and all(value in kept for value in found):
            last = j
    return last


def construct(incorrect: list[Step], incorrect_reasoning: str, correct: list[Step], correct_reasoning: str,
              answer: str, wrong_answer: str | None) -> Construction | Rejection:
    known = numbers(correct_reasoning) | ({n} if (n := as_number(answer)) is not None else set())
    found = failure_point(incorrect, known, wrong_answer)
    if found is None:
        return Rejection("no_contradiction")
    step, value = found
    kept_steps = incorrect[:step - 1]
    prefix = incorrect_reasoning[kept_steps[0].start:kept_steps[-1].end] if kept_steps else ""
    kept_numbers = set().union(*(numbers(s.text) for s in kept_steps)) if kept_steps else set()
    continuation = correct[matching_point(correct, kept_numbers):]
    if not continuation:
        return Rejection("empty_continuation")
    kept = f"Steps 1-{step - 1} are correct and kept." if step > 2 else \
        ("Step 1 is correct and kept." if step == 2 else "No earlier step is kept.")
    analysis = DIAGNOSIS.format(step=step, value=_show(value), kept=kept)
    reconstruction = correct_reasoning[continuation[0].start:continuation[-1].end]
    return Construction(step, len(incorrect), prefix, analysis, reconstruction, answer)


def construct_text(incorrect_text: str, correct_text: str, step_split: str = "lines",
                   analysis_tag: str = ANALYSIS_TAG, reconstruction_tag: str = RECONSTRUCTION_TAG) -> str | None:
    """The rule constructor on two raw completions (GRPO's rollouts): the rendered trajectory,
    or None when it rejects them, a completion cannot be split, or y+ has no answer."""
    from trajfusion.verify import extract_answer

    try:
        incorrect, correct = split_trajectory(incorrect_text).reasoning, split_trajectory(correct_text).reasoning
    except ValueError:
        return None
    answer = extract_answer(correct_text)
    if answer is None:
        return None
    built = construct(split_steps(incorrect, step_split), incorrect, split_steps(correct, step_split), correct,
                      answer, extract_answer(incorrect_text))
    return None if isinstance(built, Rejection) else render(built, analysis_tag, reconstruction_tag).text


def micro_reflective_constructor(problem: str, incorrect_text: str, correct_text: str) -> str | None:
    """``construct_text`` with the default settings, in GRPO's constructor signature
    (``trajfusion.rl.construct``: ``--constructor reflect``)."""
    del problem  # the rule needs only the two trajectories
    return construct_text(incorrect_text, correct_text)
