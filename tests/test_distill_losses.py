"""The distillation losses (trajfusion.distill.losses) on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from trajfusion.distill import losses
from trajfusion.distill.settings import LossSettings


def settings(method: str = "opd", **changes) -> LossSettings:
    values = {"window": 2, "high_loss_quantile": 0.25, "future_threshold": 1.0, "discount": 0.5, **changes}
    return LossSettings(method=method, **values)


def t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


# -- reverse KL -----------------------------------------------------------------------

def test_reverse_kl_hand_computed():
    # position 0: p_s = (1/2, 1/2), p_t = (1/4, 3/4): KL = 1/2 ln 2 + 1/2 ln(2/3) = 1/2 ln(4/3)
    # position 1: identical distributions: 0
    # position 2: p_s = (1/4, 1/4, 1/2) over 3 tokens vs uniform: 1/2 ln(3/4) + 1/2 ln(3/2) = 1/2 ln(9/8)
    # (-1e4: a token both give numerically zero probability at position 0)
    student = t([[[0.0, 0.0, -1e4], [1.0, 2.0, 3.0], [0.0, 0.0, math.log(2)]]])
    teacher = t([[[0.0, math.log(3), -1e4], [1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]])
    kl = losses.reverse_kl(student, teacher)
    assert kl[0].tolist() == pytest.approx([0.5 * math.log(4 / 3), 0.0, 0.5 * math.log(9 / 8)], abs=1e-6)


def test_reverse_kl_is_zero_on_masked_positions_and_not_symmetric():
    student, teacher = t([[[0.0, 0.0], [0.0, 0.0]]]), t([[[0.0, math.log(3)], [0.0, math.log(3)]]])
    kl = losses.reverse_kl(student, teacher, mask=torch.tensor([[1, 0]]))
    assert kl[0].tolist() == pytest.approx([0.5 * math.log(4 / 3), 0.0], abs=1e-6)
    forward = losses.reverse_kl(teacher, student)[0, 0]  # KL(p_t || p_s) = 1/4 ln(1/2) + 3/4 ln(3/2)
    assert float(forward) == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5), abs=1e-6)


def test_reverse_kl_temperature_scales_both_logits():
    student, teacher = t([[[0.0, 0.0]]]), t([[[0.0, 2 * math.log(3)]]])
    assert float(losses.reverse_kl(student, teacher, temperature=2.0)[0, 0]) == pytest.approx(
        0.5 * math.log(4 / 3), abs=1e-6)


def test_reverse_kl_refuses_different_vocabularies():
    with pytest.raises(ValueError, match="shared vocabulary"):
        losses.reverse_kl(torch.zeros(1, 2, 5), torch.zeros(1, 2, 6))


def test_shared_logits_slices_the_padding():
    logits = torch.arange(12.0).reshape(1, 2, 6)
    assert losses.shared_logits(logits, 4).shape == (1, 2, 4)
    with pytest.raises(ValueError, match="fewer than"):
        losses.shared_logits(logits, 7)


def test_trl_kernel_agrees_with_logits_and_uses_the_shared_part():
    """reverse_kl_from_hidden (TRL's ChunkedDivergenceFunction, beta=1) = reverse_kl of the sliced
    logits, in value and in the student's gradients; the padded rows do not matter."""
    generator = torch.Generator().manual_seed(0)
    hidden_s = torch.randn(5, 4, generator=generator, requires_grad=True)
    hidden_t = torch.randn(5, 3, generator=generator)
    weight_s = torch.randn(9, 4, generator=generator, requires_grad=True)  # 7 shared rows + 2 padding
    weight_t = torch.randn(8, 3, generator=generator)  # 7 shared rows + 1 padding
    kernel, _entropy = losses.reverse_kl_from_hidden(hidden_s, weight_s, hidden_t, weight_t, vocab_size=7)
    direct = losses.reverse_kl((hidden_s @ weight_s[:7].T)[None], (hidden_t @ weight_t[:7].T)[None])[0]
    assert kernel.tolist() == pytest.approx(direct.tolist(), abs=1e-5)
    scale = torch.arange(1.0, 6.0)
    grads_kernel = torch.autograd.grad((kernel * scale).sum(), (hidden_s, weight_s))
    grads_direct = torch.autograd.grad((direct * scale).sum(), (hidden_s, weight_s))
    for a, b in zip(grads_kernel, grads_direct, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    assert torch.all(grads_kernel[1][7:] == 0)  # padding rows get no gradient


# -- the near-future window -------------------------------------------------------------

def test_future_window_full_rows_and_sequence_end():
    mean, count = losses.future_window(t([[1, 2, 3, 4]]), torch.ones(1, 4), window=2)
    assert mean[0].tolist() == [2.5, 3.5, 4.0, 0.0]  # (2+3)/2, (3+4)/2, 4 alone, nothing follows
    assert count[0].tolist() == [2, 2, 1, 0]


def test_future_window_skips_padding_and_masked_tokens():
    d = t([[1, 2, 3, 9]])  # the 9 is padding after the EOS
    mean, count = losses.future_window(d, torch.tensor([[1, 1, 1, 0]]), window=2)
    assert mean[0].tolist() == [2.5, 3.0, 0.0, 0.0] and count[0].tolist() == [2, 1, 0, 0]
    mean, count = losses.future_window(t([[1, 5, 3, 4]]), torch.tensor([[1, 0, 1, 1]]), window=2)
    assert mean[0].tolist() == [3.0, 0.0, 4.0, 0.0] and count[0].tolist() == [1, 0, 1, 0]


def test_future_window_stays_in_its_row_and_allows_windows_past_the_end():
    mean, _ = losses.future_window(t([[1, 2, 3], [10, 20, 30]]), torch.ones(2, 3), window=10)
    assert mean.tolist() == [[2.5, 3.0, 0.0], [25.0, 30.0, 0.0]]


def test_discounted_future_hand_computed():
    d = t([[1, 2, 3, 4]])
    # g_t = d_t + 0.5 d_{t+1} + 0.25 d_{t+2}
    assert losses.discounted_future(d, torch.ones(1, 4), 2, 0.5)[0].tolist() == [2.75, 4.5, 5.0, 4.0]
    assert losses.discounted_future(d, torch.tensor([[1, 1, 1, 0]]), 2, 0.5)[0].tolist() == [2.75, 3.5, 3.0, 0.0]


# -- the methods --------------------------------------------------------------------------

def test_opd_is_the_mean_reverse_kl_over_completion_tokens():
    d, mask = t([[1, 2, 3, 9]]), torch.tensor([[1, 1, 1, 0]])
    assert float(losses.distillation_loss(d, mask, settings("opd"))) == pytest.approx(2.0)
    assert float(losses.distillation_loss(d, mask, settings("opd"), num_items=4)) == pytest.approx(1.5)


def test_opd_filter_drops_a_high_loss_token_with_a_quiet_future():
    # quantile 0.75 of (0, 0, 0, 4) = 1: token 0 is high-loss; its next two average 0 < 1 x mean (1)
    d, mask = t([[4, 0, 0, 0]]), torch.ones(1, 4)
    assert losses.token_weights(d, mask, settings("opd_filter"))[0].tolist() == [0, 1, 1, 1]
    assert float(losses.distillation_loss(d, mask, settings("opd_filter"))) == 0.0
    assert losses.diagnostics(d, mask, settings()) == {"mean_divergence": 1.0, "high_loss_low_future_share": 1.0,
                                                      "high_loss_tokens": 1.0, "completion_tokens": 4.0}


def test_opd_filter_keeps_a_high_loss_token_followed_by_drift():
    # quantile 0.75 of (0, 2, 2, 4) = 2.5: token 0; its next two average 2, not below the mean 2
    d, mask = t([[4, 2, 2, 0]]), torch.ones(1, 4)
    assert losses.token_weights(d, mask, settings("opd_filter"))[0].tolist() == [1, 1, 1, 1]
    assert losses.diagnostics(d, mask, settings())["high_loss_low_future_share"] == 0.0
    # a stricter threshold (below 1.5 x the mean = 3) calls that future quiet
    assert losses.token_weights(d, mask, settings("opd_filter", future_threshold=1.5))[0].tolist() == [0, 1, 1, 1]


def test_opd_filter_keeps_the_last_token_and_ignores_padding():
    d, mask = t([[0, 0, 0, 4]]), torch.ones(1, 4)  # the high-loss token has no future to judge
    assert losses.token_weights(d, mask, settings("opd_filter"))[0].tolist() == [1, 1, 1, 1]
    # valid (0, 0, 4): quantile 0.75 = 2, token 2 is high-loss; the padded 9 after it is no future
    d, mask = t([[0, 0, 4, 9]]), torch.tensor([[1, 1, 1, 0]])
    assert losses.high_loss(d, mask, 0.25)[0].tolist() == [False, False, True, False]
    assert losses.token_weights(d, mask, settings("opd_filter"))[0].tolist() == [1, 1, 1, 0]


def test_topd_weights_are_the_normalized_discounted_future():
    d, mask = t([[1, 2, 3, 4]]), torch.ones(1, 4)
    mean_g = (2.75 + 4.5 + 5.0 + 4.0) / 4
    weights = losses.token_weights(d, mask, settings("topd"))
    assert weights[0].tolist() == pytest.approx([2.75 / mean_g, 4.5 / mean_g, 5.0 / mean_g, 4.0 / mean_g])
    expected = (2.75 * 1 + 4.5 * 2 + 5.0 * 3 + 4.0 * 4) / mean_g / 4
    assert float(losses.distillation_loss(d, mask, settings("topd"))) == pytest.approx(expected)


def test_topd_ranks_a_drifting_fork_above_an_isolated_mismatch():
    # the same divergence 3 at position 0 of both rows; row 0 drifts after it, row 1 does not
    d, mask = t([[3, 2, 2, 0], [3, 0, 0, 0]]), torch.ones(2, 4)
    weights = losses.token_weights(d, mask, settings("topd"))
    assert weights[0, 0] > weights[1, 0]
    assert float(weights.sum()) == pytest.approx(8.0)  # mean weight 1 over the 8 completion tokens


def test_topd_without_divergence_falls_back_to_opd():
    mask = torch.tensor([[1, 1, 0]])
    assert losses.token_weights(torch.zeros(1, 3), mask, settings("topd"))[0].tolist() == [1, 1, 0]


def test_gradient_flows_through_the_divergence_only():
    d = t([[1, 2, 3, 4]]).requires_grad_()
    losses.distillation_loss(d, torch.ones(1, 4), settings("topd")).backward()
    weights = losses.token_weights(d, torch.ones(1, 4), settings("topd"))
    assert torch.allclose(d.grad, weights / 4)


def test_diagnostics_without_completion_tokens():
    result = losses.diagnostics(torch.zeros(1, 3), torch.zeros(1, 3), settings())
    assert math.isnan(result["mean_divergence"]) and math.isnan(result["high_loss_low_future_share"])
    assert result["completion_tokens"] == 0.0


def test_settings_check_their_values():
    from trajfusion.io import InputError

    with pytest.raises(InputError, match="high_loss_quantile|high-loss-quantile"):
        LossSettings(high_loss_quantile=1.5)
    with pytest.raises(InputError, match="method"):
        LossSettings(method="kl")
