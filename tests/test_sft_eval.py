"""SFT through TRL changes the weights; lm-eval scores a model whose answers are known."""

import json

import pytest
import torch
from safetensors.torch import load_file

from baselines.sft import method_rows
from meml.data import load_records
from meml.evaluation import evaluate_model, write_task_docs
from meml.methods import Method
from meml.records import Record
from meml.training.sft import SFTConfig, train_sft

PROMPTS = ["You are Expert 0. Solve step by step.", "You are Expert 1. Solve step by step."]


def test_method_rows_pair_each_expert_with_its_prompt():
    questions = ["q1", "q2"]
    trajectories = [["a1", "a2"], ["b1", None]]
    rows = method_rows(Method.parse("Expert1-SFT"), questions, trajectories, PROMPTS)
    assert [r["messages"][0]["content"] for r in rows] == [PROMPTS[1]]  # None completion left out
    assert rows[0]["messages"][2] == {"role": "assistant", "content": "b1"}
    moe = method_rows(Method.parse("MoE-SFT"), questions, trajectories, PROMPTS)
    assert [(r["messages"][0]["content"], r["messages"][2]["content"]) for r in moe] == [
        (PROMPTS[0], "a1"), (PROMPTS[0], "a2"), (PROMPTS[1], "b1")]
    with pytest.raises(ValueError, match="not an SFT method"):
        method_rows(Method.parse("MoE-SFT-GRPO"), questions, trajectories, PROMPTS)
    with pytest.raises(ValueError, match="only 2 experts"):
        method_rows(Method.parse("Expert2-SFT"), questions, trajectories, PROMPTS)
    with pytest.raises(ValueError, match="no trajectories for expert 1"):
        method_rows(Method.parse("MoE-SFT"), questions, trajectories[:1], PROMPTS)
    with pytest.raises(ValueError, match="unknown method"):
        Method.parse("Expert-GRPO")


@pytest.fixture(scope="module")
def constant_model(tmp_path_factory, tiny_model_dir, small_world):
    """A few SFT steps teach the tiny model to answer every question with '#### 7'."""
    records = load_records("synth_gsm8k", "train", small_world)
    rows = [{"messages": [{"role": "system", "content": PROMPTS[0]}, {"role": "user", "content": r.question},
                          {"role": "assistant", "content": "#### 7"}]} for r in records]
    out = tmp_path_factory.mktemp("sft") / "constant"
    run = SFTConfig(steps=40, batch_size=8, learning_rate=1e-2, warmup_ratio=0.0, max_length=128, seed=0,
                    logging_steps=5)
    metrics = train_sft(tiny_model_dir, rows, run, out, {"seed": 0})
    return out, metrics


@pytest.mark.slow
def test_sft_changes_weights_and_writes_logs(constant_model, tiny_model_dir):
    out, metrics = constant_model
    before = load_file(str(tiny_model_dir / "model.safetensors"))
    after = load_file(str(out / "model.safetensors"))
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) == len(before)
    assert metrics["steps"] == 40
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in log if "loss" in row]
    assert losses[-1] < losses[0] / 4
    run = json.loads((out / "run.json").read_text())
    assert run["metrics"]["steps"] == 40 and run["seed"] == 0
    assert not list(out.parent.glob(".constant.*"))  # the atomic temp folder is gone


@pytest.mark.slow
def test_lm_eval_counts_known_answers(constant_model, small_world, tmp_path):
    out, _ = constant_model
    records = load_records("synth_gsm8k", "test", small_world)[:10]
    # the model says 7 everywhere: make exactly 4 references 7
    docs = [Record(**{**r.to_dict(), "answer": "7" if i < 4 else "8"}) for i, r in enumerate(records)]
    path = write_task_docs(docs, tmp_path / "docs.jsonl")
    results = evaluate_model(out, path, "meml_test_constant", {0: PROMPTS[0]}, max_new_tokens=8, batch_size=5)
    summary, samples = results[0]
    assert [s["completion"].strip() for s in samples] == ["#### 7"] * 10
    assert summary["n"] == 10 and summary["accuracy"] == pytest.approx(0.4)
    assert summary["lm_eval_exact_match"] == pytest.approx(0.4)
    assert [s["correct"] for s in samples] == [1.0] * 4 + [0.0] * 6
    assert [s["id"] for s in samples] == [d.id for d in docs]


@pytest.mark.slow
def test_same_seed_same_weights(tmp_path, tiny_model_dir, small_world):
    records = load_records("synth_strategyqa", "train", small_world)[:24]
    rows = method_rows(Method.parse("MoE-SFT"), [r.question for r in records], [[r.rationale for r in records]] * 2,
                       PROMPTS)
    run = SFTConfig(steps=4, batch_size=4, learning_rate=1e-3, warmup_ratio=0.0, max_length=128, seed=3)
    weights = []
    for name in ("a", "b"):
        train_sft(tiny_model_dir, rows, run, tmp_path / name)
        weights.append(load_file(str(tmp_path / name / "model.safetensors")))
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_the_environment_report_is_skipped_only_inside_the_evaluation():
    from lm_eval import evaluator

    from meml.evaluation import without_environment_report

    original = evaluator.add_env_info
    with without_environment_report():
        storage = {}
        assert evaluator.add_env_info(storage) is None and storage == {}  # nothing collected, no subprocess
    assert evaluator.add_env_info is original
