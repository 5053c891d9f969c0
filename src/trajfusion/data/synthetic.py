"""Seeded multi-step arithmetic word problems with exact integer answers.

SmolLM2-135M solves almost no GSM8K problem, and trajectory fusion needs problems on which
the teacher is sometimes right and sometimes wrong. These short problems (operands below
50, one or two operations by default) give the small model such mixed outcomes.

Train and test problems can never share a text: every candidate text is assigned to one
split by a hash of the text itself, and each split only keeps texts assigned to it. The
two splits also draw from different random streams and use different id prefixes.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from trajfusion.data.table import problem_row
from trajfusion.io import InputError

TRAIN_SOURCE = "synthetic_arith"
TEST_SOURCE = "synthetic_arith_test"
TEST_BUCKETS = 10  # one text in TEST_BUCKETS belongs to the test split
_MAX_MISSES = 2_000

_PEOPLE = (("Tom", "he", "him"), ("Mia", "she", "her"), ("Sam", "he", "him"),
           ("Lena", "she", "her"), ("Omar", "he", "him"), ("Priya", "she", "her"),
           ("Jack", "he", "him"), ("Zoe", "she", "her"), ("Ravi", "he", "him"),
           ("Anna", "she", "her"), ("Leo", "he", "him"), ("Emma", "she", "her"),
           ("Ben", "he", "him"), ("Sara", "she", "her"), ("Kenji", "he", "him"),
           ("Lucy", "she", "her"))
_ITEMS = ("apples", "marbles", "stickers", "pencils", "cookies", "books", "shells", "cards",
          "coins", "balloons", "stamps", "toy cars", "oranges", "crayons", "beads", "eggs")
_ADD = ("{P} buys {b} more.", "{P} finds {b} more.", "A friend gives {o} {b} more.",
        "{P} gets {b} more as a gift.")
_SUB = ("{P} gives away {b}.", "{P} loses {b}.", "{P} sells {b}.", "{P} gives {b} to a friend.")
_MUL = {2: "{P} doubles the number of {item} {p} has.", 3: "{P} triples the number of {item} {p} has."}
_DIV = "{P} splits them into {k} equal groups and keeps one group."


@dataclass(frozen=True)
class _Options:
    n: int
    min_steps: int
    max_steps: int
    max_number: int
    seed: int


def generate(split: str = "train", *, n: int | None = None, min_steps: int = 1, max_steps: int = 2,
             max_number: int = 49, seed: int = 0) -> list[dict]:
    """Problem-table rows for the ``train`` or ``test`` split (deterministic in all arguments)."""
    if split not in ("train", "test"):
        raise InputError(f"synthetic_arith: split must be 'train' or 'test', got {split!r}")
    options = _check_options(split, n, min_steps, max_steps, max_number, seed)
    source = TRAIN_SOURCE if split == "train" else TEST_SOURCE
    rng = random.Random(f"{source}:{options.seed}")
    texts: set[str] = set()
    rows: list[dict] = []
    misses = 0  # consecutive draws that gave nothing new: the problem space is exhausted
    while len(rows) < options.n and misses < _MAX_MISSES:
        text, answer, steps = _draw_problem(rng, options)
        if text in texts or is_test_text(text) != (split == "test"):
            misses += 1
            continue
        misses = 0
        texts.add(text)
        rows.append(problem_row(f"{source}/{len(rows):05d}", text, str(answer), source,
                                level=str(steps), subject="arithmetic", answer_type="integer"))
    if len(rows) < options.n:
        raise InputError(f"{source}: could only make {len(rows)} distinct problems of the {options.n} "
                         f"requested with min_steps={min_steps}, max_steps={max_steps}, "
                         f"max_number={max_number}")
    return rows


def is_test_text(text: str) -> bool:
    """The split a problem text belongs to, from its hash: True means test."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % TEST_BUCKETS == 0


def _check_options(split, n, min_steps, max_steps, max_number, seed) -> _Options:
    n = (1000 if split == "train" else 500) if n is None else n
    for name, value in (("n", n), ("min_steps", min_steps), ("max_steps", max_steps),
                        ("max_number", max_number), ("seed", seed)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InputError(f"synthetic_arith: option {name} must be an integer, got {value!r}")
    if n < 1 or not 1 <= min_steps <= max_steps <= 6 or max_number < 5:
        raise InputError(f"synthetic_arith: need n >= 1, 1 <= min_steps <= max_steps <= 6 and "
                         f"max_number >= 5; got n={n}, min_steps={min_steps}, "
                         f"max_steps={max_steps}, max_number={max_number}")
    return _Options(n, min_steps, max_steps, max_number, seed)


def _draw_problem(rng: random.Random, options: _Options) -> tuple[str, int, int]:
    name, subject_pronoun, object_pronoun = rng.choice(_PEOPLE)
    item = rng.choice(_ITEMS)
    steps = rng.randint(options.min_steps, options.max_steps)
    total = rng.randint(2, options.max_number)
    sentences = [f"{name} has {total} {item}."]
    for index in range(steps):
        sentence, total = _draw_step(rng, total, options.max_number)
        words = {"P": subject_pronoun.capitalize(), "p": subject_pronoun, "o": object_pronoun,
                 "item": item}
        sentence = sentence.format(**words)
        if index > 0:
            sentence = "Then " + sentence[0].lower() + sentence[1:]
        sentences.append(sentence)
    sentences.append(f"How many {item} does {name} have now?")
    return " ".join(sentences), total, steps


def _draw_step(rng: random.Random, total: int, max_number: int) -> tuple[str, int]:
    """One operation on the running total: (sentence template with {b}/{k} filled, new total)."""
    kinds = ["add"]
    if total >= 1:
        kinds.append("sub")
    if total <= max_number // 2:
        kinds.append("mul")
    divisors = [k for k in range(2, 6) if total % k == 0 and total // k >= 1]
    if divisors:
        kinds.append("div")
    kind = rng.choice(kinds)
    if kind == "add":
        b = rng.randint(1, max_number)
        return rng.choice(_ADD).replace("{b}", str(b)), total + b
    if kind == "sub":
        b = rng.randint(1, min(total, max_number))
        return rng.choice(_SUB).replace("{b}", str(b)), total - b
    if kind == "mul":
        k = rng.choice(sorted(_MUL))
        return _MUL[k], total * k
    k = rng.choice(divisors)
    return _DIV.replace("{k}", str(k)), total // k
