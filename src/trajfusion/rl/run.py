"""One GRPO / TAPO-GRPO run: the pool as prompts, TRL's GRPOConfig, training, the saved model.

Prompts are the backbone's template rendered as text (``Template.render_prompt``), as SFT and
evaluation render them; TRL tokenizes a text prompt with the tokenizer's default special
tokens. Outputs under ``--output-dir``: ``final/`` (model safetensors, tokenizer and
``grpo_meta.json``: settings, config hash, library versions, the logged metrics per step, and
in TAPO mode the constructed trajectories' summary), ``tapo_constructed.jsonl`` (TAPO mode:
every constructed trajectory with its reward, group statistics, advantage and trained-token
count) and ``trainer/`` (TRL's working folder). ``final/`` is a model directory like the train
stage's, so the evaluation rules read it unchanged.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from trajfusion.io import InputError, config_hash, library_versions, sha256_file
from trajfusion.rl.settings import GRPOJob, GRPOSettings

log = logging.getLogger(__name__)

FINAL_DIR = "final"
TRAINER_DIR = "trainer"
META_NAME = "grpo_meta.json"
CONSTRUCTED_NAME = "tapo_constructed.jsonl"
VERSION_PACKAGES = ("trajfusion", "torch", "transformers", "trl", "accelerate", "datasets", "math-verify")


def load_prompts(pool_path: str, template_name: str, tokenizer) -> list[dict]:
    """The pool's problems as GRPO rows: the rendered prompt plus what the reward reads."""
    from trajfusion import contracts
    from trajfusion.templates import load_template

    template = load_template(template_name)
    table = contracts.read(pool_path, contracts.PROBLEMS)
    if table.empty:
        raise InputError(f"{pool_path}: the pool has no problems")
    rows = []
    for record in table.itertuples(index=False):
        answer_type = getattr(record, "answer_type", None)
        rows.append({"prompt": template.render_prompt(record.problem, tokenizer), "problem": record.problem,
                     "problem_id": record.problem_id, "answer": record.answer,
                     "answer_type": answer_type if isinstance(answer_type, str) else None})
    return rows


def build_config(settings: GRPOSettings, trainer_dir: Path):
    import torch
    from trl import GRPOConfig

    from trajfusion.train.trainer import tracker

    return GRPOConfig(
        use_cpu=not torch.cuda.is_available(),
        output_dir=str(trainer_dir),
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.per_device_batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        # One generation per micro-step: TAPO's appended rows must stay in their micro-batch.
        steps_per_generation=1,
        num_generations=settings.num_generations,
        max_completion_length=settings.max_completion_length,
        temperature=settings.temperature,
        top_p=settings.top_p,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="constant",
        beta=settings.beta,
        epsilon=settings.epsilon,
        loss_type=settings.loss_type,
        scale_rewards=settings.scale_rewards,
        bf16=settings.precision == "bf16",
        fp16=False,
        gradient_checkpointing=settings.gradient_checkpointing,
        logging_steps=settings.logging_steps,
        save_strategy="no",
        seed=settings.seed,
        data_seed=settings.seed,
        report_to=tracker(settings.report_to),
        dataloader_num_workers=0,
        log_completions=False,
    )


def build_trainer(job: GRPOJob):
    from datasets import Dataset

    from trajfusion.rl.construct import get_constructor
    from trajfusion.rl.reward import VerifierReward
    from trajfusion.rl.trainer import TAPOGRPOTrainer, TapoOptions
    from trajfusion.train.trainer import load_model, load_tokenizer

    settings = job.settings
    tokenizer = load_tokenizer(job.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    rows = load_prompts(job.pool, settings.template, tokenizer)
    # max_length 1: the train stage's window check does not apply (rollouts are bounded by TRL).
    model = load_model(job.model, None, 1, settings.attn_implementation)
    tapo, constructor = None, None
    if settings.mode == "tapo":
        constructor = get_constructor(settings.constructor)
        tapo = TapoOptions(band_low=settings.band_low, band_high=settings.band_high,
                           ood_min_prob=settings.ood_min_prob,
                           max_constructed_length=settings.max_constructed_length,
                           incorrect_choice=settings.incorrect_choice,
                           correct_choice=settings.correct_choice, scale=settings.scale_rewards == "group")
    reward = VerifierReward(workers=settings.verify_workers, timeout=settings.verify_timeout,
                            grader=settings.grader)
    return TAPOGRPOTrainer(model=model, reward_funcs=[reward], args=build_config(settings, Path(job.output_dir)
                                                                                 / TRAINER_DIR),
                           train_dataset=Dataset.from_list(rows), processing_class=tokenizer, tapo=tapo,
                           constructor=constructor)


def run_grpo(job: GRPOJob) -> dict:
    """Train as ``job`` says; return the metadata written to final/grpo_meta.json."""
    from trajfusion.train.progress import save_model_atomically

    if job.settings.num_gpus > 1:
        raise InputError(f"--num-gpus {job.settings.num_gpus}: trajfusion grpo trains in one process; the "
                         "multi-GPU (accelerate/DeepSpeed) launch is not wired in yet")
    wall_start = time.perf_counter()
    trainer = build_trainer(job)
    output = trainer.train()
    out_dir = Path(job.output_dir)
    if job.settings.mode == "tapo":
        trainer.write_constructed(out_dir / CONSTRUCTED_NAME)
    meta = build_meta(job, trainer, output.training_loss, time.perf_counter() - wall_start)
    save_model_atomically(trainer, out_dir / FINAL_DIR, META_NAME, meta)
    return meta


def build_meta(job: GRPOJob, trainer, mean_loss: float, wall_seconds: float) -> dict:
    settings = job.settings
    constructed = [item.record() for item in trainer.constructed]
    return {
        "config_hash": config_hash(settings.provenance()),
        "settings": settings.provenance(),
        "model": {"start": job.model},
        "pool": {"path": job.pool, "sha256": sha256_file(job.pool)},
        "versions": library_versions(VERSION_PACKAGES),
        "progress": {"global_step": trainer.state.global_step},
        "log_history": trainer.state.log_history,
        "mean_loss": mean_loss,
        "tapo": None if settings.mode != "tapo" else {
            "constructor": settings.constructor, "constructed": len(constructed),
            "positive_advantage": sum(item["advantage"] > 0 for item in constructed),
            "trained_tokens": sum(item["trained_tokens"] for item in constructed),
            "tokens": sum(item["tokens"] for item in constructed)},
        "timing": {"wall_seconds": wall_seconds},
    }

