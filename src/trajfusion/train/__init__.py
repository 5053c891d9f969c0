"""Training stage: ``train`` fine-tunes a backbone on a fused dataset (paper Section 4.1, A.3).

Modules: ``cli`` (the command), ``settings`` (``TrainSettings``, declared once, and
``TrainJob``: paths plus settings, and back to the command line for the multi-GPU relaunch),
``trainer`` (model loading, resume, the training run and its metadata), ``dataset`` (fused
examples to tokenized rows), ``progress`` (example counting and the ``ckpt-{n}``
checkpoints), ``launch`` (multi-GPU relaunch, DeepSpeed config).
"""

from trajfusion.train.cli import register
from trajfusion.train.settings import TrainJob, TrainSettings
from trajfusion.train.trainer import (
    build_meta,
    check_resume_settings,
    find_resume_checkpoint,
    load_model,
    run_fingerprint,
    run_training,
    setup_training,
)

__all__ = ["TrainJob", "TrainSettings", "build_meta", "check_resume_settings", "find_resume_checkpoint", "load_model",
           "register", "run_fingerprint", "run_training", "setup_training"]
