"""MEMLGRPOTrainer (issue 4, in progress): expert expansion, intra-expert advantages, baseline equality."""

import pytest
import torch

from baselines.grpo_trainers import SparsityGRPOTrainer
from baselines.rl_config import RLRunConfig
from meml.trainer import MEMLGRPOTrainer

G = 4
PROMPTS = ["You are Expert 0. Solve step by step.", "You are Expert 1. Solve step by step."]


def expert_reward(prompts, completions, pattern, expert, **kwargs):
    """Reward of completion i: digit ``i % G`` of its expert's part of ``pattern`` ("1000|0000")."""
    return [float(p.split("|")[e][i % G]) for i, (p, e) in enumerate(zip(pattern, expert))]


def _trainer(cls, model_dir, tmp_path, rows, **kwargs):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = RLRunConfig.for_algorithm("GRPO", {"prompts_per_step": 2, "num_generations": G, "max_completion_length": 8})
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    trainer = cls(model=model, reward_funcs=[expert_reward], args=run.grpo_config(tmp_path / cls.__name__),
                  train_dataset=Dataset.from_list(rows), processing_class=tokenizer, **kwargs)
    eos = tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
    trainer._generate_single_turn = lambda ids, *a: ([[11 + (i % 5), 12, eos] for i in range(len(ids))], None)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    return trainer


QUESTIONS = [{"question": "Tom has 5 apples.", "answer": "5", "pattern": "1000|0000", "reference": "#### 5"},
             {"question": "Ann has 3 pens.", "answer": "3", "pattern": "1100|1111", "reference": "#### 3"}]


def _meml_inputs():
    return [{**q, "prompt": [{"role": "user", "content": q["question"]}]} for q in QUESTIONS for _ in range(G)]


def _baseline_inputs():
    from meml.prompts import prompt_messages

    return [{**q, "prompt": prompt_messages(q["question"], PROMPTS[e]), "expert": e}
            for q in QUESTIONS for e in range(2) for _ in range(G)]


def test_every_question_is_sampled_under_every_expert(tiny_model_dir, tmp_path):
    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), expert_prompts=PROMPTS)
    rows = trainer.expand_to_experts(_meml_inputs())
    assert len(rows) == 2 * 2 * G
    assert [r["expert"] for r in rows[::G]] == [0, 1, 0, 1]
    assert rows[G]["prompt"][0] == {"role": "system", "content": PROMPTS[1]}
    assert rows[2 * G]["prompt"][1]["content"] == "Ann has 3 pens."


def test_default_advantages_are_intra_expert_and_truncated(tiny_model_dir, tmp_path):
    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), expert_prompts=PROMPTS)
    out = trainer._generate_and_score_completions(_meml_inputs())
    expected = [0.75, 0, 0, 0, 0, 0, 0, 0, 0.5, 0.5, 0, 0, 0, 0, 0, 0]
    assert out["advantages"].tolist() == pytest.approx(expected)
    metrics = trainer._metrics["train"]
    assert metrics["experts/1/frac_all_zero"] == [0.5]  # expert 1 gets all four wrong on question 0
    assert metrics["experts/0/frac_all_zero"] == [0.0]


def test_without_meml_terms_the_loss_equals_the_multi_expert_grpo_baseline(tiny_model_dir, tmp_path):
    meml = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), expert_prompts=PROMPTS,
                    scale_by_std=True, positive_only=False)
    baseline = _trainer(SparsityGRPOTrainer, tiny_model_dir, tmp_path, _baseline_inputs())
    ours, theirs = meml._generate_and_score_completions(_meml_inputs()), \
        baseline._generate_and_score_completions(_baseline_inputs())
    assert torch.equal(ours["completion_ids"], theirs["completion_ids"])
    assert ours["advantages"].tolist() == pytest.approx(theirs["advantages"].tolist(), abs=1e-6)
    loss_ours, loss_theirs = meml.compute_loss(meml.model, ours), baseline.compute_loss(baseline.model, theirs)
    assert loss_ours.item() == pytest.approx(loss_theirs.item(), abs=1e-7)
    loss_ours.backward()
    loss_theirs.backward()
    grads = [(a.grad, b.grad) for a, b in zip(meml.model.parameters(), baseline.model.parameters())]
    assert any(a is not None and a.abs().max() > 0 for a, _ in grads)  # the loss is 0 at ratio 1; its gradient is not
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in grads if a is not None)


def test_a_few_steps_train_under_every_expert(tiny_model_dir, small_world, tmp_path):
    from datasets import Dataset
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from meml.data import load_records
    from meml.trainer import meml_rows
    from tests.test_rl import length_reward

    rows = meml_rows(load_records("synth_gsm8k", "train", small_world)[:6])
    run = RLRunConfig.for_algorithm("GRPO", {"steps": 2, "prompts_per_step": 2, "num_generations": G,
                                             "max_completion_length": 12, "learning_rate": 1e-2, "save_steps": 100})
    trainer = MEMLGRPOTrainer(model=AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)),
                              reward_funcs=[length_reward], args=run.grpo_config(tmp_path / "t"),
                              train_dataset=Dataset.from_list(rows), expert_prompts=PROMPTS,
                              processing_class=AutoTokenizer.from_pretrained(str(tiny_model_dir), padding_side="left"))
    trainer.train()
    before = load_file(tiny_model_dir / "model.safetensors")
    after = {k: v.detach() for k, v in trainer.model.state_dict().items()}
    assert any(not torch.equal(before[k], after[k]) for k in before if k in after)
    logged = [h for h in trainer.state.log_history if "reward" in h]
    assert len(logged) == 2 and {"experts/0/reward", "experts/1/reward"} <= set(logged[0])


def _hand_nll(model, transfer):
    """Token-mean NLL of each transferred completion given its prompt, computed directly from the logits."""
    total, count = 0.0, 0
    for p_ids, p_mask, c_ids, c_mask in zip(transfer["prompt_ids"], transfer["prompt_mask"],
                                            transfer["completion_ids"], transfer["completion_mask"]):
        prompt = p_ids[p_mask.bool()]
        completion = c_ids[c_mask.bool()]
        ids = torch.cat([prompt, completion]).unsqueeze(0)
        logps = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
        targets = ids[0, 1:]
        token_logps = logps[torch.arange(len(targets)), targets][len(prompt) - 1:]
        total -= token_logps.sum()
        count += len(completion)
    return total / count


def test_mutual_learning_moves_the_best_experts_answer_to_the_worst_prompt(tiny_model_dir, tmp_path):
    from meml.prompts import prompt_messages

    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), expert_prompts=PROMPTS,
                       lambda1=0.5)
    trainer._generate_and_score_completions(_meml_inputs())
    transfer = trainer._transfer
    assert trainer._metrics["train"]["mutual/questions"] == [2.0]
    # question 0: E+ = expert 0 (1 of 4 right), E- = expert 1; question 1: E+ = expert 1 (4 of 4), E- = expert 0
    expected_prompts, _, _ = trainer._tokenize_prompts([prompt_messages("Tom has 5 apples.", PROMPTS[1]),
                                                        prompt_messages("Ann has 3 pens.", PROMPTS[0])])
    for row, ids in zip(transfer["prompt_ids"], expected_prompts):
        assert row[-len(ids):].tolist() == ids
    # the transferred completions are the first correct ones: row 0 of each E+ group
    assert transfer["completion_ids"][:, 0].tolist() == [11, 11 + (12 % 5)]
    model = trainer.model
    loss = trainer.mutual_learning_loss(model, transfer)
    assert loss.item() == pytest.approx(_hand_nll(model, transfer).item(), rel=1e-5)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= 0.05 * p.grad
    assert trainer.mutual_learning_loss(model, transfer).item() < loss.item()  # p(O+ | Q, P-) went up


def test_no_transfer_on_ties_or_without_a_correct_answer(tiny_model_dir, tmp_path):
    rows = [{**q, "pattern": p} for q, p in zip(_meml_inputs()[::G], ["1000|1000", "0000|0000"])]
    inputs = [dict(r) for r in rows for _ in range(G)]
    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, inputs, expert_prompts=PROMPTS, lambda1=1.0)
    out = trainer._generate_and_score_completions(inputs)
    assert trainer._transfer is None and trainer._metrics["train"]["mutual/questions"] == [0.0]
    trainer.compute_loss(trainer.model, out)
    assert trainer._metrics["train"]["mutual/loss"] == [0.0]


def test_buffer_takes_hard_groups_and_fits_them_when_full(tiny_model_dir, tmp_path):
    from meml.losses import HardExampleBuffer

    # groups with more than 2 of 4 wrong: question 0 under both experts (3 and 4 wrong); question 1 has 2 and 0
    buffer = HardExampleBuffer(capacity=10, k=2, probability="always")
    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), expert_prompts=PROMPTS,
                       buffer=buffer, lambda2=0.5)
    trainer._generate_and_score_completions(_meml_inputs())
    assert [(i["question"], i["expert"]) for i in buffer.items] == [("Tom has 5 apples.", 0), ("Tom has 5 apples.", 1)]
    assert trainer._buffer_batch is None and trainer._metrics["train"]["buffer/size"] == [2.0]

    buffer = HardExampleBuffer(capacity=2, k=2, probability="always")
    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), expert_prompts=PROMPTS,
                       buffer=buffer, lambda2=0.5)
    out = trainer._generate_and_score_completions(_meml_inputs())
    batch = trainer._buffer_batch
    assert batch is not None and buffer.items == [] and trainer.sft_updates == 1
    eos = trainer._tokenizer.eos_token_id
    assert batch["completion_ids"][0][batch["completion_mask"][0].bool()].tolist()[-1] == eos
    total = trainer.compute_loss(trainer.model, out)
    assert trainer._buffer_batch is None  # used once, then gone
    policy = trainer.compute_loss(trainer.model, out)
    assert (total - policy).item() == pytest.approx(0.5 * _hand_nll(trainer.model, batch).item(), rel=1e-5)
    assert trainer._metrics["train"]["buffer/sft_updates"] == [1.0]


def test_buffer_state_travels_with_checkpoints(tiny_model_dir, tmp_path):
    from meml.losses import HardExampleBuffer

    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), expert_prompts=PROMPTS,
                       buffer=HardExampleBuffer(capacity=10, k=2, probability="always"))
    trainer._generate_and_score_completions(_meml_inputs())
    trainer.state.global_step = 1
    trainer.create_optimizer_and_scheduler(num_training_steps=1)
    trainer._save_checkpoint(trainer.model, None)
    fresh = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path / "b", _meml_inputs(), expert_prompts=PROMPTS,
                     buffer=HardExampleBuffer(capacity=10, k=2, probability="always"))
    fresh.load_buffer_state(tmp_path / "MEMLGRPOTrainer" / "checkpoint-1")
    assert fresh.buffer.items == trainer.buffer.items and len(fresh.buffer.items) == 2
