"""Count what the model is trained on, and save models at fixed data intervals.

:class:`DataProgress` counts the *examples* (not packed sequences) and tokens in every
micro-batch the trainer feeds the model. :class:`FusedSFTTrainer` reports each
micro-batch to it from ``compute_loss``, counting examples from the batch itself:

* padded batches (``--no-packing``): one example per row; real tokens are the
  attention mask's ones;
* padding-free packed batches (``--packing``): TRL concatenates the packed rows into one
  row whose ``position_ids`` restart at 0 at every example, so the examples are the
  positions where ``position_ids == 0``. This holds because examples are truncated to
  ``max_length`` before packing (TRL's ``bfd`` strategy then never splits one) and
  ``pad_to_multiple_of`` is off, so there are no padding positions.

Counts are summed over all processes, so ``examples_seen`` is global.

When ``examples_seen`` first reaches a configured count ``n`` after an optimizer step, the
model and tokenizer are saved to ``OUTPUT_DIR/trainer/snapshots/ckpt-{n}`` and published
as ``OUTPUT_DIR/ckpt-{n}`` by hard links (no second copy on disk). The snapshot survives a
scheduler that deletes the declared outputs of a failed job (Snakemake does), so a resumed
run re-publishes it instead of losing it. Counts not reached by the end of the first
epoch (a dataset smaller than ``n``) are saved then, and any still pending when training
stops (``--max-steps``) are saved at the end; each snapshot's ``ckpt_meta.json`` records
which case applied. The counters live in the trainer's ``trainer_state.json`` (as an
``ExportableState`` callback), so they resume with the trainer checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import ExportableState
from trl import SFTTrainer

from trajfusion.io import OutputError, write_json

log = logging.getLogger(__name__)

SNAPSHOT_DIR = "snapshots"
CKPT_META = "ckpt_meta.json"


def checkpoint_name(n: int) -> str:
    return f"ckpt-{n}"


def batch_counts(inputs: dict) -> tuple[int, int, int]:
    """(examples, real tokens, tokens fed including padding) of one collated micro-batch."""
    input_ids = inputs["input_ids"]
    if "attention_mask" in inputs:
        return int(input_ids.shape[0]), int(inputs["attention_mask"].sum()), int(input_ids.numel())
    position_ids = inputs["position_ids"]
    return int((position_ids == 0).sum()), int(position_ids.numel()), int(position_ids.numel())


def publish_snapshot(snapshot: Path, public: Path) -> bool:
    """Hard-link ``snapshot``'s files into ``public`` (atomically); False if it already exists."""
    if public.exists():
        return False
    tmp = public.with_name(f".{public.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(snapshot, tmp, copy_function=_link_or_copy)
    os.replace(tmp, public)
    return True


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(src, dst)


def save_model_dir(trainer, directory: Path) -> None:
    """Save model + tokenizer for inference; every process must call it (DeepSpeed gathers weights)."""
    trainer.save_model(str(directory))
    if trainer.args.should_save:
        # A pickle of the TrainingArguments: not needed to load the model, and it embeds paths.
        (directory / "training_args.bin").unlink(missing_ok=True)


def save_model_atomically(trainer, public: Path, meta_name: str, meta: dict) -> None:
    """Save the model and ``meta`` into a hidden folder next to ``public``, then rename it onto
    ``public``. A failed save (disk full, read-only: safetensors and torch raise their own
    error types) removes the hidden folder and raises ``OutputError`` naming ``public``;
    an earlier ``public`` is left as it was."""
    tmp = public.with_name(f".{public.name}.tmp")
    if trainer.args.should_save:
        shutil.rmtree(tmp, ignore_errors=True)  # left over by a killed run
    trainer.accelerator.wait_for_everyone()
    try:
        save_model_dir(trainer, tmp)
        if trainer.args.should_save:
            write_json(meta, tmp / meta_name)
            shutil.rmtree(public, ignore_errors=True)
            os.replace(tmp, public)
    except Exception as exc:
        if trainer.args.should_save:
            shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(public, exc) from exc
    trainer.accelerator.wait_for_everyone()


class DataProgress(TrainerCallback, ExportableState):
    """Examples/tokens seen, and the ``ckpt-{n}`` models saved at fixed example counts."""

    def __init__(self, targets: list[int], output_dir: str | Path, snapshot_dir: str | Path,
                 provenance: dict | None = None):
        self.provenance = provenance or {}  # config hash and library versions, recorded in each ckpt_meta.json
        self.targets = sorted(set(int(n) for n in targets))
        self.output_dir = Path(output_dir)
        self.snapshot_dir = Path(snapshot_dir)
        self.examples_seen = 0
        self.tokens_seen = 0
        self.tokens_fed = 0
        self.saved: dict[str, dict] = {}
        self.trainer: FusedSFTTrainer | None = None
        self._run_start: tuple[float, int] | None = None
        self.run_seconds = 0.0
        self.run_tokens = 0

    # -- state carried in trainer checkpoints ---------------------------------------
    def state(self) -> dict:
        return {"args": {"targets": self.targets},
                "attributes": {"examples_seen": self.examples_seen, "tokens_seen": self.tokens_seen,
                               "tokens_fed": self.tokens_fed, "saved": self.saved}}

    def restore(self, trainer_state_file: str | Path) -> None:
        """Load the counters stored in a trainer checkpoint's ``trainer_state.json``."""
        stored = json.loads(Path(trainer_state_file).read_text())["stateful_callbacks"]
        attributes = stored[type(self).__name__]["attributes"]
        self.examples_seen = int(attributes["examples_seen"])
        self.tokens_seen = int(attributes["tokens_seen"])
        self.tokens_fed = int(attributes["tokens_fed"])
        self.saved = dict(attributes["saved"])

    # -- counting -------------------------------------------------------------------
    def add(self, examples: int, real_tokens: int, fed_tokens: int) -> None:
        self.examples_seen += examples
        self.tokens_seen += real_tokens
        self.tokens_fed += fed_tokens

    def pending(self) -> list[int]:
        return [n for n in self.targets if str(n) not in self.saved]

    @property
    def nonpad_fraction(self) -> float | None:
        return self.tokens_seen / self.tokens_fed if self.tokens_fed else None

    # -- events ---------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        self._run_start = (time.perf_counter(), self.tokens_seen)
        for n in self.targets:
            if str(n) in self.saved:
                self._publish(n)

    def on_step_end(self, args, state, control, **kwargs):
        for n in self.pending():
            if self.examples_seen >= n:
                self._save(n, state, "reached")
            elif state.epoch >= 1.0:
                self._save(n, state, "end_of_epoch_1")

    def on_train_end(self, args, state, control, **kwargs):
        for n in self.pending():
            self._save(n, state, "end_of_training")
        if self._run_start is not None:
            start, tokens = self._run_start
            self.run_seconds = time.perf_counter() - start
            self.run_tokens = self.tokens_seen - tokens

    # -- saving ---------------------------------------------------------------------
    def _save(self, n: int, state, reason: str) -> None:
        record = {"target_examples": n, "examples_seen": self.examples_seen, "global_step": state.global_step,
                  "epoch": state.epoch, "reason": reason}
        save_model_atomically(self.trainer, self.snapshot_dir / checkpoint_name(n), CKPT_META,
                              {**self.provenance, **record})
        self.saved[str(n)] = record
        log.info("saved %s after %d examples (step %d, %s)", checkpoint_name(n), self.examples_seen,
                 state.global_step, reason)
        self._publish(n)

    def _publish(self, n: int) -> None:
        if not self.trainer.args.should_save:
            return
        public = self.output_dir / checkpoint_name(n)
        if not publish_snapshot(self.snapshot_dir / checkpoint_name(n), public):
            log.info("%s already exists; kept as is", public)


class FusedSFTTrainer(SFTTrainer):
    """TRL's SFTTrainer that reports every training micro-batch to a :class:`DataProgress`."""

    def __init__(self, *args, progress: DataProgress, callbacks: list | None = None, **kwargs):
        super().__init__(*args, callbacks=[progress, *(callbacks or [])], **kwargs)
        self.progress = progress
        progress.trainer = self

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training:
            counts = torch.tensor(batch_counts(inputs), device=inputs["input_ids"].device)
            self.progress.add(*(int(c) for c in self.accelerator.reduce(counts, reduction="sum")))
        # The plain transformers loss (token-mean NLL over unmasked labels). SFTTrainer's own
        # compute_loss goes through a fused, chunked LM-head kernel built for GPU memory; on CPU
        # its backward tiles cost ~0.1 s each and made a tiny model train at ~1 step/s.
        return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                    num_items_in_batch=num_items_in_batch)
