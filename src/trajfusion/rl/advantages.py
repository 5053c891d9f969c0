"""TAPO's arithmetic on tensors: which groups get a constructed trajectory, its decoupled
advantage, and the OOD token suppression mask. Pure functions (no trainer state).

* **Selection** (``select_groups``): a group of G rollouts of one problem qualifies when it has
  at least one correct and one incorrect rollout (reward 1.0 / not 1.0) and its accuracy lies in
  the closed band ``[low, high]`` (assumption: [0.25, 0.75], the capability boundary; TAPO
  publishes no values).
* **Decoupled advantage** (``decoupled_advantages``): the constructed trajectory's advantage is
  ``(r_c - mean_g) / (std_g + eps)`` where ``mean_g`` and ``std_g`` are the statistics of the
  group's *original* rollouts only, so the constructed reward never shifts the baseline the
  originals are scored against. ``std_g`` is the unbiased (Bessel-corrected) standard deviation
  and ``eps = 1e-4``, as TRL 1.16's ``GRPOTrainer`` computes the originals' advantages
  (``trl.trainer.utils.nanstd``, ``scale_rewards="group"``), so both are on one scale. With
  ``scale=False`` (TRL's ``scale_rewards="none"``) the advantage is ``r_c - mean_g``.
* **OOD token suppression** (``ood_token_mask``): a constructed token whose probability under
  the current policy is below ``min_prob`` gets no gradient (mask 0); padding stays 0.
"""

from __future__ import annotations

import math

import torch

# TRL 1.16 GRPOTrainer divides by (std + 1e-4) (a literal in _generate_and_score_completions).
TRL_ADVANTAGE_EPS = 1e-4


def group_accuracy(group_rewards: torch.Tensor) -> torch.Tensor:
    """(G, N) rewards -> (G,) share of rollouts with reward 1.0."""
    return (group_rewards == 1.0).float().mean(dim=1)


def select_groups(group_rewards: torch.Tensor, low: float, high: float) -> list[int]:
    """Indices of the groups with >=1 correct and >=1 incorrect rollout and accuracy in [low, high]."""
    correct = group_rewards == 1.0
    accuracy = correct.float().mean(dim=1)
    mixed = correct.any(dim=1) & (~correct).any(dim=1)
    chosen = mixed & (accuracy >= low) & (accuracy <= high)
    return [int(i) for i in torch.nonzero(chosen).flatten()]


def group_statistics(group_rewards: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(G, N) rewards -> (mean, unbiased std), each (G,). N must be at least 2."""
    if group_rewards.dim() != 2 or group_rewards.shape[1] < 2:
        raise ValueError(f"expected (groups, rollouts >= 2) rewards, got shape {tuple(group_rewards.shape)}")
    return group_rewards.mean(dim=1), group_rewards.std(dim=1, correction=1)


def decoupled_advantages(group_rewards: torch.Tensor, constructed_rewards: torch.Tensor,
                         eps: float = TRL_ADVANTAGE_EPS, scale: bool = True) -> torch.Tensor:
    """Advantage of one constructed trajectory per group, against the group's original rollouts.

    ``group_rewards``: (G, N) rewards of the original rollouts; ``constructed_rewards``: (G,)
    rewards of the constructed trajectories. The constructed rewards do not enter the statistics.
    """
    if constructed_rewards.shape != group_rewards.shape[:1]:
        raise ValueError(f"one constructed reward per group: got {tuple(constructed_rewards.shape)} for "
                         f"{group_rewards.shape[0]} groups")
    mean, std = group_statistics(group_rewards)
    centred = constructed_rewards.to(mean.dtype) - mean
    return centred / (std + eps) if scale else centred


def ood_token_mask(token_logps: torch.Tensor, completion_mask: torch.Tensor, min_prob: float) -> torch.Tensor:
    """1 for real tokens whose policy probability is at least ``min_prob``, else 0.

    ``token_logps``: (B, T) log-probabilities of the constructed tokens under the current policy;
    ``completion_mask``: (B, T) 1 for real tokens, 0 for padding. ``min_prob`` 0 keeps every
    real token. Returns a mask of ``completion_mask``'s dtype.
    """
    if token_logps.shape != completion_mask.shape:
        raise ValueError(f"shapes differ: logps {tuple(token_logps.shape)}, mask {tuple(completion_mask.shape)}")
    if not 0.0 <= min_prob < 1.0:
        raise ValueError(f"min_prob must be in [0, 1), got {min_prob}")
    likely = token_logps >= math.log(min_prob) if min_prob > 0 else torch.ones_like(completion_mask, dtype=torch.bool)
    return (likely & completion_mask.bool()).to(completion_mask.dtype)
