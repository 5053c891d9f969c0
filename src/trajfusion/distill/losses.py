"""The distillation losses as pure functions on torch tensors.

Shapes: ``B`` completions of ``T`` positions, vocabulary ``V``. ``mask`` (B, T) is 1 on the
completion tokens the loss covers (TRL's ``completion_mask``: up to and including the EOS,
0 on the right padding after it) and 0 elsewhere; masked positions never contribute, neither
as a token nor as a following token of a window.

* ``reverse_kl``: per-token KL(student ‖ teacher) over the full (shared) vocabulary, from
  logits. The trainer computes the same quantity from hidden states with TRL's chunked kernel
  (``reverse_kl_from_hidden``) so that the (B, T, V) logits are never materialized; the tests
  check that the two agree.
* ``future_window``: for each position t, the mean divergence over the valid positions among
  t+1 .. t+W of the same row, and how many there are (fewer near the sequence end; none at
  the last valid token).
* ``token_weights``: the per-token loss weights of each method; ``distillation_loss`` the
  weighted sum over ``num_items`` tokens (TRL's gradient-accumulation-correct reduction).

Method definitions (TOPD's public text gives no formula; the concrete choices are this
project's, marked "assumption" in config and docs):

* ``opd``: weight 1 on every completion token (plain per-token reverse KL).
* ``opd_filter``: a token is *high-loss* when its divergence is at least the (1 - q) quantile
  of the batch's completion-token divergences; its near future is *low* when it has at least
  one following token and ``future_window`` mean < ``future_threshold`` x the batch's mean
  divergence. High-loss tokens with a low near future get weight 0, all others 1. A token
  with no following token (the last one) has no near future to judge and is kept.
* ``topd``: g_t = d_t + sum_{j=1..W} gamma^j d_{t+j} m_{t+j} (the divergence from t over the
  next W tokens, discounted), weight w_t = g_t / mean(g) over the batch's completion tokens
  (mean weight 1, so the loss has opd's scale); weights are constants (no gradient). A fork
  followed by drift thus gets a large weight, and so do the tokens of the drift, while an
  isolated surface mismatch keeps only its own divergence. With no divergence anywhere
  (g = 0) the weights fall back to opd's.
"""

from __future__ import annotations

import torch

from trajfusion.distill.settings import LossSettings

# -- per-token divergence -----------------------------------------------------------------

def reverse_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor | None = None,
               temperature: float = 1.0) -> torch.Tensor:
    """(B, T) KL(p_student ‖ p_teacher) per position, 0 where ``mask`` is 0. Both logits must
    cover the same vocabulary (slice a padded one with ``shared_logits`` first)."""
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ in shape; slice both to the shared vocabulary")
    log_ps = torch.log_softmax(student_logits.float() / temperature, dim=-1)
    log_pt = torch.log_softmax(teacher_logits.float() / temperature, dim=-1)
    divergence = (log_ps.exp() * (log_ps - log_pt)).sum(-1)
    return divergence if mask is None else divergence.masked_fill(mask == 0, 0.0)


def shared_logits(logits: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """The first ``vocab_size`` logits: the tokenizer's tokens of an embedding matrix padded
    beyond them (e.g. Qwen2.5's 151,936 or 152,064 rows for 151,665 tokens)."""
    if logits.shape[-1] < vocab_size:
        raise ValueError(f"logits cover {logits.shape[-1]} tokens, fewer than the vocabulary's {vocab_size}")
    return logits[..., :vocab_size]


def reverse_kl_from_hidden(student_hidden: torch.Tensor, student_weight: torch.Tensor,
                           teacher_hidden: torch.Tensor, teacher_weight: torch.Tensor, vocab_size: int,
                           temperature: float = 1.0, student_bias=None,
                           teacher_bias=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``reverse_kl`` of the logits ``hidden @ weight[:vocab_size].T`` (+ bias), through TRL's
    ``ChunkedDivergenceFunction`` (beta = 1: reverse KL), which never materializes the logits.
    Hidden states are (N, H_student) and (N, H_teacher); returns the (N,) divergence, with
    gradients to the student's hidden states and head, and the (N,) student entropy."""
    from trl.kernels.chunked_divergence import ChunkedDivergenceFunction

    def head(weight, bias):
        return weight[:vocab_size], None if bias is None else bias[:vocab_size]

    s_weight, s_bias = head(student_weight, student_bias)
    t_weight, t_bias = head(teacher_weight, teacher_bias)
    return ChunkedDivergenceFunction.apply(student_hidden, s_weight, s_bias, teacher_hidden, t_weight, t_bias, 1.0,
                                           temperature)


# -- the near-future statistic ------------------------------------------------------------

def _following(values: torch.Tensor, window: int) -> torch.Tensor:
    """(B, T, W): values[b, t+1 .. t+W], zero beyond the row's end."""
    shifted = torch.nn.functional.pad(values[:, 1:], (0, window))
    return shifted.unfold(-1, window, 1)


def future_window(divergence: torch.Tensor, mask: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, count), each (B, T): the mean divergence over the valid positions among the next
    ``window`` ones, and how many there are (mean 0 where count is 0 or the position is masked)."""
    valid = (mask != 0).to(divergence.dtype)
    sums = _following(divergence * valid, window).sum(-1)
    counts = _following(valid, window).sum(-1) * valid
    mean = torch.where(counts > 0, sums / counts.clamp(min=1), torch.zeros_like(sums)) * valid
    return mean, counts.to(torch.long)


def discounted_future(divergence: torch.Tensor, mask: torch.Tensor, window: int, discount: float) -> torch.Tensor:
    """(B, T) g_t = d_t + sum_{j=1..W} discount^j d_{t+j} over valid positions (0 where masked)."""
    valid = (mask != 0).to(divergence.dtype)
    masked = divergence * valid
    powers = discount ** torch.arange(1, window + 1, dtype=divergence.dtype, device=divergence.device)
    return (masked + (_following(masked, window) * powers).sum(-1)) * valid


# -- high-loss tokens and the weights -------------------------------------------------------

def high_loss(divergence: torch.Tensor, mask: torch.Tensor, quantile: float) -> torch.Tensor:
    """(B, T) bool: valid tokens whose divergence is at least the (1 - quantile) quantile of
    the valid tokens' divergences (linear interpolation, torch.quantile)."""
    valid = mask != 0
    if not valid.any():
        return valid
    threshold = torch.quantile(divergence[valid].float(), 1.0 - quantile)
    return valid & (divergence >= threshold)


def low_future(divergence: torch.Tensor, mask: torch.Tensor, settings: LossSettings) -> torch.Tensor:
    """(B, T) bool: valid tokens with at least one following token whose next-window mean
    divergence is below ``future_threshold`` x the batch's mean divergence."""
    valid = mask != 0
    mean, count = future_window(divergence, mask, settings.window)
    batch_mean = divergence[valid].mean() if valid.any() else divergence.new_zeros(())
    return valid & (count > 0) & (mean < settings.future_threshold * batch_mean)


def filtered_tokens(divergence: torch.Tensor, mask: torch.Tensor, settings: LossSettings) -> torch.Tensor:
    """(B, T) bool: the high-loss tokens in the low-future-divergence regime (opd_filter drops them)."""
    return high_loss(divergence, mask, settings.high_loss_quantile) & low_future(divergence, mask, settings)


def token_weights(divergence: torch.Tensor, mask: torch.Tensor, settings: LossSettings) -> torch.Tensor:
    """(B, T) loss weights of ``settings.method``, without gradient (see the module docstring)."""
    divergence = divergence.detach()
    valid = (mask != 0).to(divergence.dtype)
    if settings.method == "opd":
        return valid
    if settings.method == "opd_filter":
        return valid * (~filtered_tokens(divergence, mask, settings)).to(divergence.dtype)
    if settings.method == "topd":
        future = discounted_future(divergence, mask, settings.window, settings.discount)
        mean = future.sum() / valid.sum().clamp(min=1)
        return future / mean if mean > 0 else valid
    raise ValueError(f"unknown distillation method {settings.method!r}")


def distillation_loss(divergence: torch.Tensor, mask: torch.Tensor, settings: LossSettings,
                      num_items: torch.Tensor | int | None = None) -> torch.Tensor:
    """sum(weights x divergence) / num_items (default: the number of valid tokens); the
    gradient flows through ``divergence`` only."""
    weights = token_weights(divergence, mask, settings)
    total = (weights * divergence).sum()
    if num_items is None:
        num_items = (mask != 0).sum().clamp(min=1)
    return total / num_items


# -- diagnostics ------------------------------------------------------------------------------

DIAGNOSTICS = ("mean_divergence", "high_loss_low_future_share", "high_loss_tokens", "completion_tokens")


def diagnostics(divergence: torch.Tensor, mask: torch.Tensor, settings: LossSettings) -> dict[str, float]:
    """The mean per-token divergence over completion tokens, the number of high-loss tokens and
    the share of them in the low-future-divergence regime (TOPD's ~30% statistic; NaN with no
    high-loss token), and the number of completion tokens."""
    divergence = divergence.detach()
    valid = mask != 0
    n_valid = int(valid.sum())
    high = high_loss(divergence, mask, settings.high_loss_quantile)
    n_high = int(high.sum())
    n_filtered = int((high & low_future(divergence, mask, settings)).sum())
    return {"mean_divergence": float(divergence[valid].mean()) if n_valid else float("nan"),
            "high_loss_low_future_share": n_filtered / n_high if n_high else float("nan"),
            "high_loss_tokens": float(n_high), "completion_tokens": float(n_valid)}
