"""The generation-backend flags of ``trajfusion sample`` and ``trajfusion evaluate``, declared
once: ``add_backend_arguments`` adds them to a subcommand, ``backend_options`` turns the
parsed flags into the ``load_backend`` options of the chosen backend.
"""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)

_BACKEND_FLAGS = {
    "hf": ("batch_size", "dtype", "device", "threads"),
    "vllm": ("batch_size", "dtype", "tensor_parallel_size", "max_model_len", "gpu_memory_utilization"),
}


def add_backend_arguments(p: argparse.ArgumentParser) -> None:
    """The backend tuning flags (each command adds ``--backend``, choices ``BACKEND_NAMES``, itself)."""
    p.add_argument("--batch-size", type=int, default=None,
                   help="prompts per generate call (hf default 8; vllm default: all prompts at once)")
    p.add_argument("--dtype", default=None, help="float32, bfloat16, float16 or auto (backend default if unset)")
    p.add_argument("--device", default=None, help="hf only: torch device (default cuda if available, else cpu)")
    p.add_argument("--threads", type=int, default=None,
                   help="hf on CPU: torch threads (pass the job's core allotment; default: torch's choice)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow model code from the model directory")
    p.add_argument("--tensor-parallel-size", type=int, default=None, help="vllm only")
    p.add_argument("--max-model-len", type=int, default=None, help="vllm only")
    p.add_argument("--gpu-memory-utilization", type=float, default=None, help="vllm only")


def backend_options(args: argparse.Namespace) -> dict:
    """The flags that apply to the chosen backend, leaving unset ones at the backend's default."""
    used = _BACKEND_FLAGS[args.backend]
    options = {name: getattr(args, name) for name in used if getattr(args, name) is not None}
    other_flags = sorted({name for names in _BACKEND_FLAGS.values() for name in names} - set(used))
    ignored = [name for name in other_flags if getattr(args, name) is not None]
    if ignored:
        log.warning("backend %s ignores option(s) %s", args.backend, ignored)
    if args.backend == "vllm":
        options["seed"] = args.seed
    options["trust_remote_code"] = args.trust_remote_code
    return options
