"""``trajfusion train``: supervised fine-tuning on a fused dataset (paper Section 4.1, A.3).

Full fine-tuning with TRL's ``SFTTrainer``. Each fused example becomes a prompt (the
backbone's template, ``trajfusion.templates``) and a completion (the fused response plus
the template's end-of-turn suffix); the loss covers the completion only. Tokenization
details (one BOS, no extra EOS) are in ``trajfusion.train.dataset``.

Packing (``--packing``, the paper's setting) uses TRL's best-fit-decreasing packing with
padding-free batches: the examples of a batch are concatenated into one row and
``position_ids`` restart at 0 for each example. Whether examples can attend to each other
depends on the attention kernel:

* ``flash_attention_2``/``3`` (GPU) use the sequence boundaries TRL passes
  (``cu_seq_lens_*``) in a variable-length kernel: no cross-attention, no wasted compute.
  Use it on GPUs for long contexts (not exercised here: these machines have no GPU).
* ``sdpa`` and ``eager`` (the CPU path, and the default) get no attention mask, so
  transformers derives a block-diagonal causal mask from the ``position_ids`` resets
  (``masking_utils.find_packed_sequence_indices``; it does so because TRL's loss sets
  ``use_cache=False``). The result is correct - each example attends only to itself,
  verified in ``tests/test_train.py`` by comparing packed and separate logits - but the
  mask is dense: memory and compute grow with the square of the concatenated length
  (``per_device_batch_size x max_length``). On CPU this eats most of packing's gain
  (bench/results.md: 1.07x the non-pad tokens/s of padded batches for SmolLM2-135M at
  2 x 1024 tokens), and at 32K it is prohibitive.

In both cases the first token of each example is excluded from the loss, so no example is
trained to predict its start from the previous one. ``train_meta.json`` reports the share
of non-pad tokens in the batches actually fed to the model (1.0 with padding-free
packing) and, with packing, how full the packed rows are.

Checkpoints at fixed numbers of training examples (``--checkpoints``), trainer checkpoints
and resume are described in ``trajfusion.train.progress``; the multi-GPU launch and
DeepSpeed configuration in ``trajfusion.train.launch``.

Outputs under ``--output-dir``: ``final/`` (model safetensors, tokenizer,
``train_meta.json``), ``ckpt-{n}/`` for every configured count, and ``trainer/`` (trainer
checkpoints for resuming, and the ``ckpt-{n}`` snapshots). On CPU the model weights are
byte-identical for identical inputs, settings and seed, also across a kill and resume (tested);
GPU kernels need not be bitwise deterministic. ``train_meta.json`` holds wall times under
``timing``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from trajfusion.io import (
    InputError,
    OutputError,
    check_model_dir,
    config_hash,
    is_write_failure,
    library_versions,
    sha256_file,
    write_json,
)
from trajfusion.model.gguf import drop_gguf_quantization
from trajfusion.train.launch import check_deepspeed
from trajfusion.train.settings import TrainJob, TrainSettings

log = logging.getLogger(__name__)

TRAINER_DIR = "trainer"
FINAL_DIR = "final"
META_NAME = "train_meta.json"
RUN_SETTINGS = "run_settings.json"
VERSION_PACKAGES = ("trajfusion", "torch", "transformers", "trl", "accelerate", "datasets", "deepspeed", "pandas",
                    "pyarrow")


# -- model ---------------------------------------------------------------------------

def apply_rope_scaling(config, scaling: dict, max_length: int) -> None:
    """Merge ``scaling`` into the config's RoPE parameters and widen the position range.

    transformers 5 keeps RoPE settings in ``config.rope_parameters`` (``rope_theta``
    included; ``rope_scaling`` is an alias of it), so the scaling is merged rather than
    replacing the dict. ``max_position_embeddings`` becomes at least
    ``original_max_position_embeddings x factor`` (YaRN's extended window) and ``max_length``.
    """
    params = dict(getattr(config, "rope_parameters", None) or {})
    params.update(scaling)
    config.rope_parameters = params
    extended = 0
    if scaling.get("original_max_position_embeddings") and scaling.get("factor"):
        extended = int(scaling["original_max_position_embeddings"] * scaling["factor"])
    config.max_position_embeddings = max(config.max_position_embeddings, extended, max_length)


def load_model(model_name: str, rope_scaling: dict | None, max_length: int, attn_implementation: str):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if Path(model_name).is_dir():
        check_model_dir(model_name)
    config = AutoConfig.from_pretrained(model_name)
    if drop_gguf_quantization(config):
        log.warning("%s: ignoring the GGUF quantization_config of its (dequantized) weights", model_name)
    if rope_scaling:
        apply_rope_scaling(config, rope_scaling, max_length)
    if max_length > config.max_position_embeddings:
        raise InputError(f"--max-length {max_length} exceeds the model's max_position_embeddings "
                         f"{config.max_position_embeddings} ({model_name}); extend it with --rope-scaling")
    # fp32 master weights; --precision bf16 trains with autocast (or DeepSpeed's bf16 mode).
    return AutoModelForCausalLM.from_pretrained(model_name, config=config, dtype=torch.float32,
                                                attn_implementation=attn_implementation)


def load_tokenizer(model_name: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model_name)
    except (OSError, ValueError) as exc:  # no such directory / Hub id, or no tokenizer files in it
        raise InputError(f"--model: cannot load a tokenizer from {model_name!r} "
                         f"({type(exc).__name__}: {exc})") from None


# -- resume --------------------------------------------------------------------------

def find_resume_checkpoint(trainer_dir: Path) -> Path | None:
    """The newest complete trainer checkpoint (``trainer_state.json`` is written last)."""
    if not trainer_dir.is_dir():
        return None
    steps = {}
    for path in trainer_dir.glob("checkpoint-*"):
        match = re.fullmatch(r"checkpoint-(\d+)", path.name)
        if match and (path / "trainer_state.json").is_file():
            steps[int(match.group(1))] = path
    return steps[max(steps)] if steps else None


def check_resume_settings(trainer_dir: Path, fingerprint: dict) -> None:
    """Refuse to resume checkpoints written with different training settings or data."""
    stored_file = trainer_dir / RUN_SETTINGS
    if not stored_file.exists():
        write_json(fingerprint, stored_file)
        return
    stored = json.loads(stored_file.read_text())
    if stored.get("hash") != fingerprint["hash"]:
        changed = sorted(k for k in set(stored["settings"]) | set(fingerprint["settings"])
                         if stored["settings"].get(k) != fingerprint["settings"].get(k))
        raise InputError(f"{stored_file}: the trainer checkpoints in {trainer_dir} come from a run with different "
                         f"settings or data (changed: {changed}); delete {trainer_dir} to start over")


def run_fingerprint(settings: dict, dataset_sha256: str) -> dict:
    """What a resumed run must share with the checkpoints: ``settings`` (the settings' provenance
    and the input paths) and the dataset's bytes."""
    relevant = {**settings, "dataset_sha256": dataset_sha256}
    return {"hash": config_hash(relevant), "settings": relevant}


# -- training --------------------------------------------------------------------------

def build_sft_config(job: TrainJob, trainer_dir: Path):
    import torch
    from trl import SFTConfig

    settings = job.settings
    return SFTConfig(
        # Without a GPU, say so: transformers refuses bf16 on an undeclared CPU.
        use_cpu=not torch.cuda.is_available(),
        output_dir=str(trainer_dir),
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.per_device_batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler,
        warmup_steps=settings.warmup_ratio,  # transformers 5: a value below 1 is a ratio of the total steps
        bf16=settings.precision == "bf16",
        fp16=False,
        max_length=settings.max_length,
        packing=settings.packing,
        packing_strategy="bfd",
        pad_to_multiple_of=None,  # no padding positions inside padding-free batches (see progress.py)
        completion_only_loss=True,
        gradient_checkpointing=settings.gradient_checkpointing,
        logging_steps=settings.logging_steps,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=settings.save_total_limit,
        seed=settings.seed,
        data_seed=settings.seed,
        deepspeed=job.deepspeed,
        report_to=tracker(settings.report_to),
        project="trajfusion",
        run_name=str(Path(job.output_dir)),
        dataloader_num_workers=0,
    )


def tracker(name: str) -> str:
    """transformers' ``report_to`` for ``name``, offline by default: wandb records an
    offline run unless WANDB_MODE or an API key says otherwise; trackio keeps its local
    database unless a Space is configured; tensorboard writes event files."""
    if name == "wandb" and "WANDB_MODE" not in os.environ and "WANDB_API_KEY" not in os.environ:
        os.environ["WANDB_MODE"] = "offline"
    return name


def packed_row_fill(dataset, max_length: int) -> float | None:
    """Mean share of ``max_length`` filled by the packed rows (None without packing)."""
    import pyarrow.compute as pc

    if "seq_lengths" not in dataset.column_names or len(dataset) == 0:
        return None
    tokens = pc.sum(pc.list_value_length(dataset.data.column("input_ids"))).as_py()
    return tokens / (len(dataset) * max_length)


def last_logged_loss(log_history: list[dict]) -> float | None:
    losses = [entry["loss"] for entry in log_history if "loss" in entry]
    return float(losses[-1]) if losses else None


def save_final(trainer, final_dir: Path, meta: dict) -> None:
    from trajfusion.train.progress import save_model_atomically

    save_model_atomically(trainer, final_dir, META_NAME, meta)


@dataclass
class TrainingRun:
    """Everything prepared for training, before ``trainer.train()``."""

    job: TrainJob
    trainer: object  # FusedSFTTrainer
    progress: object  # DataProgress
    encoding: object  # EncodingStats
    dataset_sha256: str
    resume_from: Path | None

    @property
    def settings(self) -> TrainSettings:
        return self.job.settings

    @property
    def output_dir(self) -> Path:
        return Path(self.job.output_dir)

    @property
    def global_batch(self) -> int:
        return self.settings.per_device_batch_size * self.settings.grad_accum * self.trainer.args.world_size


def setup_training(job: TrainJob, callbacks: list | None = None) -> TrainingRun:
    """Check the DeepSpeed config, encode the dataset, load the model and build the trainer."""
    if job.deepspeed:
        check_deepspeed(job.deepspeed)
    from trajfusion.templates import load_template
    from trajfusion.train.dataset import build_training_rows, load_fused_examples

    settings = job.settings
    template = load_template(settings.template)
    examples = load_fused_examples(job.dataset)
    dataset_sha256 = sha256_file(job.dataset)
    output_dir = Path(job.output_dir)

    tokenizer = load_tokenizer(job.model)
    rows, encoding = build_training_rows(examples, template, tokenizer, settings.max_length, source=job.dataset,
                                         length_policy=settings.length_policy)
    model = load_model(job.model, settings.rope_scaling, settings.max_length, settings.attn_implementation)
    provenance = {"config_hash": config_hash(settings.provenance()), "versions": library_versions(VERSION_PACKAGES)}
    trainer, progress = _build_trainer(job, model, tokenizer, rows, output_dir, callbacks, provenance)

    trainer_dir = output_dir / TRAINER_DIR
    resume_from = find_resume_checkpoint(trainer_dir)
    if trainer.args.should_save:
        check_resume_settings(trainer_dir, run_fingerprint({**settings.provenance(), **job.inputs()},
                                                           dataset_sha256))
    if resume_from is not None:
        progress.restore(resume_from / "trainer_state.json")
        log.info("resuming from %s (%d examples seen)", resume_from, progress.examples_seen)
    return TrainingRun(job=job, trainer=trainer, progress=progress, encoding=encoding,
                       dataset_sha256=dataset_sha256, resume_from=resume_from)


def run_training(job: TrainJob, callbacks: list | None = None) -> dict:
    """Train as ``job`` says; return the metadata written to train_meta.json."""
    wall_start = time.perf_counter()
    run = setup_training(job, callbacks)
    trainer, settings = run.trainer, job.settings
    log.info("global batch = %d per device x %d accumulation x %d processes = %d %s",
             settings.per_device_batch_size, settings.grad_accum, trainer.args.world_size, run.global_batch,
             _batch_unit(settings))
    resume = str(run.resume_from) if run.resume_from else None
    try:
        output = trainer.train(resume_from_checkpoint=resume)
    except Exception as exc:  # the trainer's own checkpoints: safetensors and torch raise their own types
        if not is_write_failure(exc):
            raise
        raise OutputError(run.output_dir / TRAINER_DIR, exc) from exc
    meta = build_meta(run, output.training_loss, time.perf_counter() - wall_start)
    save_final(trainer, run.output_dir / FINAL_DIR, meta)
    if not settings.keep_trainer_checkpoints and trainer.args.should_save:
        for path in (run.output_dir / TRAINER_DIR).glob("checkpoint-*"):
            shutil.rmtree(path)
    return meta


def _batch_unit(settings: TrainSettings) -> str:
    return "packed rows" if settings.packing else "examples"


def build_meta(run: TrainingRun, train_loss_this_run: float, wall_seconds: float) -> dict:
    job, settings, trainer, progress = run.job, run.settings, run.trainer, run.progress
    config = trainer.model.config
    return {
        "config_hash": config_hash(settings.provenance()),
        "settings": settings.provenance(),
        "dataset": {"path": job.dataset, "sha256": run.dataset_sha256, **run.encoding.as_dict()},
        "model": {"base": job.model, "rope_parameters": config.rope_parameters,
                  "max_position_embeddings": config.max_position_embeddings},
        "deepspeed": job.deepspeed,
        "world_size": trainer.args.world_size,
        "global_batch_size": run.global_batch,
        "global_batch_unit": _batch_unit(settings),
        "versions": library_versions(VERSION_PACKAGES),
        "progress": {"global_step": trainer.state.global_step, "epoch": trainer.state.epoch,
                     "samples_seen": progress.examples_seen, "tokens_seen": progress.tokens_seen,
                     "tokens_fed": progress.tokens_fed, "packing_efficiency": progress.nonpad_fraction,
                     "packed_row_fill": packed_row_fill(trainer.train_dataset, settings.max_length),
                     "train_rows": len(trainer.train_dataset)},
        "final_loss": last_logged_loss(trainer.state.log_history),
        "mean_loss_this_run": train_loss_this_run,
        "checkpoints": {f"ckpt-{n}": progress.saved[str(n)] for n in settings.checkpoints},
        "resume": {"resumed": run.resume_from is not None, "from_step": _step_of(run.resume_from),
                   "from_checkpoint": run.resume_from.name if run.resume_from else None},
        # Wall-clock figures: the only part of this file that differs between identical runs.
        "timing": {"wall_seconds": wall_seconds, "train_seconds": progress.run_seconds,
                   "tokens_this_run": progress.run_tokens,
                   "tokens_per_second": progress.run_tokens / progress.run_seconds if progress.run_seconds else None},
    }


def _step_of(checkpoint: Path | None) -> int | None:
    return int(checkpoint.name.split("-")[1]) if checkpoint else None


def _build_trainer(job: TrainJob, model, tokenizer, rows, output_dir: Path, callbacks, provenance: dict):
    from datasets import Dataset

    from trajfusion.train.progress import SNAPSHOT_DIR, DataProgress, FusedSFTTrainer

    progress = DataProgress(list(job.settings.checkpoints), output_dir, output_dir / TRAINER_DIR / SNAPSHOT_DIR,
                            provenance=provenance)
    trainer = FusedSFTTrainer(model=model, args=build_sft_config(job, output_dir / TRAINER_DIR),
                              train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                              progress=progress, callbacks=callbacks)
    return trainer, progress
