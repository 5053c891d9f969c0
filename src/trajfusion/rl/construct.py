"""Constructors of micro-reflective trajectories for TAPO-GRPO, and which rollouts they get.

A constructor is any callable ``(problem, incorrect_text, correct_text) -> str | None``: the
full completion text of the constructed trajectory (what the policy is trained to have
written), or None to build nothing for this group. ``get_constructor(name)`` resolves the
``--constructor`` setting:

* ``prefix_then_reference`` (this module): a deterministic stand-in for tests and CPU runs,
  named for what it does: the first half of the incorrect rollout's lines, a fixed
  ``<analysis>`` diagnosis, then the correct rollout inside ``<reconstruction>`` tags. It does
  not locate the failure point.
* ``reflect``: the rule-based micro-reflective constructor of the reflect stage
  (``trajfusion.reflect``, issue 17 item 1), imported lazily; it must export
  ``REFLECT_CONSTRUCTOR`` (below) with the signature above. This is where the real
  construction plugs in.
* ``policy``: the policy itself as constructor (TAPO's setting at GPU scale): a callable that
  prompts the current model with the problem, the numbered steps of the incorrect rollout and
  the correct one, and parses its tagged answer. Not built here: it needs the reflect stage's
  prompt and parser and GPU generation; ``TAPOGRPOTrainer(constructor=...)`` accepts any such
  callable, so it plugs in there.

Which rollouts (assumptions, settings ``incorrect_choice``/``correct_choice``): ``first`` (the
lowest rollout index) or ``shortest`` (fewest characters, ties to the lower index).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

from trajfusion.io import InputError
from trajfusion.reflection_tags import ANALYSIS_TAG, RECONSTRUCTION_TAG

Constructor = Callable[[str, str, str], "str | None"]

CONSTRUCTORS = ("prefix_then_reference", "reflect", "policy")
ROLLOUT_CHOICES = ("first", "shortest")
REFLECT_MODULE = "trajfusion.reflect"
REFLECT_CONSTRUCTOR = "micro_reflective_constructor"

# Assumption: the diagnosis text (tag names: trajfusion.reflection_tags).
FIXED_DIAGNOSIS = ("The reasoning above does not reach a verified answer; "
                   "the steps below redo the solution correctly.")


def prefix_then_reference(problem: str, incorrect_text: str, correct_text: str) -> str | None:
    """First half of the incorrect rollout's lines, a fixed diagnosis, the correct rollout."""
    del problem  # the stand-in needs no problem text
    if not correct_text.strip():
        return None
    lines = incorrect_text.splitlines()
    prefix = "\n".join(lines[:len(lines) // 2])
    analysis = f"<{ANALYSIS_TAG}>{FIXED_DIAGNOSIS}</{ANALYSIS_TAG}>"
    reconstruction = f"<{RECONSTRUCTION_TAG}>\n{correct_text.strip()}\n</{RECONSTRUCTION_TAG}>"
    return "\n".join(part for part in (prefix, analysis, reconstruction) if part)


def get_constructor(name: str) -> Constructor:
    if name == "prefix_then_reference":
        return prefix_then_reference
    if name == "reflect":
        try:
            module = importlib.import_module(REFLECT_MODULE)
        except ModuleNotFoundError:
            raise InputError(f"--constructor reflect: {REFLECT_MODULE} is not installed (the reflect stage); "
                             f"use prefix_then_reference") from None
        found = getattr(module, REFLECT_CONSTRUCTOR, None)
        if not callable(found):
            raise InputError(f"--constructor reflect: {REFLECT_MODULE} has no callable {REFLECT_CONSTRUCTOR!r} "
                             f"(problem, incorrect_text, correct_text) -> str | None")
        return found
    if name == "policy":
        raise InputError("--constructor policy is left for GPU scale: pass a callable that prompts the policy "
                         "to TAPOGRPOTrainer(constructor=...) (trajfusion.rl.construct)")
    raise InputError(f"--constructor: unknown constructor {name!r}; known: {list(CONSTRUCTORS)}")


def pick_rollout(texts: Sequence[str], candidates: Sequence[int], rule: str) -> int:
    """The index (into ``texts``) of the candidate rollout ``rule`` picks."""
    if not candidates:
        raise ValueError("no candidate rollouts")
    if rule == "first":
        return min(candidates)
    if rule == "shortest":
        return min(candidates, key=lambda i: (len(texts[i]), i))
    raise ValueError(f"unknown rollout choice {rule!r}; known: {list(ROLLOUT_CHOICES)}")
