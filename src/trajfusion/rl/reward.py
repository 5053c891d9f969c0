"""The GRPO reward: the project's verifier on each completion (1.0 correct, 0.0 otherwise).

Completions are judged as evaluation judges them (``trajfusion.evaluate.scoring``): the
hang-proof ``trajfusion.verify.verify_frame`` (math-verify in a watchdog pool of worker
processes; a comparison that hangs past ``timeout`` seconds is a failure, i.e. reward 0.0),
every optional output filter off, answers extracted by the grader's lenient rule (the last
``\\boxed{}``, else an inline answer or the last number). A truncated
completion is still judged on its answer (the verifier's truncation filter is one of those
turned off), as evaluation does.
"""

from __future__ import annotations

import pandas as pd


class VerifierReward:
    """A TRL reward function: ``reward(prompts, completions, problem_id, answer, **kw) -> [float]``.

    TRL passes the dataset's columns as keyword lists; this reads ``problem_id``, ``answer``
    (the gold) and, when present, ``answer_type`` (math-verify's comparison hint).
    """

    __name__ = "verifier"  # TRL names the reward's metrics after it

    def __init__(self, workers: int, timeout: float, grader: str = "math_verify"):
        self.workers = workers
        self.timeout = timeout
        self.grader = grader

    def __call__(self, prompts, completions, problem_id, answer, answer_type=None, **kwargs) -> list[float]:
        return self.score(list(problem_id), list(answer), [_text(c) for c in completions], answer_type)

    def score(self, problem_ids: list[str], golds: list[str], texts: list[str],
              answer_types: list | None = None) -> list[float]:
        from trajfusion.verify import verify_frame
        from trajfusion.verify.graders import get_grader

        frame = pd.DataFrame({"problem_id": problem_ids, "gold": golds, "response": texts})
        if answer_types is not None:
            frame["answer_type"] = list(answer_types)
        verdicts = verify_frame(frame, workers=self.workers, timeout=self.timeout, filters={"enabled": []},
                                grader=get_grader(self.grader),
                                source="GRPO completions")
        return [1.0 if correct else 0.0 for correct in verdicts["correct"]]


def _text(completion) -> str:
    """A completion as TRL passes it: text, or (conversational) a list of messages."""
    if isinstance(completion, str):
        return completion
    return "".join(message.get("content", "") for message in completion)
