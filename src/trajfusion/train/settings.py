"""Settings of ``trajfusion train`` (``TrainSettings``, declared once: trajfusion.settings) and
the job they configure (``TrainJob``: the inputs, the output directory and the settings).

Paths are not settings: ``--model``, ``--dataset``, ``--output-dir`` and the DeepSpeed
config file ``--deepspeed`` stay plain flags. Provenance (``train_meta.json``,
``ckpt_meta.json``) and the resume fingerprint leave out the settings marked
``affects_output=False``: logging and trainer-checkpoint bookkeeping and the rendezvous
port, which a resumed run may change.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from trajfusion.io import InputError
from trajfusion.settings import Settings, at_least, between, positive, setting
from trajfusion.train.launch import DEFAULT_MAIN_PROCESS_PORT

PRECISIONS = ("fp32", "bf16")
LENGTH_POLICIES = ("drop_errors", "truncate")
LR_SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup", "cosine_with_min_lr")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2", "flash_attention_3")
# Experiment trackers, as transformers' `report_to` names them; all three work offline
# (tensorboard: event files under the trainer folder; trackio: a local database; wandb:
# offline runs unless WANDB_MODE or WANDB_API_KEY says otherwise).
TRACKERS = ("none", "tensorboard", "trackio", "wandb")
# Kernels that attend through a dense mask over a packed batch's concatenated row
# (trajfusion.train.trainer): per_device_batch_size x max_length tokens squared.
DENSE_MASK_KERNELS = ("sdpa", "eager")
# Assumption: the longest packed row a dense mask is allowed for. At 8,192 tokens the bf16 mask
# alone is 8,192^2 x 2 B = 128 MiB and attention's compute already dominates a small model's
# step; at the paper's 8 x 4,096 it would be 2 GiB, at 8 x 32,768 128 GiB.
DENSE_MASK_MAX_TOKENS = 8192


def _example_counts(value) -> tuple[int, ...]:
    """'8,16' or [16, 8] -> (8, 16): positive example counts, sorted, each once."""
    parts = value.split(",") if isinstance(value, str) else value
    if not isinstance(parts, (list, tuple)):
        raise ValueError(f"expected comma-separated example counts, got {value!r}")
    return tuple(sorted({_example_count(part) for part in parts if str(part).strip()}))


def _example_count(part) -> int:
    text = "" if isinstance(part, bool) else str(part).strip()
    if not text.isdigit() or int(text) == 0:
        raise ValueError(f"{text or part!r} is not a positive integer example count")
    return int(text)


def _has_rope_type(value: dict) -> str | None:
    return None if isinstance(value.get("rope_type"), str) else "expected a JSON object with a 'rope_type'"


def _ratio(value: float) -> str | None:
    return None if 0.0 <= value < 1.0 else "must be in [0, 1)"


def _steps_or_minus_one(value: int) -> str | None:
    return None if value > 0 or value == -1 else "must be positive or -1"


@dataclass(frozen=True)
class TrainSettings(Settings):
    # Required: the rules always give them (config `training`, the profile, `seed`, the backbone's template).
    template: str = setting(help="prompt template name (resources/templates.yaml)")
    epochs: float = setting(help="training epochs", check=positive)
    learning_rate: float = setting(help="peak learning rate", check=positive)
    per_device_batch_size: int = setting(help="examples (packed rows with --packing) per device and step",
                                         check=positive)
    grad_accum: int = setting(help="gradient accumulation steps", check=positive)
    max_length: int = setting(help="tokens per example; with packing, per packed row", check=positive)
    precision: str = setting(help="training precision (bf16: autocast over fp32 master weights)",
                             choices=PRECISIONS)
    seed: int = setting(help="training seed (data order, dropout)")
    packing: bool = setting(True, help="pack examples into rows of --max-length tokens (padding-free)")
    length_policy: str = setting("drop_errors", help="an example longer than --max-length: drop_errors removes "
                                 "its fused errors last-first until it fits (dropped if y* alone does not fit); "
                                 "truncate cuts its end", choices=LENGTH_POLICIES)
    checkpoints: tuple[int, ...] = setting((), help="comma-separated example counts to save ckpt-{n} at, "
                                           "e.g. '8000,16000'", parse=_example_counts)
    rope_scaling: dict | None = setting(None, help='RoPE scaling as JSON, e.g. \'{"rope_type": "yarn", "factor": '
                                        '8.0, "original_max_position_embeddings": 4096}\'', check=_has_rope_type)
    warmup_ratio: float = setting(0.0, help="share of steps with linear warm-up", check=_ratio)
    lr_scheduler: str = setting("cosine", help="learning-rate schedule", choices=LR_SCHEDULERS)
    max_steps: int = setting(-1, help="stop after this many optimizer steps (-1: epochs)",
                             check=_steps_or_minus_one)
    gradient_checkpointing: bool = setting(True, help="recompute activations in the backward pass")
    attn_implementation: str = setting("sdpa", help="attention kernel", choices=ATTN_IMPLEMENTATIONS)
    # 0 (no GPU) is the value the rule's resource request and the cost table assume too.
    num_gpus: int = setting(1, help="GPUs per node (0 or 1: one process; >1 relaunches via accelerate)",
                            check=at_least(0))
    num_nodes: int = setting(1, help="nodes (each runs its own `accelerate launch`)", check=at_least(1))
    logging_steps: int = setting(10, help="log the loss every N optimizer steps", check=positive,
                                 affects_output=False)
    report_to: str = setting("none", help="experiment tracker the loss and learning rate go to (pip extra "
                             "`tracking` installs tensorboard and trackio; wandb: install it yourself)",
                             choices=TRACKERS, affects_output=False)
    save_steps: int = setting(500, help="trainer checkpoint every N optimizer steps", check=positive,
                              affects_output=False)
    save_total_limit: int = setting(2, help="trainer checkpoints kept", check=positive, affects_output=False)
    keep_trainer_checkpoints: bool = setting(True, help="keep OUTPUT_DIR/trainer/checkpoint-* after a "
                                             "successful run", affects_output=False)
    main_process_port: int = setting(DEFAULT_MAIN_PROCESS_PORT, help="rendezvous port of a multi-GPU launch",
                                     check=between(1, 65535), affects_output=False)

    def __post_init__(self):
        super().__post_init__()
        packed_row = self.per_device_batch_size * self.max_length
        if self.packing and self.attn_implementation in DENSE_MASK_KERNELS and packed_row > DENSE_MASK_MAX_TOKENS:
            raise InputError(
                f"--attn-implementation {self.attn_implementation} with --packing attends through a dense mask "
                f"over each packed row of --per-device-batch-size x --max-length = {self.per_device_batch_size} x "
                f"{self.max_length} = {packed_row} tokens (memory grows with its square); the limit is "
                f"{DENSE_MASK_MAX_TOKENS}: use flash_attention_2 (padding-free, GPU), a smaller row, or no packing")

    @property
    def processes(self) -> int:
        return self.num_gpus * self.num_nodes


@dataclass(frozen=True)
class TrainJob:
    """One training run: what it reads, where it writes, and how it trains."""

    model: str
    dataset: str
    output_dir: str
    settings: TrainSettings
    deepspeed: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainJob:
        return cls(model=str(args.model), dataset=str(args.dataset), output_dir=str(args.output_dir),
                   settings=TrainSettings.from_args(args),
                   deepspeed=None if args.deepspeed is None else str(args.deepspeed))

    def inputs(self) -> dict:
        """The input paths, recorded beside the settings in the resume fingerprint."""
        return {"model": self.model, "dataset": self.dataset, "deepspeed": self.deepspeed}

    def to_argv(self) -> list[str]:
        """The ``train`` flags that reproduce this job (used to relaunch on several GPUs)."""
        argv = ["--model", self.model, "--dataset", self.dataset, "--output-dir", self.output_dir,
                "--settings", self.settings.to_json()]
        return argv + (["--deepspeed", self.deepspeed] if self.deepspeed else [])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``train`` flags: the paths, then one flag per setting and ``--settings``."""
    parser.add_argument("--model", required=True, help="base model directory or hub id")
    parser.add_argument("--dataset", required=True, help="fused JSONL dataset")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--deepspeed", default=None, help="DeepSpeed JSON config (e.g. config/deepspeed/zero1.json)")
    TrainSettings.add_arguments(parser)
