"""GRPO, Dr.GRPO and DAPO on TRL: settings, advantages, dynamic sampling, overlong shaping, logs, resume."""

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from baselines.dapo import DAPOTrainer, merge_rollouts, select_rows
from baselines.rl import build_trainer, rl_rows
from meml.fields import ConfigError
from meml.methods import Method
from meml.pipeline.settings import settings_from_config
from meml.training.grpo import SparsityGRPOTrainer, group_outcomes
from meml.training.rl import _reward_functions, last_checkpoint
from meml.training.rl_config import RLConfig
from meml.training.rl_log import REQUIRED, StepLogCallback, canonical_row, read_log

G = 4  # group size of the scripted tests


# --------------------------------------------------------------------------- settings


def test_presets_follow_the_papers():
    grpo, dr, dapo = (RLConfig(algorithm=a) for a in ("GRPO", "Dr.GRPO", "DAPO"))
    assert (grpo.loss_type, grpo.scale_rewards, grpo.epsilon_high, grpo.dynamic_sampling) == ("grpo", "group", 0.2, False)
    assert (dr.loss_type, dr.scale_rewards) == ("dr_grpo", "none")
    assert (dapo.loss_type, dapo.scale_rewards, dapo.epsilon, dapo.epsilon_high) == ("dapo", "group", 0.2, 0.28)
    assert dapo.mask_truncated_completions and dapo.dynamic_sampling
    assert dapo.overlong_buffer_length == dapo.max_completion_length // 5  # DAPO's 4096 of 20480
    assert RLConfig().for_algorithm("DAPO") == dapo
    unresolved = RLConfig()
    assert unresolved.loss_type is None and unresolved.dynamic_sampling is None  # presets wait for the algorithm
    with pytest.raises(ValueError, match="needs its algorithm"):
        unresolved.grpo_config("unused")


def test_workflow_keys_override_presets_in_order():
    settings = settings_from_config({"rl": {"steps": 7, "epsilon_high": 0.3, "algorithms": {
        "DAPO": {"epsilon_high": 0.25, "max_sampling_rounds": 5}}}})
    dapo = settings.rl.run("DAPO", seed=3, threads=2)
    assert type(dapo) is RLConfig and dapo.algorithm == "DAPO"
    assert (dapo.steps, dapo.epsilon_high, dapo.max_sampling_rounds) == (7, 0.25, 5)
    assert (dapo.loss_type, dapo.seed, dapo.threads) == ("dapo", 3, 2)  # the rest from the preset and the run
    assert settings.rl.run("GRPO").epsilon_high == 0.3
    # the same order by hand: preset < given value < override
    assert RLConfig(epsilon_high=0.3).for_algorithm("DAPO").epsilon_high == 0.3
    assert RLConfig(epsilon_high=0.3).for_algorithm("DAPO", epsilon_high=0.25, steps=7).epsilon_high == 0.25
    assert RLConfig(algorithm="DAPO", max_completion_length=20).overlong_buffer_length == 4


@pytest.mark.parametrize("rl, message", [
    ({"stepz": 3}, "rl: Additional properties are not allowed ('stepz'"),
    ({"algorithms": {"DAPO": {"epsilon_hgh": 0.3}}}, "rl.algorithms.DAPO: unknown setting(s) ['epsilon_hgh']"),
    ({"algorithms": {"PPO": {}}}, "rl.algorithms: unknown algorithm 'PPO'"),
    ({"num_generations": 1}, "rl.num_generations: 1 is less than the minimum of 2"),
    ({"epsilon_high": 0.1}, "rl.epsilon_high (0.1) must be >= rl.epsilon (0.2)"),
    ({"algorithms": {"DAPO": {"epsilon_high": 0.1}}}, "rl.algorithms.DAPO: rl.epsilon_high (0.1) must be >= "),
])
def test_bad_settings_name_the_key(rl, message):
    with pytest.raises(ConfigError, match="my.yaml: (?s:.*)" + re.escape(message)):
        settings_from_config({"rl": rl}, "my.yaml")


@pytest.mark.parametrize("fields, message", [
    ({"num_generations": 1}, "rl.num_generations: must be >= 2"),
    ({"algorithm": "DAPO", "epsilon_high": 0.1}, "rl.epsilon_high (0.1) must be >= rl.epsilon (0.2)"),
    ({"algorithm": "PPO"}, "rl.algorithm: expected one of ['GRPO', 'Dr.GRPO', 'DAPO']"),
    ({"max_completion_length": 8, "overlong_buffer_length": 8}, "rl.overlong_buffer_length must be in"),
])
def test_bad_run_fields_name_the_key(fields, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        RLConfig(**fields)


def test_for_algorithm_knows_the_algorithms():
    with pytest.raises(ValueError, match=re.escape("rl: unknown algorithm 'PPO'")):
        RLConfig().for_algorithm("PPO")


def test_grpo_config_carries_the_settings(tmp_path):
    run = RLConfig(algorithm="DAPO", prompts_per_step=3, num_generations=4, max_completion_length=20)
    args = run.grpo_config(tmp_path)
    assert args.per_device_train_batch_size == 12 and args.num_generations == 4
    assert (args.loss_type, args.epsilon, args.epsilon_high, args.mask_truncated_completions) == ("dapo", 0.2, 0.28, True)
    assert args.beta == 0.0 and args.steps_per_generation == 1


def test_methods_split_into_start_and_algorithm():
    method = Method.parse("Expert1-SFT-Dr.GRPO")
    assert (method.kind, str(method.start), method.algorithm) == ("rl", "Expert1-SFT", "Dr.GRPO")
    method = Method.parse("MoE-SFT-DAPO")
    assert (method.kind, str(method.start), method.algorithm) == ("rl", "MoE-SFT", "DAPO")
    assert Method.parse("MoE-SFT").experts(3) == (0, 1, 2) and Method.parse("Expert2-SFT").experts(3) == (2,)
    assert Method.parse("MoE-SFT-GRPO").experts(3) == (0, 1, 2) and Method.parse("Expert1-SFT-GRPO").experts(3) == (1,)
    for bad in ("Expert1-SFT-PPO", "MoE-GRPO", "ExpertX-SFT-GRPO"):
        with pytest.raises(ValueError, match="unknown method"):
            Method.parse(bad)
    with pytest.raises(ValueError, match="only 3 experts"):
        Method.parse("Expert3-SFT-GRPO").experts(3)


def test_multi_expert_rows_pair_every_question_with_every_expert(small_world):
    from meml.data import load_records

    records = load_records("synth_gsm8k", "train", small_world)[:5]
    prompts = ["P0", "P1", "P2"]
    rows = rl_rows(records, [0, 1, 2], prompts)
    assert len(rows) == 15
    assert [r["expert"] for r in rows[:3]] == [0, 1, 2]
    assert rows[1]["prompt"][0] == {"role": "system", "content": "P1"}
    assert rows[1]["prompt"][1]["content"] == records[0].question and rows[1]["answer"] == records[0].answer
    assert len(rl_rows(records, [1], prompts)) == 5


# --------------------------------------------------------------------------- group statistics and batches


def test_group_outcomes_by_hand():
    rewards = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0.5, 0.5, 0.5, 0.5])
    flags = group_outcomes(rewards, 4)
    assert flags["all_zero"].tolist() == [True, False, False, False]
    assert flags["all_correct"].tolist() == [False, True, False, False]
    assert flags["zero_std"].tolist() == [True, True, False, True]
    with pytest.raises(ValueError, match="groups of 3"):
        group_outcomes(rewards, 3)


def test_merge_pads_prompts_left_completions_right_and_recounts_tokens():
    a = {"prompt_ids": torch.tensor([[5, 6]]), "prompt_mask": torch.tensor([[1, 1]]),
         "completion_ids": torch.tensor([[7, 8, 9]]), "completion_mask": torch.tensor([[1, 1, 0]]),
         "advantages": torch.tensor([0.5]), "num_items_in_batch": torch.tensor(99)}
    b = {"prompt_ids": torch.tensor([[4, 5, 6]]), "prompt_mask": torch.tensor([[1, 1, 1]]),
         "completion_ids": torch.tensor([[7]]), "completion_mask": torch.tensor([[1]]),
         "advantages": torch.tensor([-0.5]), "num_items_in_batch": torch.tensor(99)}
    merged = merge_rollouts([a, b], pad_token_id=0)
    assert merged["prompt_ids"].tolist() == [[0, 5, 6], [4, 5, 6]]
    assert merged["prompt_mask"].tolist() == [[0, 1, 1], [1, 1, 1]]
    assert merged["completion_ids"].tolist() == [[7, 8, 9], [7, 0, 0]]
    assert merged["completion_mask"].tolist() == [[1, 1, 0], [1, 0, 0]]
    assert merged["advantages"].tolist() == [0.5, -0.5]
    assert merged["num_items_in_batch"].item() == 3  # kept tokens only, not the 99 of the unfiltered batches
    assert select_rows(merged, torch.tensor([1]))["completion_ids"].tolist() == [[7, 0, 0]]
    with pytest.raises(ValueError, match="pixel_values"):
        merge_rollouts([{**a, "pixel_values": torch.zeros(1, 2)}, {**b, "pixel_values": torch.zeros(1, 2)}], 0)


# --------------------------------------------------------------------------- scripted trainers


def scripted_reward(prompts, completions, pattern, **kwargs):
    """Reward of completion i: digit ``i % G`` of its row's ``pattern`` (rows arrive group by group)."""
    return [float(p[i % G]) for i, p in enumerate(pattern)]


def position_reward(prompts, completions, **kwargs):
    """A second reward that always varies within a group (0, 0.1, 0.2, ... by position)."""
    return [0.1 * (i % G) for i in range(len(completions))]


def _scripted_trainer(model_dir, tmp_path, algorithm, patterns, extra_rewards=(), **run_settings):
    """The baselines' trainer of ``algorithm`` (through ``build_trainer``) with scripted rewards and generations."""
    run = RLConfig(algorithm=algorithm, prompts_per_step=2, num_generations=G, max_completion_length=8,
                   **{"decoder": "trl", **run_settings})  # the scripted generations replace TRL's own
    rows = [{"prompt": [{"role": "user", "content": f"question {i}"}], "pattern": p} for i, p in enumerate(patterns)]
    trainer = build_trainer(model_dir, rows, "gsm8k", run, tmp_path / "trainer",
                            reward_funcs=[scripted_reward, *extra_rewards])
    assert type(trainer) is (DAPOTrainer if algorithm == "DAPO" else SparsityGRPOTrainer)
    tokenizer = trainer.processing_class
    eos = tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
    calls = []

    def fake_generation(prompt_ids, images, multimodal_fields, num_generations):
        calls.append(len(prompt_ids))
        return [[11 + (i % 5), 12, eos] for i in range(len(prompt_ids))], None

    trainer._generate_single_turn = fake_generation
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(); the tests call steps directly
    return trainer, calls, rows


def _inputs(rows, indices):
    return [dict(rows[i]) for i in indices for _ in range(G)]


@pytest.mark.slow
def test_grpo_advantages_are_group_normalised(tiny_model_dir, tmp_path):
    trainer, _, rows = _scripted_trainer(tiny_model_dir, tmp_path, "GRPO", ["1000", "1100", "0000", "1111"])
    out = trainer._generate_and_score_completions(_inputs(rows, [0, 1, 2, 3]))
    # [1,0,0,0]: mean 0.25, sample std 0.5; [1,1,0,0]: mean 0.5, std sqrt(1/3); TRL adds 1e-4 to the std
    a, b = 0.75 / 0.5001, 0.25 / 0.5001
    c = 0.5 / (math.sqrt(1 / 3) + 1e-4)
    expected = [a, -b, -b, -b, c, c, -c, -c, 0, 0, 0, 0, 0, 0, 0, 0]
    assert out["advantages"].tolist() == pytest.approx(expected, abs=1e-5)
    metrics = trainer._metrics["train"]
    assert metrics["sparsity/frac_all_zero"] == [0.25]
    assert metrics["sparsity/frac_all_correct"] == [0.25]
    assert metrics["sparsity/frac_zero_std"] == [0.5]
    assert metrics["sparsity/accuracy_mean"] == [pytest.approx(7 / 16)]


@pytest.mark.slow
def test_dr_grpo_advantages_are_not_scaled(tiny_model_dir, tmp_path):
    trainer, _, rows = _scripted_trainer(tiny_model_dir, tmp_path, "Dr.GRPO", ["1000", "1100"])
    out = trainer._generate_and_score_completions(_inputs(rows, [0, 1]))
    assert out["advantages"].tolist() == pytest.approx([0.75, -0.25, -0.25, -0.25, 0.5, 0.5, -0.5, -0.5])
    assert trainer.loss_type == "dr_grpo" and trainer.scale_rewards == "none"


@pytest.mark.slow
def test_dapo_drops_constant_groups_and_refills_the_batch(tiny_model_dir, tmp_path):
    # Rows 0-1 vary; rows 2-5 are constant. The first batch holds one varying group out of two.
    patterns = ["1000", "1100", "0000", "1111", "0000", "1111"]
    trainer, calls, rows = _scripted_trainer(tiny_model_dir, tmp_path, "DAPO", patterns, max_sampling_rounds=50)
    out = trainer._generate_and_score_completions(_inputs(rows, [0, 2]))
    advantages = out["advantages"].view(-1, G)
    assert advantages.shape == (2, G)  # refilled to the full batch of two groups
    assert (advantages.std(dim=1) > 0).all()  # no all-equal group reached the loss
    assert out["num_items_in_batch"].item() == out["completion_mask"].sum().item() == 2 * G * 3
    metrics = trainer._metrics["train"]
    rounds = metrics["dynamic/rounds"][-1]
    assert rounds >= 2 and len(calls) == rounds and metrics["dynamic/bound_hit"] == [0.0]
    assert metrics["dynamic/kept_groups"] == [2.0]
    assert metrics["sparsity/frac_zero_std"] == [0.5]  # sparsity is measured on the first, unfiltered batch
    loss = trainer.compute_loss(trainer.model, out)
    assert torch.isfinite(loss) and loss.requires_grad


@pytest.mark.slow
@pytest.mark.parametrize("metric, kept", [("accuracy", 0.0), ("reward", 2.0)])
def test_dapo_filter_metric_chooses_which_reward_must_vary(metric, kept, tiny_model_dir, tmp_path):
    trainer, calls, rows = _scripted_trainer(tiny_model_dir, tmp_path, "DAPO", ["0000", "1111"],
                                             extra_rewards=[position_reward], max_sampling_rounds=1,
                                             filter_metric=metric)
    trainer._generate_and_score_completions(_inputs(rows, [0, 1]))
    assert trainer._metrics["train"]["dynamic/kept_groups"] == [kept]


@pytest.mark.slow
def test_dapo_respects_the_round_bound(tiny_model_dir, tmp_path):
    trainer, calls, rows = _scripted_trainer(tiny_model_dir, tmp_path, "DAPO", ["0000", "1111", "0000"],
                                             max_sampling_rounds=3)
    out = trainer._generate_and_score_completions(_inputs(rows, [0, 1]))
    assert len(calls) == 3
    metrics = trainer._metrics["train"]
    assert metrics["dynamic/bound_hit"] == [1.0] and metrics["dynamic/kept_groups"] == [0.0]
    assert out["completion_mask"].sum().item() == 0  # nothing reaches the loss
    loss = trainer.compute_loss(trainer.model, out)
    loss.backward()
    assert all(p.grad is None or p.grad.abs().max().item() == 0 for p in trainer.model.parameters())


@pytest.mark.slow
def test_dapo_keeps_a_partial_batch_when_the_bound_is_hit(tiny_model_dir, tmp_path):
    trainer, calls, rows = _scripted_trainer(tiny_model_dir, tmp_path, "DAPO", ["1000", "0000"],
                                             max_sampling_rounds=1)
    out = trainer._generate_and_score_completions(_inputs(rows, [0, 1]))
    assert len(calls) == 1 and out["advantages"].shape == (G,)
    assert trainer._metrics["train"]["dynamic/bound_hit"] == [1.0]


def test_overlong_shaping_at_the_buffer_edges():
    run = RLConfig(algorithm="DAPO", max_completion_length=20, overlong_buffer_length=4)
    accuracy, overlong = _reward_functions("gsm8k", run)
    assert accuracy.__name__ == "accuracy_gsm8k"
    values = overlong(completion_ids=[[1] * n for n in (10, 16, 17, 18, 20, 21)])
    assert values == pytest.approx([0.0, 0.0, -0.25, -0.5, -1.0, -1.0])
    assert len(_reward_functions("gsm8k", RLConfig(algorithm="GRPO"))) == 1


# --------------------------------------------------------------------------- metrics log


def test_canonical_rows_and_resume_truncation(tmp_path):
    row = canonical_row(3, 1.5, {"reward": 0.5, "sparsity/frac_all_zero": 0.25, "experts/2/reward": 0.1,
                                 "slices/A/frac_all_zero": 1.0, "clip_ratio/high_mean": 0.0, "kl": 0.0})
    assert row["step"] == 3 and row["frac_all_zero"] == 0.25 and row["reward_expert2"] == 0.1
    assert row["frac_all_zero_sliceA"] == 1.0 and row["clip_ratio_high"] == 0.0 and row["kl"] == 0.0
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "elapsed_s": float(s)}) + "\n" for s in (1, 2, 3, 4))
                    + '{"step": 5, "elaps')  # torn last line of a killed writer
    assert [r["step"] for r in read_log(path)] == [1, 2, 3, 4]
    callback = StepLogCallback(path, resume_step=2)
    assert [r["step"] for r in read_log(path)] == [1, 2] and callback.offset == 2.0
    path.write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:2"):
        read_log(path)


# --------------------------------------------------------------------------- real few-step runs


def length_reward(prompts, completions, **kwargs):
    """Pays completions of even character length: varies within groups even for a random model."""
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return [float(len(t) % 2 == 0) for t in texts]


def expert_one_is_always_wrong(prompts, completions, expert, **kwargs):
    """``length_reward`` under expert 0, 0 under expert 1: every expert-1 group is constant, so DAPO refills."""
    return [0.0 if e == 1 else r for e, r in zip(expert, length_reward(prompts, completions))]


def builder(accuracy):
    """The baselines' ``build`` with ``accuracy`` in place of the task's accuracy reward (overlong shaping kept)."""

    def build(model_path, rows, task, run, trainer_dir, callbacks=(), compute=None):
        rewards = [accuracy, *_reward_functions(task, run)[1:]]
        return build_trainer(model_path, rows, task, run, trainer_dir, callbacks, compute, reward_funcs=rewards)

    return build


def _rl_rows(small_world, n=8):
    from meml.data import load_records

    return rl_rows(load_records("synth_gsm8k", "train", small_world)[:n], [0, 1], ["P0", "P1"])


def _log_without_timing(path):
    return [{k: v for k, v in r.items() if k not in ("elapsed_s", "step_time")} for r in read_log(path)]


FEW = {"steps": 2, "prompts_per_step": 3, "num_generations": 4, "max_completion_length": 12, "save_steps": 1,
       "learning_rate": 1e-2}


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["GRPO", "Dr.GRPO", "DAPO"])
def test_few_steps_change_weights_and_write_the_log(algorithm, tiny_model_dir, small_world, tmp_path):
    from safetensors.torch import load_file

    from meml.training.rl import train_rl

    # a random model rarely ends a completion: DAPO would mask (nearly) every truncated one and change nothing
    run = RLConfig(algorithm=algorithm, **FEW, mask_truncated_completions=False)
    out = tmp_path / "out"
    metrics = train_rl(tiny_model_dir, _rl_rows(small_world), "gsm8k", run, out, tmp_path / "work",
                       build=builder(length_reward))
    assert metrics["steps"] == 2 and not (tmp_path / "work").exists()
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(out / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    rows = read_log(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    for key in REQUIRED:
        assert key in rows[0], key
    logged = set().union(*rows)
    assert {"reward_expert0", "reward_expert1", "frac_all_zero_expert0"} <= logged
    assert 0.0 <= rows[0]["frac_all_zero"] <= rows[0]["frac_zero_std"] <= 1.0
    assert rows[0]["learning_rate"] == pytest.approx(1e-2)
    if algorithm == "DAPO":
        assert rows[0]["dynamic_rounds"] >= 1 and "dynamic_bound_hit" in rows[0]
        assert all(r["rewards/soft_overlong_punishment_reward/mean"] <= 0 for r in rows)  # shaping is on
    else:
        assert "rewards/soft_overlong_punishment_reward/mean" not in logged
    saved = json.loads((out / "run.json").read_text())
    assert saved["settings"]["algorithm"] == algorithm and saved["metrics"]["resumed_from_step"] == 0


@pytest.mark.slow
def test_tensorboard_logging_from_the_config(tiny_model_dir, small_world, tmp_path):
    from meml.training.rl import train_rl

    run = RLConfig(algorithm="GRPO", **{**FEW, "tensorboard": True})
    train_rl(tiny_model_dir, _rl_rows(small_world), "gsm8k", run, tmp_path / "out", tmp_path / "work",
             build=builder(length_reward))
    events = list((tmp_path / "out" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


@pytest.mark.slow
def test_same_seed_same_metrics(tiny_model_dir, small_world, tmp_path):
    from meml.training.rl import train_rl

    run = RLConfig(algorithm="GRPO", **FEW)
    logs = []
    for name in ("a", "b"):
        train_rl(tiny_model_dir, _rl_rows(small_world), "gsm8k", run, tmp_path / name, tmp_path / f"w{name}",
                 build=builder(length_reward))
        logs.append(_log_without_timing(tmp_path / name / "metrics.jsonl"))
    assert logs[0] == logs[1]


RESUME = {**FEW, "steps": 6, "save_steps": 2}

RESUME_SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path

import transformers

from meml.training.rl import train_rl
from meml.training.rl_config import RLConfig
from test_rl import RESUME, _rl_rows, builder, expert_one_is_always_wrong


class BlockAfterFirstCheckpoint(transformers.TrainerCallback):
    # once a checkpoint is on disk, say so and wait to be killed: the kill lands after a checkpoint, never after
    # the end, and never while the checkpoint is being written
    def on_save(self, args, state, control, **kwargs):
        if {block}:
            Path({marker!r}).write_text(str(state.global_step))
            time.sleep(3600)


def build(*args, **kwargs):
    trainer = builder(expert_one_is_always_wrong)(*args, **kwargs)
    trainer.add_callback(BlockAfterFirstCheckpoint())
    return trainer


train_rl({model!r}, _rl_rows(Path({world!r})), "gsm8k", RLConfig(algorithm={algorithm!r}, **RESUME), {out!r},
         {work!r}, build=build)
"""


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["GRPO", "DAPO"])
def test_a_killed_run_resumes_from_its_last_checkpoint(algorithm, tiny_model_dir, small_world, tmp_path):
    """SIGKILL after the step-2 checkpoint, start again: the run ends as if it had never been interrupted (same
    log, same weights). With half the groups constant, DAPO draws refill prompts before and after the kill."""
    from safetensors.torch import load_file

    from meml.training.rl import train_rl

    out, work, marker = tmp_path / "out", tmp_path / "work", tmp_path / "blocked"
    script = tmp_path / "run.py"
    settings = dict(tests=str(Path(__file__).parent), model=str(tiny_model_dir), world=str(small_world),
                    out=str(out), work=str(work), algorithm=algorithm, marker=str(marker))
    script.write_text(RESUME_SCRIPT.format(block=True, **settings))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    process = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and not marker.exists():
        time.sleep(0.2)
    assert process.poll() is None and marker.exists(), process.stderr.read().decode()[-3000:]
    process.send_signal(signal.SIGKILL)  # the child waits after its first checkpoint: no race with the run's end
    process.wait()
    process.stderr.close()
    assert not out.exists() and marker.read_text() == "2"
    assert last_checkpoint(work / "trainer").name == "checkpoint-2"
    script.write_text(RESUME_SCRIPT.format(block=False, **settings))
    subprocess.run([sys.executable, str(script)], env=env, check=True, capture_output=True)
    saved = json.loads((out / "run.json").read_text())
    assert saved["metrics"]["resumed_from_step"] == 2 and saved["metrics"]["steps"] == 6
    assert [r["step"] for r in read_log(out / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]

    straight = tmp_path / "straight"
    train_rl(tiny_model_dir, _rl_rows(small_world), "gsm8k", RLConfig(algorithm=algorithm, **RESUME), straight,
             tmp_path / "straight_work", build=builder(expert_one_is_always_wrong))
    assert json.loads((straight / "run.json").read_text())["metrics"]["resumed_from_step"] == 0
    resumed_log, straight_log = _log_without_timing(out / "metrics.jsonl"), _log_without_timing(straight / "metrics.jsonl")
    if algorithm == "DAPO":
        assert sum(r["dynamic_rounds"] for r in straight_log[:2]) > 2  # prompts were refilled before the kill
        assert sum(r["dynamic_rounds"] for r in straight_log[2:]) > 4  # and after it
    assert resumed_log == straight_log
    resumed, uninterrupted = load_file(out / "model.safetensors"), load_file(straight / "model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)


@pytest.mark.parametrize("rng_file, found", [("rng_state.pth", True), ("rng_state_0.pth", True), (None, False)])
def test_last_checkpoint_accepts_one_or_several_processes_rng_states(tmp_path, rng_file, found):
    from meml.training.rl import last_checkpoint

    for step in (2, 4):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        for name in ("trainer_state.json", "optimizer.pt", "model.safetensors") + ((rng_file,) if rng_file else ()):
            (folder / name).write_text("x")
    (tmp_path / "checkpoint-6").mkdir()  # incomplete: never chosen
    assert last_checkpoint(tmp_path) == (tmp_path / "checkpoint-4" if found else None)


def test_the_tied_output_warning_on_resume_is_silenced_only_for_tied_models(caplog):
    import logging
    from types import SimpleNamespace

    from meml.training.rl import tied_weights_quiet

    logger = logging.getLogger("transformers.trainer")
    tied, untied = (SimpleNamespace(config=SimpleNamespace(tie_word_embeddings=t)) for t in (True, False))
    message = "There were missing keys in the checkpoint model loaded: ['lm_head.weight']."
    with caplog.at_level(logging.WARNING, logger="transformers.trainer"):
        with tied_weights_quiet(tied):
            logger.warning(message)
            logger.warning("There were missing keys in the checkpoint model loaded: ['model.norm.weight'].")
        with tied_weights_quiet(untied):
            logger.warning(message)
        logger.warning(message)  # outside: the filter is gone
    assert [r.getMessage() for r in caplog.records].count(message) == 2
    assert any("model.norm.weight" in r.getMessage() for r in caplog.records)
