"""The flags of ``trajfusion train``: their declaration, their values as the run's settings,
and back to the command line that reproduces them (for the multi-GPU relaunch)."""

from __future__ import annotations

import argparse

from trajfusion.train.launch import DEFAULT_MAIN_PROCESS_PORT


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="base model directory or hub id")
    p.add_argument("--dataset", required=True, help="fused JSONL dataset")
    p.add_argument("--template", required=True, help="prompt template name (resources/templates.yaml)")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--epochs", type=float, required=True)
    p.add_argument("--learning-rate", type=float, required=True)
    p.add_argument("--per-device-batch-size", type=int, required=True)
    p.add_argument("--grad-accum", type=int, required=True)
    p.add_argument("--max-length", type=int, required=True, help="tokens per example; with packing, per packed row")
    p.add_argument("--packing", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--precision", choices=("fp32", "bf16"), required=True)
    p.add_argument("--deepspeed", default=None, help="DeepSpeed JSON config (e.g. config/deepspeed/zero1.json)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--checkpoints", default="", help="comma-separated example counts, e.g. '8000,16000'")
    p.add_argument("--rope-scaling", default=None,
                   help='JSON, e.g. \'{"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 4096}\'')
    p.add_argument("--warmup-ratio", type=float, default=0.0, help="share of steps with linear warm-up")
    p.add_argument("--lr-scheduler", default="cosine",
                   choices=("cosine", "linear", "constant", "constant_with_warmup", "cosine_with_min_lr"))
    p.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimizer steps (-1: epochs)")
    p.add_argument("--logging-steps", type=int, default=10)
    p.add_argument("--save-steps", type=int, default=500, help="trainer checkpoint every N optimizer steps")
    p.add_argument("--save-total-limit", type=int, default=2, help="trainer checkpoints kept")
    p.add_argument("--keep-trainer-checkpoints", action=argparse.BooleanOptionalAction, default=True,
                   help="keep OUTPUT_DIR/trainer/checkpoint-* after a successful run")
    p.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--attn-implementation", default="sdpa",
                   choices=("sdpa", "eager", "flash_attention_2", "flash_attention_3"))
    p.add_argument("--num-gpus", type=int, default=1, help="GPUs per node; >1 relaunches via accelerate")
    p.add_argument("--num-nodes", type=int, default=1)
    p.add_argument("--main-process-port", type=int, default=DEFAULT_MAIN_PROCESS_PORT)


def _train_actions() -> list[argparse.Action]:
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    return list(parser._actions)


def args_to_argv(args: argparse.Namespace) -> list[str]:
    """The ``train`` flags that reproduce ``args`` (used to relaunch on several GPUs)."""
    argv = []
    for action in _train_actions():
        value = getattr(args, action.dest)
        flag = action.option_strings[0]
        if isinstance(action, argparse.BooleanOptionalAction):
            argv.append(flag if value else "--no-" + flag[2:])
        elif value is not None:
            argv += [flag, str(value)]
    return argv


def settings_of(args: argparse.Namespace) -> dict:
    """The ``train`` flags' values (not the global CLI options)."""
    return {action.dest: getattr(args, action.dest) for action in sorted(_train_actions(), key=lambda a: a.dest)}
