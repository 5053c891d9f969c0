"""Settings of ``trajfusion grpo`` (``GRPOSettings``, declared once: trajfusion.settings) and the
job they configure (``GRPOJob``: the starting model, the pool, the output directory).

Defaults marked "assumption" have no published value (TAPO publishes no thresholds); the
config schema (``rl:`` section) repeats them and config/paper.yaml marks them.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from trajfusion.io import InputError
from trajfusion.rl.construct import CONSTRUCTORS, ROLLOUT_CHOICES
from trajfusion.settings import Settings, at_least, between, positive, setting
from trajfusion.train.settings import ATTN_IMPLEMENTATIONS, PRECISIONS, TRACKERS
from trajfusion.vocabulary import GRADERS

MODES = ("grpo", "tapo")
# TRL 1.16 GRPOConfig.loss_type values whose normalisation handles an appended row like any other.
LOSS_TYPES = ("dapo", "grpo", "bnpo", "dr_grpo")
SCALE_REWARDS = ("group", "none")


def _probability(value: float) -> str | None:
    return None if 0.0 <= value < 1.0 else "must be in [0, 1)"


@dataclass(frozen=True)
class GRPOSettings(Settings):
    template: str = setting(help="prompt template name (resources/templates.yaml), the backbone's")
    seed: int = setting(help="training seed (data order, sampling)")
    mode: str = setting("grpo", help="grpo: plain GRPO; tapo: GRPO with one micro-reflective trajectory per "
                        "group in the accuracy band (decoupled advantage, OOD token suppression)", choices=MODES)
    learning_rate: float = setting(1e-6, help="peak learning rate (assumption)", check=positive)
    max_steps: int = setting(500, help="optimizer steps (assumption)", check=positive)
    num_generations: int = setting(8, help="rollouts per problem (the group size G; assumption)",
                                   check=at_least(2))
    per_device_batch_size: int = setting(8, help="rollouts per device and micro-step (a multiple of "
                                         "--num-generations)", check=positive)
    grad_accum: int = setting(1, help="gradient accumulation steps", check=positive)
    max_completion_length: int = setting(4096, help="tokens per rollout (assumption)", check=positive)
    temperature: float = setting(1.0, help="rollout sampling temperature", check=positive)
    top_p: float = setting(1.0, help="rollout nucleus sampling", check=between(0.0, 1.0))
    beta: float = setting(0.0, help="KL coefficient against the starting model (0: no reference model)",
                          check=at_least(0.0))
    epsilon: float = setting(0.2, help="PPO clip range", check=positive)
    loss_type: str = setting("dapo", help="TRL's loss normalisation", choices=LOSS_TYPES)
    scale_rewards: str = setting("group", help="advantage scaling: group std (GRPO) or none (Dr. GRPO)",
                                 choices=SCALE_REWARDS)
    precision: str = setting("bf16", help="training precision", choices=PRECISIONS)
    gradient_checkpointing: bool = setting(True, help="recompute activations in the backward pass")
    attn_implementation: str = setting("sdpa", help="attention kernel", choices=ATTN_IMPLEMENTATIONS)
    num_gpus: int = setting(1, help="GPUs (0 or 1: one process; multi-GPU GRPO is left to accelerate launch)",
                            check=at_least(0))
    grader: str = setting(GRADERS[0], help="verifier of the reward", choices=GRADERS)
    verify_timeout: float = setting(5.0, help="seconds per answer comparison before it counts as wrong",
                                    check=positive)
    verify_workers: int = setting(1, help="verifier worker processes", check=at_least(1), affects_output=False)
    # -- TAPO --
    band_low: float = setting(0.25, help="tapo: lowest group accuracy that gets a construction (assumption)",
                              check=between(0.0, 1.0))
    band_high: float = setting(0.75, help="tapo: highest group accuracy that gets a construction (assumption)",
                               check=between(0.0, 1.0))
    ood_min_prob: float = setting(1e-4, help="tapo: constructed tokens less likely than this under the policy "
                                  "get no gradient (assumption; 0 keeps all)", check=_probability)
    constructor: str = setting("prefix_then_reference", help="tapo: who builds the trajectory "
                               "(trajfusion.rl.construct)", choices=CONSTRUCTORS)
    max_constructed_length: int = setting(8192, help="tapo: longest constructed trajectory in tokens; a longer "
                                          "one is skipped, never cut (assumption)", check=positive)
    incorrect_choice: str = setting("first", help="tapo: which incorrect rollout is reflected on (assumption)",
                                    choices=ROLLOUT_CHOICES)
    correct_choice: str = setting("shortest", help="tapo: which correct rollout guides the reconstruction "
                                  "(assumption)", choices=ROLLOUT_CHOICES)
    logging_steps: int = setting(1, help="log every N optimizer steps", check=positive, affects_output=False)
    report_to: str = setting("none", help="experiment tracker", choices=TRACKERS, affects_output=False)

    def __post_init__(self):
        super().__post_init__()
        if self.band_low > self.band_high:
            raise InputError(f"--band-low {self.band_low} exceeds --band-high {self.band_high}")
        if self.per_device_batch_size % self.num_generations:
            raise InputError(f"--per-device-batch-size {self.per_device_batch_size} must be a multiple of "
                             f"--num-generations {self.num_generations} (whole groups per micro-step)")


@dataclass(frozen=True)
class GRPOJob:
    """One RL run: the starting model (base or SFT cold start), the training pool, the output."""

    model: str
    pool: str
    output_dir: str
    settings: GRPOSettings

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> GRPOJob:
        return cls(model=str(args.model), pool=str(args.pool), output_dir=str(args.output_dir),
                   settings=GRPOSettings.from_args(args))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="starting model directory (a base model or an SFT "
                        "checkpoint: the cold start)")
    parser.add_argument("--pool", required=True, help="training pool (problem table Parquet: problem, answer)")
    parser.add_argument("--output-dir", required=True)
    GRPOSettings.add_arguments(parser)
