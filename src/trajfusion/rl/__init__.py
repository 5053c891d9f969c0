"""RL stage: ``grpo`` trains a starting model (a base model or an SFT checkpoint, the cold start)
with GRPO on a training pool, rewarded by the project's verifier; ``--mode tapo`` adds TAPO's
micro-reflective trajectories with decoupled advantages and OOD token suppression.

Modules: ``cli`` (the command), ``settings`` (``GRPOSettings``, ``GRPOJob``), ``advantages``
(selection band, decoupled advantages, OOD mask: pure tensor functions), ``construct`` (the
constructors and which rollouts they get), ``reward`` (the verifier as a TRL reward),
``trainer`` (``TAPOGRPOTrainer``, the GRPOTrainer subclass, and the TRL internals it relies on),
``run`` (one run: prompts, config, training, saved model and metadata).
"""

from trajfusion.rl.cli import register
from trajfusion.rl.settings import GRPOJob, GRPOSettings

__all__ = ["GRPOJob", "GRPOSettings", "register"]
