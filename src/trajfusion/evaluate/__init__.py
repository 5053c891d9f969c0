"""Evaluation stage: ``evaluate`` samples a model on a benchmark and writes the verdict table.

Modules: ``cli`` (the command), ``settings`` (its settings, extending the sampling stage's
generation settings), ``samples`` (reading the benchmark, generating with the
sampling stage's backends), ``scoring`` (both graders' verdicts, answer groups and reflection counts),
``reflections`` (the counting rule).
"""

from trajfusion.evaluate.cli import register
from trajfusion.evaluate.reflections import count_reflections
from trajfusion.evaluate.scoring import VERDICT_COLUMNS, judge

__all__ = ["VERDICT_COLUMNS", "count_reflections", "judge", "register"]
