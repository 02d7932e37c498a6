"""MEMLGRPOTrainer: expert expansion, intra-expert advantages, mutual learning, buffer, Table 5 runs."""

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
    assert metrics["sparsity/frac_questions_all_zero"] == [0.0]  # expert 0 answers question 0 once


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
    assert trainer._metrics["train"]["sparsity/frac_questions_all_zero"] == [0.5]  # question 1: all wrong
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


def test_transfer_all_teaches_every_correct_answer_of_the_best_expert(tiny_model_dir, tmp_path):
    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), expert_prompts=PROMPTS,
                       lambda1=1.0, transfer="all")
    trainer._generate_and_score_completions(_meml_inputs())
    # question 0: expert 0 has 1 right answer (row 0); question 1: expert 1 has 4 (rows 12..15)
    assert trainer._transfer["rows"].tolist() == [0, 12, 13, 14, 15]
    assert trainer._metrics["train"]["mutual/questions"] == [2.0]


def test_teacher_term_adds_the_stop_gradient_log_prob_and_keeps_the_gradient(tiny_model_dir, tmp_path):
    from trl.trainer.utils import shuffle_sequence_dict

    grads, values = [], []
    for teacher in (False, True):
        trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path / str(teacher), _meml_inputs(),
                           expert_prompts=PROMPTS, lambda1=1.0, teacher_term=teacher)
        out = trainer._generate_and_score_completions(_meml_inputs())
        torch.manual_seed(0)
        shuffled = shuffle_sequence_dict(out)  # as TRL does before the loss: O+ must still be found
        trainer.compute_loss(trainer.model, shuffled).backward()
        grads.append([p.grad.clone() for p in trainer.model.parameters() if p.grad is not None])
        values.append(trainer._metrics["train"]["mutual/loss"][-1])
        if teacher:
            rows = trainer._transfer["rows"]
            own = {k: out[k][rows] for k in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask")}
            student = _hand_nll(trainer.model, trainer._transfer).item()
            teacher_logp = -_hand_nll(trainer.model, own).item()  # log p(O+ | Q, P+), token mean
            assert values[1] == pytest.approx(student + teacher_logp, rel=1e-4)
    assert values[0] != pytest.approx(values[1])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads))


def test_buffer_can_train_on_the_experts_own_correct_answer(tiny_model_dir, tmp_path):
    from meml.losses import HardExampleBuffer

    buffer = HardExampleBuffer(capacity=10, k=2, probability="always")
    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), expert_prompts=PROMPTS,
                       buffer=buffer, buffer_reference="own_rollout")
    out = trainer._generate_and_score_completions(_meml_inputs())
    # question 0: expert 0 (3 of 4 wrong) has one right answer, row 0; expert 1 (4 wrong) has none: skipped
    assert [(i["question"], i["expert"]) for i in buffer.items] == [("Tom has 5 apples.", 0)]
    expected = trainer._tokenizer.decode(out["completion_ids"][0][out["completion_mask"][0].bool()],
                                         skip_special_tokens=True)
    assert buffer.items[0]["reference"] == expected != "#### 5"


def test_single_expert_trainer_logs_under_its_own_expert_number(tiny_model_dir, tmp_path):
    inputs = _meml_inputs()
    for row in inputs:
        row["pattern"] = "0000|" + row["pattern"].split("|")[0]  # expert 1 sees what expert 0 saw above
    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, inputs, expert_prompts=[PROMPTS[1]],
                       expert_ids=[1])
    out = trainer._generate_and_score_completions(inputs)
    assert out["advantages"].tolist()[:G] == pytest.approx([0.75, 0, 0, 0])
    experts = {k.split("/")[1] for k in trainer._metrics["train"] if k.startswith("experts/")}
    assert experts == {"1"}


def expert_zero_knows_reward(prompts, completions, expert, **kwargs):
    """Expert 0 is always right; the others are right on completions of even length (varies in a group)."""
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return [1.0 if e == 0 else float(len(t) % 2 == 0) for t, e in zip(texts, expert)]


@pytest.mark.parametrize("method", ["MEML-GRPO", "MEML-GRPO-noIML", "MEML-GRPO-noHSFT", "MEML-GRPO-noHSFT-noIML",
                                    "MEML-GRPO-Expert1-noHSFT-noIML"])
def test_every_table5_config_trains_a_few_steps(method, tiny_model_dir, small_world, tmp_path, monkeypatch):
    """Each Table 5 row through the workflow's path (MEMLConfig -> trainer_builder -> train_rl)."""
    import json

    from safetensors.torch import load_file

    import baselines.rl
    from baselines.rl import train_rl
    from meml.data import load_records
    from meml.riel_config import MEMLConfig
    from meml.trainer import meml_rows, trainer_builder

    monkeypatch.setattr(baselines.rl, "_reward_functions", lambda task, run: [expert_zero_knows_reward])
    prompts = [*PROMPTS, "You are Expert 2. Solve step by step."]
    settings = MEMLConfig.for_method(method, {"buffer_k": 1, "buffer_capacity": 2, "buffer_probability": "always",
                                              "questions_per_step": 2})
    run = settings.grpo_run(RLRunConfig.for_algorithm("GRPO", {
        "steps": 3, "num_generations": G, "max_completion_length": 10, "learning_rate": 1e-2, "save_steps": 100}),
        len(prompts))
    out = tmp_path / "out"
    train_rl(tiny_model_dir, meml_rows(load_records("synth_gsm8k", "train", small_world)[:8]), "gsm8k", run, out,
             tmp_path / "work", build=trainer_builder(settings, prompts), extra_settings={"meml": vars(settings)})
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(out / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    variant = settings
    experts = {k[len("reward_expert"):] for k in rows[0] if k.startswith("reward_expert")}
    assert experts == ({"1"} if variant.single_expert == 1 else {"0", "1", "2"})
    if variant.iml:
        assert sum(r["mutual_questions"] for r in rows) > 0 and all(r["mutual_loss"] > 0 for r in rows
                                                                    if r["mutual_questions"])
    else:
        assert "mutual_loss" not in rows[0]
    if variant.hsft:
        assert rows[-1]["buffer_sft_updates"] >= 1 and any("buffer_sft_loss" in r for r in rows)
    else:
        assert "buffer_size" not in rows[0]
    saved = json.loads((out / "run.json").read_text())["settings"]["meml"]
    assert (saved["hsft"], saved["iml"], saved["single_expert"]) == (variant.hsft, variant.iml, variant.single_expert)
