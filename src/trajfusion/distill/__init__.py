"""Distillation stage: ``distill`` trains a student on its own samples against a teacher's
token distributions (on-policy distillation, OPD; OPD with divergence filtering; TOPD's
near-future guidance; see related-topd-summary.txt).

Modules: ``settings`` (``LossSettings``, ``DistillSettings``), ``losses`` (the per-token
reverse KL, the near-future statistic, the methods' weights and the diagnostics: pure
functions on tensors), ``vocab`` (the shared-tokenizer check), ``trainer`` (the run on TRL's
``DistillationTrainer``), ``cli`` (the command).
"""

from trajfusion.distill.cli import register
from trajfusion.distill.settings import METHODS, DistillSettings, LossSettings

__all__ = ["METHODS", "DistillSettings", "LossSettings", "register"]
