"""``trajfusion distill``: on-policy distillation of a teacher into a student (OPD, OPD-filter, TOPD).

The student samples completions of a pool's problems and learns the teacher's token
distributions on them (``trajfusion.distill.trainer``).

The teacher/student pair is checked for a shared tokenizer before any model is loaded.
"""

from __future__ import annotations

import argparse

from trajfusion.distill.settings import DistillSettings


def register(sub) -> None:
    p = sub.add_parser("distill", help="on-policy distillation of a teacher into a student",
                       description=__doc__.splitlines()[0])
    p.add_argument("--student", required=True, help="student model directory (base model or an SFT checkpoint)")
    p.add_argument("--teacher", required=True, help="teacher model directory (scored locally, full vocabulary)")
    p.add_argument("--pool", required=True, help="problem table (Parquet) the student samples completions of")
    p.add_argument("--output-dir", required=True)
    DistillSettings.add_arguments(p)
    p.set_defaults(func=run_distill)


def run_distill(args: argparse.Namespace) -> int:
    from trajfusion.distill.trainer import DistillJob, run_distillation

    job = DistillJob(student=str(args.student), teacher=str(args.teacher), pool=str(args.pool),
                     output_dir=str(args.output_dir), settings=DistillSettings.from_args(args))
    run_distillation(job)
    return 0
