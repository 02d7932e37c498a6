"""MEMLGRPOTrainer: expert expansion, intra-expert advantages, mutual learning, buffer, Table 5 runs."""

import pytest
import torch

from meml.method.config import MEMLConfig
from meml.method.trainer import MEMLGRPOTrainer
from meml.methods import Method
from meml.training.grpo import SparsityGRPOTrainer
from meml.training.rl_config import RLConfig

G = 4
PROMPTS = ["You are Expert 0. Solve step by step.", "You are Expert 1. Solve step by step."]


def expert_reward(prompts, completions, pattern, expert, **kwargs):
    """Reward of completion i: digit ``i % G`` of its expert's part of ``pattern`` ("1000|0000")."""
    return [float(p.split("|")[e][i % G]) for i, (p, e) in enumerate(zip(pattern, expert))]


def meml(method="MEML-GRPO-noHSFT-noIML", **fields):
    """The MEMLConfig of ``method`` (its switches) with ``fields`` changed."""
    return MEMLConfig(**fields).for_method(Method.parse(method))


def _trainer(cls, model_dir, tmp_path, rows, **kwargs):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = RLConfig(algorithm="GRPO", prompts_per_step=2, num_generations=G, max_completion_length=8)
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


@pytest.mark.slow
def test_every_question_is_sampled_under_every_expert(tiny_model_dir, tmp_path):
    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), meml=meml(), expert_prompts=PROMPTS)
    assert trainer.expert_ids == [0, 1] and trainer.expert_prompts == PROMPTS
    rows = trainer.expand_to_experts(_meml_inputs())
    assert len(rows) == 2 * 2 * G
    assert [r["expert"] for r in rows[::G]] == [0, 1, 0, 1]
    assert rows[G]["prompt"][0] == {"role": "system", "content": PROMPTS[1]}
    assert rows[2 * G]["prompt"][1]["content"] == "Ann has 3 pens."


@pytest.mark.slow
def test_the_method_switches_reach_the_trainer(tiny_model_dir, tmp_path):
    prompts = [*PROMPTS, "You are Expert 2. Solve step by step."]
    full = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path / "full", _meml_inputs(), expert_prompts=prompts,
                    meml=meml("MEML-GRPO", lambda1=0.5, buffer_capacity=3, buffer_k=2, buffer_rule="ge"))
    assert full.expert_ids == [0, 1, 2] and full.expert_prompts == prompts and full.lambda1 == 0.5
    assert (full.buffer.capacity, full.buffer.k, full.buffer.rule) == (3, 2, "ge")
    assert full.meml.hsft and full.meml.iml
    ablated = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path / "ablated", _meml_inputs(), expert_prompts=prompts,
                       meml=meml("MEML-GRPO-noHSFT-noIML", lambda1=0.5, num_experts=2))
    assert ablated.buffer is None and ablated.lambda1 == 0.0  # -noIML: lambda1 is not used
    assert ablated.expert_ids == [0, 1] and ablated.expert_prompts == PROMPTS  # the first num_experts experts
    single = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path / "single", _meml_inputs(), expert_prompts=prompts,
                      meml=meml("MEML-GRPO-Expert2-noIML"))
    assert single.expert_ids == [2] and single.expert_prompts == prompts[2:] and single.buffer is not None


@pytest.mark.slow
def test_default_advantages_are_intra_expert_and_truncated(tiny_model_dir, tmp_path):
    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), meml=meml(), expert_prompts=PROMPTS)
    out = trainer._generate_and_score_completions(_meml_inputs())
    expected = [0.75, 0, 0, 0, 0, 0, 0, 0, 0.5, 0.5, 0, 0, 0, 0, 0, 0]
    assert out["advantages"].tolist() == pytest.approx(expected)
    metrics = trainer._metrics["train"]
    assert metrics["experts/1/frac_all_zero"] == [0.5]  # expert 1 gets all four wrong on question 0
    assert metrics["experts/0/frac_all_zero"] == [0.0]
    assert metrics["sparsity/frac_questions_all_zero"] == [0.0]  # expert 0 answers question 0 once


@pytest.mark.slow
def test_without_meml_terms_the_loss_equals_the_multi_expert_grpo_baseline(tiny_model_dir, tmp_path):
    ours = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), expert_prompts=PROMPTS,
                    meml=meml(scale_by_std=True, positive_only=False))
    baseline = _trainer(SparsityGRPOTrainer, tiny_model_dir, tmp_path, _baseline_inputs())
    mine, theirs = ours._generate_and_score_completions(_meml_inputs()), \
        baseline._generate_and_score_completions(_baseline_inputs())
    assert torch.equal(mine["completion_ids"], theirs["completion_ids"])
    assert mine["advantages"].tolist() == pytest.approx(theirs["advantages"].tolist(), abs=1e-6)
    loss_ours, loss_theirs = ours.compute_loss(ours.model, mine), baseline.compute_loss(baseline.model, theirs)
    assert loss_ours.item() == pytest.approx(loss_theirs.item(), abs=1e-7)
    loss_ours.backward()
    loss_theirs.backward()
    grads = [(a.grad, b.grad) for a, b in zip(ours.model.parameters(), baseline.model.parameters())]
    assert any(a is not None and a.abs().max() > 0 for a, _ in grads)  # the loss is 0 at ratio 1; its gradient is not
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in grads if a is not None)


@pytest.mark.slow
def test_a_few_steps_train_under_every_expert(tiny_model_dir, small_world, tmp_path):
    from datasets import Dataset
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from meml.data import load_records
    from meml.method.trainer import meml_rows
    from tests.test_rl import length_reward

    rows = meml_rows(load_records("synth_gsm8k", "train", small_world)[:6])
    run = RLConfig(algorithm="GRPO", steps=2, prompts_per_step=2, num_generations=G, max_completion_length=12,
                   learning_rate=1e-2, save_steps=100)
    trainer = MEMLGRPOTrainer(model=AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)),
                              reward_funcs=[length_reward], args=run.grpo_config(tmp_path / "t"),
                              train_dataset=Dataset.from_list(rows), meml=meml(), expert_prompts=PROMPTS,
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


@pytest.mark.slow
def test_mutual_learning_moves_the_best_experts_answer_to_the_worst_prompt(tiny_model_dir, tmp_path):
    from meml.prompts import prompt_messages

    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), expert_prompts=PROMPTS,
                       meml=meml("MEML-GRPO-noHSFT", lambda1=0.5))
    assert trainer.lambda1 == 0.5 and trainer.buffer is None
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


@pytest.mark.slow
def test_no_transfer_on_ties_or_without_a_correct_answer(tiny_model_dir, tmp_path):
    rows = [{**q, "pattern": p} for q, p in zip(_meml_inputs()[::G], ["1000|1000", "0000|0000"])]
    inputs = [dict(r) for r in rows for _ in range(G)]
    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, inputs, expert_prompts=PROMPTS,
                       meml=meml("MEML-GRPO-noHSFT", lambda1=1.0))
    out = trainer._generate_and_score_completions(inputs)
    assert trainer._transfer is None and trainer._metrics["train"]["mutual/questions"] == [0.0]
    assert trainer._metrics["train"]["sparsity/frac_questions_all_zero"] == [0.5]  # question 1: all wrong
    trainer.compute_loss(trainer.model, out)
    assert trainer._metrics["train"]["mutual/loss"] == [0.0]


@pytest.mark.slow
def test_random_tie_breaks_reach_the_trainer_and_its_checkpoint(tiny_model_dir, tmp_path):
    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), expert_prompts=PROMPTS,
                       meml=meml("MEML-GRPO-noHSFT", tie_break="random"))
    assert trainer.buffer is None and trainer.tie_rng is not None
    state = trainer.extra_state()
    assert set(state) == {"tie_rng"}  # checkpointed although there is no buffer
    expected = [trainer.tie_rng.random() for _ in range(3)]
    trainer.load_extra_state(state)
    assert [trainer.tie_rng.random() for _ in range(3)] == expected
    plain = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), expert_prompts=PROMPTS,
                     meml=meml("MEML-GRPO-noHSFT"))
    assert plain.tie_rng is None and plain.extra_state() is None


def _buffered(**fields):
    """MEML-GRPO-noIML (buffer, no mutual learning) whose buffer takes groups with more than 2 of 4 wrong."""
    return meml("MEML-GRPO-noIML", **{"buffer_capacity": 10, "buffer_k": 2, "buffer_probability": "always",
                                      **fields})


@pytest.mark.slow
def test_buffer_takes_hard_groups_and_fits_them_when_full(tiny_model_dir, tmp_path):
    # groups with more than 2 of 4 wrong: question 0 under both experts (3 and 4 wrong); question 1 has 2 and 0
    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), expert_prompts=PROMPTS,
                       meml=_buffered(lambda2=0.5))
    buffer = trainer.buffer
    assert trainer.lambda1 == 0.0 and (buffer.capacity, buffer.k, buffer.probability) == (10, 2, "always")
    trainer._generate_and_score_completions(_meml_inputs())
    assert [(i["question"], i["expert"]) for i in buffer.items] == [("Tom has 5 apples.", 0), ("Tom has 5 apples.", 1)]
    assert trainer._buffer_batch is None and trainer._metrics["train"]["buffer/size"] == [2.0]

    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), expert_prompts=PROMPTS,
                       meml=_buffered(lambda2=0.5, buffer_capacity=2))
    buffer = trainer.buffer
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


@pytest.mark.slow
def test_transfer_all_teaches_every_correct_answer_of_the_best_expert(tiny_model_dir, tmp_path):
    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), expert_prompts=PROMPTS,
                       meml=meml("MEML-GRPO-noHSFT", lambda1=1.0, transfer="all"))
    trainer._generate_and_score_completions(_meml_inputs())
    # question 0: expert 0 has 1 right answer (row 0); question 1: expert 1 has 4 (rows 12..15)
    assert trainer._transfer["rows"].tolist() == [0, 12, 13, 14, 15]
    assert trainer._metrics["train"]["mutual/questions"] == [2.0]


@pytest.mark.slow
def test_teacher_term_adds_the_stop_gradient_log_prob_and_keeps_the_gradient(tiny_model_dir, tmp_path):
    from trl.trainer.utils import shuffle_sequence_dict

    grads, values = [], []
    for teacher in (False, True):
        trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path / str(teacher), _meml_inputs(),
                           expert_prompts=PROMPTS, meml=meml("MEML-GRPO-noHSFT", lambda1=1.0, teacher_term=teacher))
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


@pytest.mark.slow
def test_buffer_can_train_on_the_experts_own_correct_answer(tiny_model_dir, tmp_path):
    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), expert_prompts=PROMPTS,
                       meml=_buffered(buffer_reference="own_rollout"))
    buffer = trainer.buffer
    out = trainer._generate_and_score_completions(_meml_inputs())
    # question 0: expert 0 (3 of 4 wrong) has one right answer, row 0; expert 1 (4 wrong) has none: skipped
    assert [(i["question"], i["expert"]) for i in buffer.items] == [("Tom has 5 apples.", 0)]
    expected = trainer._tokenizer.decode(out["completion_ids"][0][out["completion_mask"][0].bool()],
                                         skip_special_tokens=True)
    assert buffer.items[0]["reference"] == expected != "#### 5"


@pytest.mark.slow
def test_single_expert_trainer_logs_under_its_own_expert_number(tiny_model_dir, tmp_path):
    inputs = _meml_inputs()
    for row in inputs:
        row["pattern"] = "0000|" + row["pattern"].split("|")[0]  # expert 1 sees what expert 0 saw above
    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, inputs, expert_prompts=PROMPTS,
                       meml=meml("MEML-GRPO-Expert1-noHSFT-noIML"))
    assert trainer.expert_ids == [1] and trainer.expert_prompts == [PROMPTS[1]]
    out = trainer._generate_and_score_completions(inputs)
    assert len(out["advantages"]) == 2 * G  # two questions, one expert
    assert out["advantages"].tolist()[:G] == pytest.approx([0.75, 0, 0, 0])
    experts = {k.split("/")[1] for k in trainer._metrics["train"] if k.startswith("experts/")}
    assert experts == {"1"}


def expert_zero_knows_reward(prompts, completions, expert, **kwargs):
    """Expert 0 is always right; the others are right on completions of even length (varies in a group)."""
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return [1.0 if e == 0 else float(len(t) % 2 == 0) for t, e in zip(texts, expert)]


PROMPTS3 = [*PROMPTS, "You are Expert 2. Solve step by step."]


def table5_builder(config: MEMLConfig):
    """The workflow's MEML-GRPO ``build`` (``trainer_builder``) with ``expert_zero_knows_reward`` as the reward."""
    from meml.method.trainer import trainer_builder

    build = trainer_builder(config, PROMPTS3)

    def with_reward(*args, **kwargs):
        return build(*args, **kwargs, reward_funcs=[expert_zero_knows_reward])

    return with_reward


@pytest.mark.slow
@pytest.mark.parametrize("method", ["MEML-GRPO", "MEML-GRPO-noIML", "MEML-GRPO-noHSFT", "MEML-GRPO-noHSFT-noIML",
                                    "MEML-GRPO-Expert1-noHSFT-noIML"])
def test_every_table5_config_trains_a_few_steps(method, tiny_model_dir, small_world, tmp_path):
    """Each Table 5 row through the workflow's path (MEMLConfig -> trainer_builder -> train_rl)."""
    import json
    from dataclasses import asdict

    from safetensors.torch import load_file

    from meml.data import load_records
    from meml.method.trainer import meml_rows
    from meml.training.rl import train_rl

    config = meml(method, buffer_k=1, buffer_capacity=2, buffer_probability="always", questions_per_step=2)
    run = config.grpo_run(RLConfig(algorithm="GRPO", steps=3, num_generations=G, max_completion_length=10,
                                   learning_rate=1e-2, save_steps=100), len(PROMPTS3))
    out = tmp_path / "out"
    train_rl(tiny_model_dir, meml_rows(load_records("synth_gsm8k", "train", small_world)[:8]), "gsm8k", run, out,
             tmp_path / "work", build=table5_builder(config), extra_settings={"meml": asdict(config)})
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(out / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    experts = {k[len("reward_expert"):] for k in rows[0] if k.startswith("reward_expert")}
    assert experts == ({"1"} if config.single_expert == 1 else {"0", "1", "2"})
    if config.iml:
        assert sum(r["mutual_questions"] for r in rows) > 0 and all(r["mutual_loss"] > 0 for r in rows
                                                                    if r["mutual_questions"])
    else:
        assert "mutual_loss" not in rows[0]
    if config.hsft:
        assert rows[-1]["buffer_sft_updates"] >= 1 and any("buffer_sft_loss" in r for r in rows)
    else:
        assert "buffer_size" not in rows[0]
    saved = json.loads((out / "run.json").read_text())["settings"]["meml"]
    assert (saved["hsft"], saved["iml"], saved["single_expert"]) == (config.hsft, config.iml, config.single_expert)


class _Interrupted(Exception):
    pass


class _InterruptAtFirstCheckpoint:
    """Raises once the first checkpoint is written: the run stops there, as after a crash."""

    def on_save(self, args, state, control, **kwargs):
        raise _Interrupted(state.global_step)


@pytest.mark.slow
def test_separate_buffer_step_fits_the_buffer_after_the_rl_update(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    trainer = _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), expert_prompts=PROMPTS,
                       meml=_buffered(lambda2=0.5, buffer_capacity=2, buffer_update="separate",
                                      buffer_learning_rate=1e-2))
    out = trainer._generate_and_score_completions(_meml_inputs())
    batch = trainer._buffer_batch
    assert batch is not None and trainer.sft_updates == 1
    first = trainer.compute_loss(trainer.model, out)
    assert trainer._separate_batch is batch and trainer._buffer_batch is None
    assert trainer.compute_loss(trainer.model, out).item() == pytest.approx(first.item())  # no buffer term in it
    # by hand, on the same start weights: one AdamW step on 0.5 x NLL at 1e-2, gradients clipped at norm 1.0. A first
    # Adam step moves each weight by lr x g / (|g| + eps): compared where |g| is well above eps (elsewhere float
    # noise in g decides the step)
    reference = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    start = {name: p.detach().clone() for name, p in reference.named_parameters()}
    optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-2, weight_decay=0.0)
    nll = _hand_nll(reference, batch)
    (0.5 * nll).backward()
    torch.nn.utils.clip_grad_norm_(reference.parameters(), 1.0)
    grads = {name: p.grad.clone() for name, p in reference.named_parameters()}
    optimizer.step()
    trainer.separate_buffer_step()
    assert trainer._separate_batch is None and trainer.buffer_optimizer is not None
    assert trainer._metrics["train"]["buffer/sft_loss"] == [pytest.approx(nll.item(), rel=1e-5)]
    updated = dict(reference.named_parameters())
    compared = 0
    for name, p in trainer.model.named_parameters():
        clear = grads[name].abs() > 1e-5
        torch.testing.assert_close(p.detach()[clear], updated[name].detach()[clear], atol=2e-4, rtol=0)
        compared += int(clear.sum())
    assert compared > 1000
    assert any(not torch.equal(p.detach(), start[name]) for name, p in trainer.model.named_parameters())
    trainer.separate_buffer_step()  # nothing pending: nothing happens
    assert len(trainer._metrics["train"]["buffer/sft_loss"]) == 1


@pytest.mark.slow
def test_separate_buffer_step_needs_its_learning_rate(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="buffer_learning_rate"):
        _trainer(MEMLGRPOTrainer, tiny_model_dir, tmp_path, _meml_inputs(), expert_prompts=PROMPTS,
                 meml=_buffered(buffer_update="separate"))


def test_the_workflow_gives_the_separate_buffer_step_the_sft_learning_rate():
    from meml.pipeline import reads
    from meml.pipeline.settings import load_settings, with_changes

    settings = with_changes(load_settings(), sft={"learning_rate": 3e-4})
    assert reads.meml_run(settings, "MEML-GRPO", 0)[0].buffer_learning_rate == 3e-4
    settings = with_changes(settings, meml={"buffer_learning_rate": 1e-3})
    assert reads.meml_run(settings, "MEML-GRPO", 0)[0].buffer_learning_rate == 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("variant", [{}, {"buffer_update": "separate", "buffer_learning_rate": 1e-2,
                                          "tie_break": "random", "buffer_capacity": 2}])
def test_a_resumed_run_with_the_buffer_equals_an_uninterrupted_one(variant, tiny_model_dir, small_world, tmp_path):
    """The buffer's items, its sampling RNG (K/G) and the SFT-update count survive a restart from a checkpoint:
    a run stopped after step 2 and started again ends exactly like one that ran through (also with the separate
    buffer step, whose AdamW state is checkpointed, and random E+/E- tie-breaks)."""
    import transformers
    from safetensors.torch import load_file

    from meml.data import load_records
    from meml.method.trainer import meml_rows
    from meml.training.rl import last_checkpoint, train_rl
    from tests.test_rl import _log_without_timing

    # groups with at least 2 of 4 wrong enter with probability K/G = 1/2: the buffer's RNG matters
    config = meml("MEML-GRPO", **{"buffer_k": 2, "buffer_rule": "ge", "buffer_capacity": 4, "questions_per_step": 2,
                                  **variant})
    run = config.grpo_run(RLConfig(algorithm="GRPO", steps=6, num_generations=G, max_completion_length=10,
                                   learning_rate=1e-2, save_steps=2), len(PROMPTS3))
    rows = meml_rows(load_records("synth_gsm8k", "train", small_world)[:8])
    build = table5_builder(config)

    def interrupted(*args, **kwargs):
        trainer = build(*args, **kwargs)
        trainer.add_callback(type("Interrupt", (_InterruptAtFirstCheckpoint, transformers.TrainerCallback), {})())
        return trainer

    out, work = tmp_path / "out", tmp_path / "work"
    with pytest.raises(_Interrupted):
        train_rl(tiny_model_dir, rows, "gsm8k", run, out, work, build=interrupted)
    assert not out.exists() and last_checkpoint(work / "trainer").name == "checkpoint-2"
    metrics = train_rl(tiny_model_dir, rows, "gsm8k", run, out, work, build=build)
    assert metrics["resumed_from_step"] == 2 and metrics["steps"] == 6
    straight = tmp_path / "straight"
    train_rl(tiny_model_dir, rows, "gsm8k", run, straight, tmp_path / "straight_work", build=build)

    expected = _log_without_timing(straight / "metrics.jsonl")
    if not variant:
        assert expected[1]["buffer_size"] > 0 and expected[1]["buffer_sft_updates"] == 0  # items wait at checkpoint
    assert expected[-1]["buffer_sft_updates"] >= 1  # and are fitted after it
    assert _log_without_timing(out / "metrics.jsonl") == expected
    resumed, uninterrupted = load_file(out / "model.safetensors"), load_file(straight / "model.safetensors")
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted)
