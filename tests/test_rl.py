"""Tests of the RL stage (trajfusion.rl): TAPO's arithmetic on hand-computed tensors, the
constructors, the TRL internals the trainer relies on, and real GRPO / TAPO-GRPO runs on CPU."""

from __future__ import annotations

import argparse
import inspect
import json
import math
from pathlib import Path

import pytest
import torch

from trajfusion import contracts, train
from trajfusion.data.synthetic import generate
from trajfusion.data.table import problem_frame
from trajfusion.io import InputError
from trajfusion.rl import GRPOJob, GRPOSettings, register
from trajfusion.rl.advantages import (
    TRL_ADVANTAGE_EPS,
    decoupled_advantages,
    group_statistics,
    ood_token_mask,
    select_groups,
)
from trajfusion.rl.construct import (
    ANALYSIS_TAG,
    FIXED_DIAGNOSIS,
    RECONSTRUCTION_TAG,
    get_constructor,
    pick_rollout,
    prefix_then_reference,
)
from trajfusion.rl.trainer import PER_ROW_KEYS, PER_TOKEN_KEYS, SCALAR_KEYS, TAPOGRPOTrainer

# -- selection, decoupled advantages, OOD mask (hand-computed) -----------------------------


def test_select_groups_needs_both_outcomes_and_the_band():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 0.0],   # 0.25: in the band
                            [1.0, 1.0, 0.0, 0.0],   # 0.50
                            [1.0, 1.0, 1.0, 0.0],   # 0.75: in (closed band)
                            [1.0, 1.0, 1.0, 1.0],   # all correct
                            [0.0, 0.0, 0.0, 0.0]])  # all wrong
    assert select_groups(rewards, 0.25, 0.75) == [0, 1, 2]
    assert select_groups(rewards, 0.3, 0.6) == [1]
    assert select_groups(rewards, 0.0, 1.0) == [0, 1, 2]  # never a group without a correct and a wrong one


def test_decoupled_advantage_uses_the_original_group_only():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    mean, std = group_statistics(rewards)
    # group 0: mean 1/4, unbiased variance (3/16 + 3 * 1/16) / 3 = 1/4 -> std 1/2
    # group 1: mean 1/2, unbiased variance 4 * 1/4 / 3 = 1/3 -> std 0.57735
    assert mean.tolist() == [0.25, 0.5]
    assert std[0].item() == pytest.approx(0.5)
    assert std[1].item() == pytest.approx(1 / math.sqrt(3))
    adv = decoupled_advantages(rewards, torch.tensor([1.0, 0.0]))
    assert adv[0].item() == pytest.approx(0.75 / (0.5 + TRL_ADVANTAGE_EPS))
    assert adv[1].item() == pytest.approx(-0.5 / (1 / math.sqrt(3) + TRL_ADVANTAGE_EPS))
    # Entering the statistics would give group 0 mean 2/5 and a smaller advantage: not what happens.
    assert adv[0].item() > (1.0 - 0.4) / (torch.tensor([1.0, 0, 0, 0, 1.0]).std().item() + TRL_ADVANTAGE_EPS)
    unscaled = decoupled_advantages(rewards, torch.tensor([1.0, 0.0]), scale=False)
    assert unscaled.tolist() == [0.75, -0.5]


def test_decoupled_advantage_checks_shapes():
    with pytest.raises(ValueError, match="one constructed reward per group"):
        decoupled_advantages(torch.zeros(2, 4), torch.zeros(3))
    with pytest.raises(ValueError, match="rollouts >= 2"):
        group_statistics(torch.zeros(2, 1))


def test_ood_mask_keeps_likely_real_tokens():
    logps = torch.log(torch.tensor([[0.5, 1e-5, 0.2, 0.9], [1e-3, 1e-4, 0.3, 0.3]]))
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    assert ood_token_mask(logps, mask, 1e-4).tolist() == [[1, 0, 1, 0], [1, 1, 1, 1]]  # padding stays 0
    assert ood_token_mask(logps, mask, 0.0).tolist() == mask.tolist()
    assert ood_token_mask(logps, mask, 0.99).tolist() == [[0, 0, 0, 0], [0, 0, 0, 0]]  # all suppressed
    assert ood_token_mask(logps, mask, 1e-4).dtype == mask.dtype


def test_ood_mask_checks_its_arguments():
    with pytest.raises(ValueError, match="shapes differ"):
        ood_token_mask(torch.zeros(2, 3), torch.ones(2, 4), 1e-4)
    with pytest.raises(ValueError, match="min_prob"):
        ood_token_mask(torch.zeros(1, 1), torch.ones(1, 1), 1.0)


# -- constructors and settings ---------------------------------------------------------------

def test_prefix_then_reference_keeps_half_the_wrong_lines():
    text = prefix_then_reference("p", "step 1\nstep 2\nstep 3\nanswer 7", "right\n\\boxed{5}")
    assert text == (f"step 1\nstep 2\n<{ANALYSIS_TAG}>{FIXED_DIAGNOSIS}</{ANALYSIS_TAG}>\n"
                    f"<{RECONSTRUCTION_TAG}>\nright\n\\boxed{{5}}\n</{RECONSTRUCTION_TAG}>")
    assert prefix_then_reference("p", "one line", "x").startswith(f"<{ANALYSIS_TAG}>")
    assert prefix_then_reference("p", "a\nb", "  ") is None


def test_pick_rollout():
    texts = ["long text", "s", "mid", "s"]
    assert pick_rollout(texts, [2, 1, 3], "first") == 1
    assert pick_rollout(texts, [0, 2, 3, 1], "shortest") == 1


def test_constructor_names():
    assert get_constructor("prefix_then_reference") is prefix_then_reference
    with pytest.raises(InputError, match="left for GPU scale"):
        get_constructor("policy")
    from trajfusion.reflect import micro_reflective_constructor

    assert get_constructor("reflect") is micro_reflective_constructor


def test_reflect_constructor_keeps_the_prefix_up_to_the_failing_step():
    constructor = get_constructor("reflect")
    incorrect = "We add 3 and 4.\n3 + 4 = 7\n7 * 2 = 15\nThe answer is \\boxed{15}."
    correct = "3 + 4 = 7\n7 * 2 = 14\nThe answer is \\boxed{14}."
    text = constructor("What is (3 + 4) * 2?", incorrect, correct)
    kept, rest = text.split("<analysis>", 1)
    assert "3 + 4 = 7" in kept and "15" not in kept  # steps before the wrong one, exact text
    assert "Step 3 is wrong: it arrives at 15" in rest
    assert "<reconstruction>\n7 * 2 = 14" in rest and text.endswith("\\boxed{14}.")
    assert constructor("?", correct, correct) is None  # no contradicting step: rejected
    assert constructor("?", incorrect, "no answer here") is None


@pytest.mark.parametrize("values, message", [
    ({"per_device_batch_size": 6, "num_generations": 4}, "multiple of --num-generations"),
    ({"band_low": 0.8, "band_high": 0.5}, "exceeds --band-high"),
    ({"ood_min_prob": 1.0}, "must be in"),
    ({"mode": "ppo"}, "mode"),
])
def test_bad_settings(values, message):
    with pytest.raises(InputError, match=message):
        GRPOSettings.from_dict({"template": "chat", "seed": 0, **values})


def test_verifier_reward_is_one_for_a_verified_answer_only():
    from trajfusion.rl.reward import VerifierReward

    reward = VerifierReward(workers=1, timeout=5.0)
    completions = ["So x = \\boxed{\\frac{1}{2}}.", "The answer is 0.5", "The answer is \\boxed{2}.", "no idea",
                   [{"role": "assistant", "content": "\\boxed{1/2}"}]]
    got = reward(prompts=[""] * 5, completions=completions, problem_id=["p"] * 5, answer=["\\frac12"] * 5,
                 answer_type=[None] * 5)
    assert got == [1.0, 1.0, 0.0, 0.0, 1.0]


def test_several_gpus_are_refused_before_loading_a_model(tmp_path):
    from trajfusion.rl.run import run_grpo

    job = GRPOJob(model="none", pool="none", output_dir=str(tmp_path),
                  settings=GRPOSettings.from_dict({"template": "chat", "seed": 0, "num_gpus": 8}))
    with pytest.raises(InputError, match="one process"):
        run_grpo(job)


# -- the TRL internals TAPOGRPOTrainer relies on (trajfusion.rl.trainer's docstring) -----------

def test_trl_internals_tapo_relies_on():
    import trl
    from trl import GRPOTrainer

    assert trl.__version__.startswith("1.16."), "TAPOGRPOTrainer was written against TRL 1.16; re-check the hooks"
    generate = inspect.getsource(GRPOTrainer._generate_and_score_completions)
    for key in (*PER_ROW_KEYS, *SCALAR_KEYS):
        assert f'"{key}": ' in generate, key
    for key in PER_TOKEN_KEYS:
        assert f'output["{key}"]' in generate, key
    assert "self._calculate_rewards(inputs, prompts, completions, completion_ids_list)" in generate
    loss = inspect.getsource(GRPOTrainer._compute_loss)
    assert 'mask = completion_mask if "tool_mask" not in inputs else completion_mask * inputs["tool_mask"]' in loss
    assert "attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)" in loss
    assert 'advantages = inputs["advantages"]' in loss
    params = inspect.signature(GRPOTrainer._get_per_token_logps_and_entropies).parameters
    assert list(params)[:5] == ["self", "model", "input_ids", "attention_mask", "logits_to_keep"]
    assert "batch_size" in params
    prepare = inspect.getsource(GRPOTrainer._prepare_inputs)
    assert "split_tensor_dict(generation_batch, self.args.steps_per_generation)" in prepare
    for name in ("num_generations", "max_completion_length", "reward_funcs", "reward_weights", "_metrics",
                 "_tokenizer", "ref_model"):
        assert f"self.{name} =" in inspect.getsource(GRPOTrainer.__init__), name


# -- real runs on CPU: a tiny cold start, then GRPO and TAPO-GRPO ------------------------------

@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    rows = generate("train", n=4, min_steps=1, max_steps=1, max_number=5, seed=0)
    path = tmp_path_factory.mktemp("pool") / "pool.parquet"
    contracts.write(problem_frame(rows, "synthetic"), path, contracts.PROBLEMS)
    return path


@pytest.fixture(scope="module")
def cold_start(tiny_model_dir, pool, tmp_path_factory) -> Path:
    """The tiny random model after SFT (train stage) on answer-only solutions of the pool: it then
    writes "The answer is \\boxed{N}." with N drawn among the pool's answers, so groups mix right
    and wrong rollouts (the random model alone never answers)."""
    root = tmp_path_factory.mktemp("cold")
    table = contracts.read(pool, contracts.PROBLEMS)
    records = [{"problem_id": pid,
                "messages": [{"role": "user", "content": problem},
                             {"role": "assistant", "content": f"The answer is \\boxed{{{answer}}}."}],
                "n_errors": 0, "error_indices": [], "correct_index": 0, "alpha": 1.0, "k_max": 0, "strategy": "rft",
                "seed": 0} for pid, problem, answer in zip(table.problem_id, table.problem, table.answer)]
    dataset = root / "cold.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in records))
    parser = argparse.ArgumentParser()
    train.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", "--model", str(tiny_model_dir), "--dataset", str(dataset), "--output-dir",
                              str(root / "sft"), "--template", "qwen25_math", "--precision", "fp32", "--seed", "0",
                              "--no-gradient-checkpointing", "--epochs", "30", "--learning-rate", "1e-2",
                              "--lr-scheduler", "constant", "--per-device-batch-size", "1", "--grad-accum", "1",
                              "--max-length", "128", "--no-packing", "--logging-steps", "10"])
    train.run_training(train.TrainJob.from_args(args))
    return root / "sft" / "final"


class LossSpy:
    """Records what each loss computation received (TAPOGRPOTrainer._compute_loss's inputs)."""

    def __init__(self, monkeypatch):
        self.batches: list[dict] = []
        original = TAPOGRPOTrainer._compute_loss

        def spy(trainer, model, inputs):
            self.batches.append({"keys": sorted(inputs), "advantages": inputs["advantages"].clone(),
                                 "tool_mask": inputs.get("tool_mask"),
                                 "completion_mask": inputs["completion_mask"].clone(),
                                 "rows": inputs["completion_ids"].shape[0]})
            return original(trainer, model, inputs)

        monkeypatch.setattr(TAPOGRPOTrainer, "_compute_loss", spy)


def grpo_run(model: Path, pool: Path, out: Path, mode: str, *extra: str) -> dict:
    from trajfusion.rl.run import run_grpo

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["grpo", "--model", str(model), "--pool", str(pool), "--output-dir", str(out),
                              "--template", "qwen25_math", "--seed", "0", "--mode", mode, "--max-steps", "3",
                              "--num-generations", "4", "--per-device-batch-size", "8",
                              "--max-completion-length", "16", "--learning-rate", "1e-3", "--precision", "fp32",
                              "--no-gradient-checkpointing", "--max-constructed-length", "64", *extra])
    return run_grpo(GRPOJob.from_args(args))


def changed_weights(before: Path, after: Path) -> int:
    from safetensors.torch import load_file

    old, new = load_file(before / "model.safetensors"), load_file(after / "model.safetensors")
    return sum(not torch.equal(old[name], new[name]) for name in old)


def test_grpo_run_trains_on_verifier_rewards(cold_start, pool, tmp_path, monkeypatch):
    spy = LossSpy(monkeypatch)
    meta = grpo_run(cold_start, pool, tmp_path, "grpo")
    assert (tmp_path / "final" / "grpo_meta.json").is_file()
    assert meta["progress"]["global_step"] == 3 and meta["tapo"] is None
    steps = [entry for entry in meta["log_history"] if "rewards/verifier/mean" in entry]
    assert len(steps) == 3
    assert any(0.0 < entry["rewards/verifier/mean"] < 1.0 for entry in steps)  # mixed groups: a gradient
    assert changed_weights(cold_start, tmp_path / "final") > 0
    assert spy.batches and all(batch["rows"] == 8 and batch["tool_mask"] is None for batch in spy.batches)
    assert spy.batches[0]["keys"] == sorted(["prompt_ids", "prompt_mask", "completion_ids", "completion_mask",
                                             "advantages", "num_items_in_batch"])  # TRL 1.16, text only
    assert not (tmp_path / "tapo_constructed.jsonl").exists()


def test_tapo_run_trains_on_constructed_trajectories(cold_start, pool, tmp_path, monkeypatch):
    spy = LossSpy(monkeypatch)
    meta = grpo_run(cold_start, pool, tmp_path, "tapo")
    constructed = [json.loads(line) for line in (tmp_path / "tapo_constructed.jsonl").read_text().splitlines()]
    assert constructed and meta["tapo"]["constructed"] == len(constructed)
    for item in constructed:
        assert item["reward"] == 1.0  # the verifier accepts the reconstruction's answer
        assert item["advantage"] == pytest.approx((1.0 - item["group_mean"]) / (item["group_std"] + 1e-4), rel=1e-5)
        assert item["advantage"] > 0
        assert 0.25 <= item["group_mean"] <= 0.75
    # The constructed rows reached the loss (one batch per step; TRL shuffles the rows), with their
    # advantage, and their OOD mask in tool_mask: only constructed rows lose tokens.
    assert len(spy.batches) == 3
    for step, batch in enumerate(spy.batches):
        mine = [item for item in constructed if item["step"] == step]
        assert batch["rows"] == 8 + len(mine)
        tool_mask = batch["tool_mask"] if batch["tool_mask"] is not None else batch["completion_mask"]
        suppressed = (tool_mask * batch["completion_mask"] != batch["completion_mask"]).any(dim=1)
        assert int(suppressed.sum()) == sum(item["trained_tokens"] < item["tokens"] for item in mine)
        for item in mine:
            assert torch.isclose(batch["advantages"], torch.tensor(item["advantage"]), rtol=1e-5).any()
        assert (batch["advantages"][suppressed] > 0).all()
    # The tiny model finds the analysis text unlikely: OOD suppression removes some tokens, keeps others.
    assert 0 < meta["tapo"]["trained_tokens"] < meta["tapo"]["tokens"]
    logged = [entry for entry in meta["log_history"] if "tapo/constructed" in entry]
    assert len(logged) == 3 and sum(entry["tapo/constructed"] for entry in logged) > 0
    assert changed_weights(cold_start, tmp_path / "final") > 0
