"""``trajfusion train``: supervised fine-tuning on a fused dataset (paper Section 4.1, A.3).

The command: relaunch on several GPUs if asked to, else train (``trajfusion.train.trainer``).
"""

from __future__ import annotations

import argparse

from trajfusion.io import InputError
from trajfusion.train.launch import is_launched_worker, relaunch
from trajfusion.train.settings import TrainJob, add_arguments
from trajfusion.train.trainer import run_training


def register(sub) -> None:
    p = sub.add_parser("train", help="fine-tune a backbone on a fused dataset",
                       description=__doc__.splitlines()[0])
    add_arguments(p)
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    job = TrainJob.from_args(args)
    settings = job.settings
    if settings.processes > 1 and not is_launched_worker():
        if settings.num_nodes > 1:
            raise InputError("--num-nodes > 1: start one `accelerate launch` per node (see "
                             "trajfusion.train.launch.launch_command); --num-gpus alone covers one node")
        relaunch(job.to_argv(), settings.num_gpus, main_process_port=settings.main_process_port)
    run_training(job)
    return 0
