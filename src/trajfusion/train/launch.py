"""Multi-GPU launch of ``trajfusion train`` and the DeepSpeed configuration it passes on.

``trajfusion train --num-gpus N`` with N > 1 replaces itself (``os.execvpe``) with
``accelerate launch``, which starts one ``trajfusion train`` process per GPU; those see
``WORLD_SIZE``/``LOCAL_RANK`` in their environment and train instead of relaunching. The
transformers Trainer picks up ``--deepspeed CONFIG.json`` itself (it sets up the
accelerate DeepSpeed plugin from ``TrainingArguments.deepspeed``), so the launcher needs
no DeepSpeed flags: ``--multi_gpu`` plus the process counts is enough. ``accelerate`` is
run as ``python -m accelerate.commands.launch`` with the current interpreter so a SLURM
job does not depend on ``PATH``.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from trajfusion.io import InputError, read_json_file

log = logging.getLogger(__name__)

DEFAULT_MAIN_PROCESS_PORT = 29500
# Set by torchrun / accelerate launch in every worker process.
_LAUNCHED_ENV = ("LOCAL_RANK", "WORLD_SIZE")


def launch_command(args_list: list[str], num_gpus: int, num_nodes: int = 1,
                   main_process_port: int = DEFAULT_MAIN_PROCESS_PORT, machine_rank: int = 0,
                   main_process_ip: str | None = None) -> list[str]:
    """The ``accelerate launch`` command running ``trajfusion train *args_list`` on every GPU.

    ``num_gpus`` is the number of GPUs per node; ``accelerate`` gets the total process
    count. For ``num_nodes > 1`` each node runs the command with its own ``machine_rank``
    (``$SLURM_NODEID``) and the address of node 0 as ``main_process_ip``.
    """
    if num_gpus < 1 or num_nodes < 1:
        raise ValueError(f"num_gpus and num_nodes must be >= 1, got {num_gpus} and {num_nodes}")
    if num_nodes > 1 and not main_process_ip:
        raise ValueError("a multi-node launch needs main_process_ip (the address of node 0)")
    cmd = [sys.executable, "-m", "accelerate.commands.launch",
           "--num_processes", str(num_gpus * num_nodes),
           "--num_machines", str(num_nodes),
           "--machine_rank", str(machine_rank),
           "--main_process_port", str(main_process_port),
           "--mixed_precision", "no",  # the Trainer sets precision from --precision
           "--dynamo_backend", "no"]
    if num_gpus * num_nodes > 1:
        cmd.append("--multi_gpu")
    if main_process_ip:
        cmd += ["--main_process_ip", main_process_ip]
    return cmd + ["-m", "trajfusion.cli", "train", *args_list]


def is_launched_worker(environ: dict | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return all(name in environ for name in _LAUNCHED_ENV)


def relaunch(args_list: list[str], num_gpus: int, num_nodes: int = 1, **kwargs) -> None:
    """Replace this process with the multi-GPU launch (never returns)."""
    cmd = launch_command(args_list, num_gpus, num_nodes, **kwargs)
    log.info("relaunching on %d GPU(s) x %d node(s): %s", num_gpus, num_nodes, " ".join(cmd))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(cmd[0], cmd, dict(os.environ))


def check_deepspeed(path: str | Path) -> None:
    """A usable DeepSpeed setup: a valid config (``load_deepspeed_config``) and the package."""
    from importlib.util import find_spec

    load_deepspeed_config(path)
    if find_spec("deepspeed") is None:
        raise InputError("--deepspeed needs the deepspeed package (pip install 'trajfusion[deepspeed]')")


def load_deepspeed_config(path: str | Path) -> dict:
    """Read a DeepSpeed JSON config and check what the ZeRO training here relies on."""
    config = read_json_file(path, "DeepSpeed config")
    if not isinstance(config, dict):
        raise InputError(f"{path}: expected a JSON object")
    stage = config.get("zero_optimization", {}).get("stage")
    if stage not in (0, 1, 2, 3):
        raise InputError(f"{path}: field 'zero_optimization.stage' must be 0-3, got {stage!r}")
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps"):
        if config.get(key) not in ("auto", None):
            raise InputError(f"{path}: field {key!r} must be \"auto\" so that the Trainer's "
                             f"--per-device-batch-size/--grad-accum apply, got {config[key]!r}")
    return config
