"""The on-policy distillation run on TRL's ``DistillationTrainer``.

``TopdDistillationTrainer`` keeps TRL's on-policy loop (the student samples completions of
the pool's problems, generation batches are buffered over gradient accumulation) and
replaces its loss: the per-token reverse KL comes from TRL's chunked kernel over the
tokenizer's shared vocabulary (``losses.reverse_kl_from_hidden``), and ``method`` weights it
(``losses.token_weights``). Every micro-batch's diagnostics (``losses.diagnostics``) go to the
trainer's metrics, which TRL averages into each logging step's ``log_history`` entry; a
callback appends each entry to ``trainer/diagnostics.jsonl`` as training runs.

Two departures from TRL, both on purpose:

* TRL refuses a teacher whose ``vocab_size`` (embedding rows) differs from the student's; a
  pair sharing the tokenizer but padding the embeddings differently is legitimate
  (``trajfusion.distill.vocab``), so the teacher is prepared here instead and only the first
  ``vocab_size`` logits are compared.
* Text prompts are encoded with the project's BOS rule (``trajfusion.templates.encode_prompts``),
  as in sampling and evaluation, instead of the tokenizer's default special tokens.

Outputs under ``--output-dir``: ``final/`` (model safetensors, tokenizer, ``distill_meta.json``),
``diagnostics.jsonl`` (one record per logging step: step, loss, the diagnostics) and
``trainer/`` (TRL's working folder). Trainer checkpoints and resume are not implemented: a
distillation run restarts from the start.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

from trajfusion.distill import losses
from trajfusion.distill.settings import DistillSettings
from trajfusion.io import InputError, config_hash, library_versions, write_jsonl

log = logging.getLogger(__name__)

TRAINER_DIR = "trainer"
FINAL_DIR = "final"
META_NAME = "distill_meta.json"
DIAGNOSTICS_NAME = "diagnostics.jsonl"
# The log_history keys kept in diagnostics.jsonl: the deterministic ones (no wall times).
LOGGED_KEYS = ("step", "epoch", "loss", "grad_norm", "learning_rate", "entropy", *losses.DIAGNOSTICS)
VERSION_PACKAGES = ("trajfusion", "torch", "transformers", "trl", "accelerate", "datasets")


@dataclass(frozen=True)
class DistillJob:
    """One distillation run: the student, the teacher, the pool, the output folder, the settings."""

    student: str
    teacher: str
    pool: str
    output_dir: str
    settings: DistillSettings

    def inputs(self) -> dict:
        return {"student": self.student, "teacher": self.teacher, "pool": self.pool}


def _trainer_class():
    import torch
    from transformers import TrainerCallback
    from trl import DistillationTrainer

    from trajfusion.templates import encode_prompts

    class DiagnosticsLog(TrainerCallback):
        """Append each logging step's record to a JSONL file (the run's live trace)."""

        def __init__(self, path: Path):
            self.path = path

        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs and "loss" in logs:  # not the end-of-run summary
                record = logged_record({**logs, "step": state.global_step, "epoch": state.epoch})
                with self.path.open("a") as handle:
                    handle.write(json.dumps(record) + "\n")

    class TopdDistillationTrainer(DistillationTrainer):
        def __init__(self, *, teacher_model, loss_settings, vocab_size: int, repeat_batch: bool = False,
                     diagnostics_file: Path | None = None, callbacks=None, **kwargs):
            extra = [DiagnosticsLog(diagnostics_file)] if diagnostics_file else []
            super().__init__(teacher_model=None, callbacks=[*extra, *(callbacks or [])], **kwargs)
            self.teacher_model = self.accelerator.prepare_model(teacher_model, evaluation_mode=True)
            self.loss_settings = loss_settings
            self.vocab_size = vocab_size
            self.repeat_batch = repeat_batch

        def _tokenize_prompts(self, prompts: list):
            if isinstance(prompts[0], str):
                return encode_prompts(self.processing_class, prompts), None, {}
            return super()._tokenize_prompts(prompts)

        def _prepare_inputs(self, generation_batch):
            if self.repeat_batch and self.model.training and self._buffered_inputs is not None:
                return self._buffered_inputs[self._step % self.args.gradient_accumulation_steps]
            return super()._prepare_inputs(generation_batch)

        def _compute_loss(self, unwrapped_student, inputs, num_items_in_batch):
            input_ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
            attention_mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
            mask = inputs["completion_mask"]
            if "tool_mask" in inputs:
                mask = mask * inputs["tool_mask"]
            keep = inputs["completion_ids"].size(1)
            student_hidden = self._get_last_hidden_state(unwrapped_student, input_ids, attention_mask, keep)
            self.teacher_model.eval()
            teacher = self.accelerator.unwrap_model(self.teacher_model)
            with torch.no_grad():
                teacher_hidden = self._get_last_hidden_state(teacher, input_ids, attention_mask, keep)
            student_head, teacher_head = unwrapped_student.get_output_embeddings(), teacher.get_output_embeddings()
            batch, length = mask.shape
            divergence, entropy = losses.reverse_kl_from_hidden(
                student_hidden.reshape(batch * length, -1), student_head.weight,
                teacher_hidden.reshape(batch * length, -1).to(student_hidden.device), teacher_head.weight,
                self.vocab_size, temperature=self.temperature, student_bias=student_head.bias,
                teacher_bias=teacher_head.bias)
            divergence = divergence.reshape(batch, length).masked_fill(mask == 0, 0.0)
            loss = losses.distillation_loss(divergence, mask, self.loss_settings, num_items_in_batch)
            mode = "train" if self.model.training else "eval"
            for key, value in losses.diagnostics(divergence, mask, self.loss_settings).items():
                self._metrics[mode][key].append(value)
            entropy_sum = entropy.reshape(batch, length).masked_fill(mask == 0, 0.0).sum()
            return loss, entropy_sum.detach(), (mask != 0).sum()

    return TopdDistillationTrainer


def logged_record(entry: dict) -> dict:
    """The deterministic keys of a log_history entry, NaN as null (JSON has no NaN)."""
    return {key: (None if isinstance(entry[key], float) and math.isnan(entry[key]) else entry[key])
            for key in LOGGED_KEYS if key in entry}


def build_config(settings: DistillSettings, trainer_dir: Path):
    import torch
    from trl import DistillationConfig

    return DistillationConfig(
        use_cpu=not torch.cuda.is_available(),
        output_dir=str(trainer_dir),
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.per_device_batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler,
        bf16=settings.precision == "bf16",
        max_completion_length=settings.max_completion_length,
        temperature=settings.temperature,
        top_p=settings.top_p,
        gradient_checkpointing=settings.gradient_checkpointing,
        logging_steps=settings.logging_steps,
        save_strategy="no",
        seed=settings.seed,
        data_seed=settings.seed,
        report_to="none",
        dataloader_num_workers=0,
        use_vllm=settings.backend == "vllm",
        vllm_mode="colocate",
        vllm_gpu_memory_utilization=settings.vllm_gpu_memory_utilization,
    )


def check_backend(settings: DistillSettings) -> None:
    """vLLM sampling needs a GPU and the vllm package; say so before any model is loaded."""
    if settings.backend != "vllm":
        return
    import torch
    from trl.import_utils import is_vllm_available

    if not torch.cuda.is_available():
        raise InputError("--settings backend 'vllm': vLLM samples on a GPU and this job sees none "
                         "(set distillation.num_gpus: 1, or backend: hf)")
    if not is_vllm_available():
        raise InputError("--settings backend 'vllm': the vllm package is not installed (pip install -e '.[vllm]'; "
                         "the rule's conda env envs/vllm.yaml has it)")


def load_pool_prompts(pool_path: str, template_name: str, tokenizer):
    """The pool's problems rendered with the student's template: a ``prompt`` dataset."""
    from datasets import Dataset

    from trajfusion.contracts import PROBLEMS, read
    from trajfusion.templates import load_template

    table = read(pool_path, PROBLEMS, columns=["problem_id", "problem"])
    if table.empty:
        raise InputError(f"{pool_path}: the pool has no problems")
    template = load_template(template_name)
    return Dataset.from_dict({"prompt": [template.render_prompt(p, tokenizer) for p in table["problem"]]})


# Logit transforms TRL's own loss applies and this stage's does not (it would compare other distributions).
LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier",
                    "logits_scaling")


def load_causal_lm(path: str, role: str, dtype: str = "fp32"):
    """A student (fp32 master weights; bf16 trains under autocast) or a teacher (no gradient:
    bf16 weights under --precision bf16)."""
    import torch
    from transformers import AutoModelForCausalLM

    from trajfusion.io import check_model_dir

    if Path(path).is_dir():
        check_model_dir(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16 if dtype == "bf16" else torch.float32)
    config = model.config.get_text_config()
    used = [name for name in LOGIT_TRANSFORMS if getattr(config, name, None) not in (None, 1, 1.0)]
    if used:
        raise InputError(f"--{role} {path}: the model transforms its logits ({', '.join(used)}), which the "
                         "distillation loss does not apply; only plain lm_head logits are supported")
    return model


def build_trainer(job: DistillJob, vocab_size: int):
    from transformers import AutoTokenizer

    settings = job.settings
    output_dir = Path(job.output_dir)
    trainer_dir = output_dir / TRAINER_DIR
    trainer_dir.mkdir(parents=True, exist_ok=True)
    live_log = trainer_dir / DIAGNOSTICS_NAME
    live_log.unlink(missing_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(job.student, padding_side="left")
    dataset = load_pool_prompts(job.pool, settings.template, tokenizer)
    trainer_class = _trainer_class()
    student = load_causal_lm(job.student, "student")
    teacher = load_causal_lm(job.teacher, "teacher", settings.precision)
    return trainer_class(model=student, teacher_model=teacher,
                         args=build_config(settings, trainer_dir), train_dataset=dataset,
                         processing_class=tokenizer, loss_settings=settings.loss_settings(),
                         vocab_size=vocab_size, repeat_batch=settings.repeat_batch, diagnostics_file=live_log)


def run_distillation(job: DistillJob) -> dict:
    """Check the pair, train, write ``final/`` and ``diagnostics.jsonl``; return the metadata."""
    from trajfusion.distill.vocab import shared_vocab_size
    from trajfusion.train.progress import save_model_atomically

    wall_start = time.perf_counter()
    check_backend(job.settings)
    vocab_size = shared_vocab_size(job.student, job.teacher)
    trainer = build_trainer(job, vocab_size)
    output = trainer.train()
    records = [logged_record(entry) for entry in trainer.state.log_history if "loss" in entry]
    meta = {"config_hash": config_hash(job.settings.provenance()), "settings": job.settings.provenance(),
            "inputs": job.inputs(), "shared_vocab_size": vocab_size,
            "versions": library_versions(VERSION_PACKAGES),
            "progress": {"global_step": trainer.state.global_step},
            "final_loss": records[-1]["loss"] if records else None, "mean_loss": output.training_loss,
            "timing": {"wall_seconds": time.perf_counter() - wall_start}}
    output_dir = Path(job.output_dir)
    if trainer.args.should_save:
        write_jsonl(records, output_dir / DIAGNOSTICS_NAME)
    save_model_atomically(trainer, output_dir / FINAL_DIR, META_NAME, meta)
    return meta
