"""GRPO and TAPO-GRPO on TRL 1.16's ``GRPOTrainer``.

``TAPOGRPOTrainer`` is TRL's trainer plus, in TAPO mode, one constructed micro-reflective
trajectory per group in the accuracy band, appended to the batch that the loss sees. The
change is the one TRL's maintainers suggest for custom advantages (huggingface/trl#4525):
override ``_generate_and_score_completions`` and edit its output. It relies on these TRL 1.16
internals (``tests/test_rl.py::test_trl_internals_tapo_relies_on`` fails if they change):

* ``_generate_and_score_completions(inputs)`` returns a dict with ``prompt_ids``/``prompt_mask``
  (left-padded), ``completion_ids``/``completion_mask`` (right-padded), ``advantages`` (B,) and
  ``num_items_in_batch`` (a scalar: the generation batch's loss tokens over all processes), plus
  ``old_per_token_logps``, ``ref_per_token_logps``, ``sampling_per_token_logps``,
  ``importance_sampling_ratio`` and ``tool_mask`` when they apply. Rows are the per-process
  rollouts, groups of ``num_generations`` consecutive rows.
* ``_calculate_rewards(inputs, prompts, completions, completion_ids_list)`` returns the
  (all processes' rollouts × reward functions) rewards; it is wrapped to keep them and the
  completion texts.
* ``_compute_loss`` multiplies the loss mask by ``inputs["tool_mask"]`` when present, but
  attends with ``completion_mask`` only. So OOD token suppression goes in ``tool_mask`` (all
  ones for the original rollouts): a suppressed token is still attended to by later tokens and
  only loses its own gradient.
* ``_get_per_token_logps_and_entropies(model, ids, mask, logits_to_keep, batch_size)`` gives
  the policy's per-token log-probabilities (used for the OOD mask, and as the constructed rows'
  ``old_per_token_logps``/``sampling_per_token_logps`` when the batch has those keys).
* ``_prepare_inputs`` splits the generation batch into ``steps_per_generation`` equal chunks,
  dropping a remainder, so TAPO mode sets ``steps_per_generation=1``: the appended rows always
  stay in the micro-batch they were built for.

The constructed trajectory's reward comes from the same verifier as the rollouts' (the first
reward function's ``score``, a ``trajfusion.rl.reward.VerifierReward``); its
advantage is decoupled (``trajfusion.rl.advantages``). The original rollouts' advantages are
TRL's, untouched. TAPO mode needs whole groups on each process (``per_device_batch_size`` a
multiple of ``num_generations``, checked by the settings).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import torch
from trl import GRPOTrainer

from trajfusion.rl.advantages import TRL_ADVANTAGE_EPS, decoupled_advantages, ood_token_mask, select_groups
from trajfusion.rl.construct import Constructor, pick_rollout

log = logging.getLogger(__name__)

# Keys of _generate_and_score_completions' output that TAPO mode extends row-wise.
PER_ROW_KEYS = ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "advantages")
PER_TOKEN_KEYS = ("old_per_token_logps", "sampling_per_token_logps", "ref_per_token_logps",
                  "importance_sampling_ratio", "tool_mask")
SCALAR_KEYS = ("num_items_in_batch",)


@dataclass(frozen=True)
class TapoOptions:
    band_low: float
    band_high: float
    ood_min_prob: float
    max_constructed_length: int
    incorrect_choice: str
    correct_choice: str
    scale: bool  # TRL's scale_rewards == "group"


@dataclass
class Constructed:
    """One constructed trajectory, as it enters the loss (also written to the run's log)."""

    step: int
    problem_id: str
    incorrect_index: int
    correct_index: int
    reward: float
    group_mean: float
    group_std: float
    advantage: float
    tokens: int
    trained_tokens: int
    text: str = field(repr=False)

    def record(self) -> dict:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}


class TAPOGRPOTrainer(GRPOTrainer):
    """GRPOTrainer; with ``tapo`` options, TAPO's constructed trajectories join each batch."""

    def __init__(self, *args, tapo: TapoOptions | None = None, constructor: Constructor | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        if tapo is not None and constructor is None:
            raise ValueError("TAPO mode needs a constructor")
        if tapo is not None and not hasattr(self.reward_funcs[0], "score"):
            raise ValueError("TAPO mode scores constructed trajectories with reward_funcs[0].score "
                             "(trajfusion.rl.reward.VerifierReward)")
        if tapo is not None and self.args.steps_per_generation != 1:
            raise ValueError("TAPO mode needs steps_per_generation=1 (see trajfusion.rl.trainer)")
        self.tapo = tapo
        self.constructor = constructor
        self.constructed: list[Constructed] = []
        self._scored: tuple | None = None

    # -- TRL hooks -------------------------------------------------------------------------

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._scored = (inputs, completions, rewards_per_func)
        return rewards_per_func

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        if self.tapo is None or not self.model.training:
            return output
        unknown = set(output) - set(PER_ROW_KEYS) - set(PER_TOKEN_KEYS) - set(SCALAR_KEYS)
        if unknown:
            raise ValueError(f"TAPO mode handles text-only batches; the batch also has {sorted(unknown)}")
        return self._add_constructed(output)

    # -- TAPO ------------------------------------------------------------------------------

    def _local_rewards(self, n_local: int) -> torch.Tensor:
        _, _, rewards_per_func = self._scored
        start = self.accelerator.process_index * n_local
        local = rewards_per_func[start:start + n_local]
        return (local * self.reward_weights.to(local.device).unsqueeze(0)).nansum(dim=1)

    def _add_constructed(self, output: dict) -> dict:
        inputs, completions, _ = self._scored
        n = self.num_generations
        rewards = self._local_rewards(len(completions))
        group_rewards = rewards.view(-1, n).float()
        candidates = select_groups(group_rewards, self.tapo.band_low, self.tapo.band_high)
        built = [item for g in candidates if (item := self._construct(g, inputs, completions, group_rewards))]
        self._train_metric("tapo/candidates", float(len(candidates)))
        self._train_metric("tapo/constructed", float(len(built)))
        extra_tokens = torch.zeros(1, device=output["completion_ids"].device)  # 1-d: gather concatenates
        if built:
            output, extra_tokens = self._append(output, built, group_rewards)
        output["num_items_in_batch"] = output["num_items_in_batch"] + self.accelerator.gather(extra_tokens).sum()
        return output

    def _construct(self, g: int, inputs, completions, group_rewards) -> tuple | None:
        n = self.num_generations
        rows = range(g * n, (g + 1) * n)
        correct = [i for i in rows if group_rewards[g, i - g * n] == 1.0]
        incorrect = [i for i in rows if group_rewards[g, i - g * n] != 1.0]
        wrong = pick_rollout(completions, incorrect, self.tapo.incorrect_choice)
        right = pick_rollout(completions, correct, self.tapo.correct_choice)
        example = inputs[g * n]
        text = self.constructor(example["problem"], completions[wrong], completions[right])
        if text is None:
            self._train_metric("tapo/declined", 1.0)
            return None
        if len(self._constructed_ids(text)) > self.tapo.max_constructed_length:
            # Cutting it would train a trajectory whose verified answer is gone.
            self._train_metric("tapo/too_long", 1.0)
            return None
        return g, wrong, right, text

    def _constructed_ids(self, text: str) -> list[int]:
        ids = self._tokenizer(text, add_special_tokens=False)["input_ids"]
        return list(ids) + [self._tokenizer.eos_token_id]

    def _append(self, output: dict, built: list[tuple], group_rewards: torch.Tensor) -> tuple[dict, torch.Tensor]:
        inputs = self._scored[0]
        n, device = self.num_generations, output["completion_ids"].device
        groups = [g for g, *_ in built]
        texts = [text for *_, text in built]
        ids = [self._constructed_ids(text) for text in texts]
        reward_fn = self.reward_funcs[0]
        constructed_rewards = torch.tensor(
            reward_fn.score([inputs[g * n]["problem_id"] for g in groups], [inputs[g * n]["answer"] for g in groups],
                            texts, [inputs[g * n].get("answer_type") for g in groups]),
            device=group_rewards.device)
        advantages = decoupled_advantages(group_rewards[groups], constructed_rewards, TRL_ADVANTAGE_EPS,
                                          self.tapo.scale)

        width = max(output["completion_ids"].shape[1], max(len(row) for row in ids))
        new_ids = torch.full((len(ids), width), self._tokenizer.pad_token_id, dtype=torch.long, device=device)
        new_mask = torch.zeros((len(ids), width), dtype=output["completion_mask"].dtype, device=device)
        for row, tokens in enumerate(ids):
            new_ids[row, :len(tokens)] = torch.tensor(tokens, device=device)
            new_mask[row, :len(tokens)] = 1
        prompt_rows = torch.tensor([g * n for g in groups], device=device)
        prompt_ids, prompt_mask = output["prompt_ids"][prompt_rows], output["prompt_mask"][prompt_rows]
        with torch.no_grad():
            logps, _, _ = self._get_per_token_logps_and_entropies(
                self.model, torch.cat([prompt_ids, new_ids], dim=1), torch.cat([prompt_mask, new_mask], dim=1),
                width, batch_size=len(ids))
        trained = ood_token_mask(logps, new_mask, self.tapo.ood_min_prob)

        out = dict(output)
        out["prompt_ids"] = torch.cat([output["prompt_ids"], prompt_ids])
        out["prompt_mask"] = torch.cat([output["prompt_mask"], prompt_mask])
        pad_id = self._tokenizer.pad_token_id
        out["completion_ids"] = torch.cat([_pad_to(output["completion_ids"], width, pad_id), new_ids])
        out["completion_mask"] = torch.cat([_pad_to(output["completion_mask"], width, 0), new_mask])
        out["advantages"] = torch.cat([output["advantages"], advantages.to(output["advantages"].dtype)])
        tool_mask = output.get("tool_mask", torch.ones_like(output["completion_mask"]))
        out["tool_mask"] = torch.cat([_pad_to(tool_mask, width, 0), trained.to(tool_mask.dtype)])
        for key in ("old_per_token_logps", "sampling_per_token_logps"):
            if key in output:
                out[key] = torch.cat([_pad_to(output[key], width, 0.0), logps.to(output[key].dtype)])
        if "ref_per_token_logps" in output:
            out["ref_per_token_logps"] = torch.cat([_pad_to(output["ref_per_token_logps"], width, 0.0),
                                                    self._reference_logps(prompt_ids, prompt_mask, new_ids, new_mask)])
        if "importance_sampling_ratio" in output:  # the constructed rows were not sampled: no correction
            ratio = output["importance_sampling_ratio"]
            ones = torch.ones((len(ids), ratio.shape[1] if ratio.shape[1] == 1 else width), device=device)
            out["importance_sampling_ratio"] = torch.cat([ratio if ratio.shape[1] == 1 else
                                                          _pad_to(ratio, width, 0.0), ones.to(ratio.dtype)])
        self._record(built, group_rewards, constructed_rewards, advantages, new_mask, trained)
        return out, trained.sum().to(torch.float32).reshape(1)

    def _reference_logps(self, prompt_ids, prompt_mask, new_ids, new_mask) -> torch.Tensor:
        if self.ref_model is None:
            raise ValueError("TAPO mode with beta > 0 needs a reference model (not a PEFT adapter)")
        with torch.no_grad():
            logps, _, _ = self._get_per_token_logps_and_entropies(
                self.ref_model, torch.cat([prompt_ids, new_ids], dim=1), torch.cat([prompt_mask, new_mask], dim=1),
                new_ids.shape[1], batch_size=len(new_ids))
        return logps

    def _record(self, built, group_rewards, constructed_rewards, advantages, new_mask, trained) -> None:
        inputs = self._scored[0]
        n = self.num_generations
        for row, ((g, wrong, right, text), reward, advantage) in enumerate(zip(built, constructed_rewards,
                                                                               advantages)):
            rewards = group_rewards[g]
            item = Constructed(step=self.state.global_step, problem_id=str(inputs[g * n]["problem_id"]),
                               incorrect_index=wrong - g * n, correct_index=right - g * n, reward=float(reward),
                               group_mean=float(rewards.mean()), group_std=float(rewards.std(correction=1)),
                               advantage=float(advantage), tokens=int(new_mask[row].sum()),
                               trained_tokens=int(trained[row].sum()), text=text)
            self.constructed.append(item)
            self._train_metric("tapo/advantage", item.advantage)
            self._train_metric("tapo/reward", item.reward)
            self._train_metric("tapo/ood_suppressed_fraction", 1.0 - item.trained_tokens / max(item.tokens, 1))

    def _train_metric(self, name: str, value: float) -> None:
        # Straight into the logged metrics: _log_metric's pending values were flushed before this point.
        self._metrics["train"][name].append(value)

    def write_constructed(self, path) -> None:
        """The constructed trajectories of this run, one JSON object per line."""
        from trajfusion.io import write_text

        write_text("".join(json.dumps(item.record(), sort_keys=True) + "\n" for item in self.constructed), path)


def _pad_to(tensor: torch.Tensor, width: int, value) -> torch.Tensor:
    """Right-pad a (B, T) tensor to (B, width)."""
    missing = width - tensor.shape[1]
    if missing <= 0:
        return tensor
    return torch.nn.functional.pad(tensor, (0, missing), value=value)
