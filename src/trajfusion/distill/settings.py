"""Settings of ``trajfusion distill`` (``DistillSettings``, declared once: trajfusion.settings).

``LossSettings`` holds what the pure loss functions of ``trajfusion.distill.losses`` read
(the method, the window, the quantile, the threshold, the discount); ``DistillSettings`` adds
the on-policy training run. TOPD's public text gives none of these values: every default
below marked "assumption" is this project's choice.
"""

from __future__ import annotations

from dataclasses import dataclass

from trajfusion.settings import Settings, between, positive, setting
from trajfusion.vocabulary import DISTILL_METHODS as METHODS

PRECISIONS = ("fp32", "bf16")
# Where the student samples: transformers' generate (hf) or vLLM colocated on the job's GPU
# (TRL's use_vllm, vllm_mode "colocate"); the teacher always scores in the job, on the same GPU.
BACKENDS = ("hf", "vllm")


def _open_unit(value: float) -> str | None:
    return None if 0.0 < value < 1.0 else "must be in (0, 1)"


def _unit(value: float) -> str | None:
    return None if 0.0 <= value <= 1.0 else "must be in [0, 1]"


@dataclass(frozen=True)
class LossSettings(Settings):
    method: str = setting("opd", help="distillation loss: opd (per-token reverse KL), opd_filter (opd without "
                          "high-loss tokens whose next-window divergence is low), topd (tokens weighted by "
                          "their discounted near-future divergence)", choices=METHODS)
    # Assumption: 8 tokens, about one short phrase (TOPD: "short-horizon drift", no value given).
    window: int = setting(8, help="next tokens the future-divergence statistic covers (W)", check=positive)
    # Assumption: the top 20% of per-token divergences of a batch are "high-loss".
    high_loss_quantile: float = setting(0.2, help="share q of a batch's completion tokens, by per-token "
                                        "divergence, that count as high-loss", check=_open_unit)
    # Assumption: "low future divergence" = the mean divergence of the next W tokens below this
    # multiple of the batch's mean per-token divergence (relative, so it does not depend on the
    # scale of one model pair's divergences).
    future_threshold: float = setting(1.0, help="a token's next-W-token divergence is low when below this "
                                      "multiple of the batch's mean per-token divergence", check=positive)
    # Assumption: gamma = 0.9 (tinker-cookbook's kl_discount_factor is the public analogue; no TOPD value).
    discount: float = setting(0.9, help="topd: discount gamma of the future divergence in a token's weight",
                              check=_unit)


@dataclass(frozen=True, kw_only=True)  # keyword-only: required fields after LossSettings' defaults
class DistillSettings(LossSettings):
    template: str = setting(help="prompt template name of the student (resources/templates.yaml)")
    seed: int = setting(help="training seed (problem order, sampling, dropout)")
    learning_rate: float = setting(1e-6, help="peak learning rate", check=positive)
    max_steps: int = setting(100, help="optimizer steps", check=positive)
    per_device_batch_size: int = setting(4, help="completions per device and micro-batch", check=positive)
    grad_accum: int = setting(1, help="gradient accumulation steps", check=positive)
    max_completion_length: int = setting(1024, help="tokens the student samples per completion", check=positive)
    temperature: float = setting(1.0, help="student sampling temperature (also the divergence's softmax "
                                 "temperature, as in TRL)", check=positive)
    top_p: float = setting(1.0, help="student sampling top-p", check=between(0.0, 1.0))
    lr_scheduler: str = setting("constant", help="learning-rate schedule",
                                choices=("cosine", "linear", "constant"))
    precision: str = setting("fp32", help="training precision", choices=PRECISIONS)
    gradient_checkpointing: bool = setting(False, help="recompute activations in the backward pass")
    logging_steps: int = setting(1, help="log the loss and diagnostics every N optimizer steps", check=positive,
                                 affects_output=False)
    backend: str = setting("hf", help="student sampling: hf (transformers generate) or vllm (vLLM colocated on "
                           "the job's GPU, TRL's use_vllm; needs a GPU and the vllm extra)", choices=BACKENDS)
    # Assumption: TRL's default share; the student, its optimizer states and the teacher use the rest.
    vllm_gpu_memory_utilization: float = setting(0.3, help="vllm: share of the GPU's memory vLLM reserves",
                                                 check=_open_unit)
    repeat_batch: bool = setting(False, help="train on the same sampled batch at every step (a diagnostic: "
                                 "the loss on a fixed batch must fall)")

    def loss_settings(self) -> LossSettings:
        return LossSettings(method=self.method, window=self.window, high_loss_quantile=self.high_loss_quantile,
                            future_threshold=self.future_threshold, discount=self.discount)
