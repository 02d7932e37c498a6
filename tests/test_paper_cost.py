"""bench/paper_cost.py: job counts, steps and rollouts of a small hand-made config against hand-computed numbers."""

from argparse import Namespace
from pathlib import Path

import pytest
import yaml

from meml.pipeline.settings import Settings, settings_from_config
from tests.conftest import load_bench

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cost():
    return load_bench("paper_cost")


def small_config(seeds=(0,), **data) -> Settings:
    """One family, one dataset; Expert1 and MoE starts; GRPO and two MEML-GRPO rows; 1 epoch (the rest: defaults)."""
    return settings_from_config({
        "seeds": list(seeds), "datasets": ["synth_gsm8k"], "models": {"families": ["qwen2"]}, "data": data,
        "sft": {"methods": ["Expert1-SFT", "MoE-SFT"], "epochs": 1, "batch_size": 16},
        "rl": {"methods": ["Expert1-SFT-GRPO", "MoE-SFT-GRPO"], "epochs": 1, "prompts_per_step": 6,
               "num_generations": 8, "max_completion_length": 80},
        "meml": {"methods": ["MEML-GRPO", "MEML-GRPO-Expert1-noHSFT-noIML"]},
        "complementarity": {"max_items": 100, "samples": 8}}, "test")


SIZES = {"synth_gsm8k": {"train": 100, "rl": 50, "test": 20}}  # made-up split sizes


def by_method(jobs, kind):
    return {j["method"]: j for j in jobs if j["kind"] == kind}


def test_counts_runs_steps_and_rollouts(cost):
    jobs = cost.plan(small_config(), SIZES)
    sft, rl, meml = by_method(jobs, "sft"), by_method(jobs, "rl"), by_method(jobs, "meml")
    assert len(sft) + len(rl) + len(meml) == 6
    # SFT: ExpertX one row a question, MoE one per question and expert; steps = ceil(rows / batch 16).
    assert (sft["Expert1-SFT"]["rows"], sft["Expert1-SFT"]["steps"]) == (100, 7)
    assert (sft["MoE-SFT"]["rows"], sft["MoE-SFT"]["steps"]) == (300, 19)
    # RL baselines: rows = (question, expert prompt) pairs, steps = ceil(rows / 6), 6 x 8 = 48 rollouts a step.
    assert [rl["Expert1-SFT-GRPO"][k] for k in ("rows", "steps", "per_step", "rollouts")] == [50, 9, 48, 432]
    assert [rl["MoE-SFT-GRPO"][k] for k in ("rows", "steps", "per_step", "rollouts")] == [150, 25, 48, 1200]
    # MEML-GRPO: ceil(6 / 3) = 2 questions x 3 experts x 8 a step, steps = ceil(50 questions / 2).
    full = meml["MEML-GRPO"]
    assert [full[k] for k in ("rows", "questions", "steps", "per_step", "rollouts")] == [50, 2, 25, 48, 1200]
    assert (meml["MEML-GRPO"]["iml"], meml["MEML-GRPO"]["hsft"]) == (True, True)
    # The single-expert ablation: expert 1 only, 6 questions a step.
    single = meml["MEML-GRPO-Expert1-noHSFT-noIML"]
    assert [single[k] for k in ("experts", "questions", "steps", "per_step", "rollouts")] == [1, 6, 9, 48, 432]
    # Evaluation: 20 test items under 1 (Expert1 methods) or 3 (multi-expert methods) prompts.
    ev = by_method(jobs, "eval")
    assert {m: j["rollouts"] for m, j in ev.items()} == {
        "Expert1-SFT": 20, "MoE-SFT": 60, "Expert1-SFT-GRPO": 20, "MoE-SFT-GRPO": 60, "MEML-GRPO": 60,
        "MEML-GRPO-Expert1-noHSFT-noIML": 20}
    # Complementarity: the one ExpertK-SFT model, 8 samples of each of the 20 items.
    assert [(j["method"], j["rollouts"]) for j in jobs if j["kind"] == "sample"] == [("Expert1-SFT", 160)]


def test_caps_and_seeds(cost):
    config = small_config(seeds=(0, 1, 2), max_rl_items=30, max_test_items=10)
    jobs = cost.plan(config, SIZES)
    # 2 SFT runs shared by the seeds (RL replicates), 4 RL and MEML-GRPO runs per seed
    assert sum(j["kind"] in ("sft", "rl", "meml") for j in jobs) == 2 + 3 * 4
    assert {j["steps"] for j in jobs if j["kind"] == "meml" and j["method"] == "MEML-GRPO"} == {15}  # ceil(30 / 2)
    assert sum(j["rollouts"] for j in jobs if j["kind"] == "eval") == 10 * (1 + 3) + 3 * 10 * (1 + 3 + 3 + 1)
    assert sum(j["kind"] == "sample" for j in jobs) == 1


def test_tokens_and_meml_extra(cost):
    config = small_config()
    jobs = cost.plan(config, SIZES)
    opt = Namespace(completion_ratio=0.5, teacher_tokens=400.0, step_overhead=0.0,
                    tps={"gen_tps": {"qwen2": 100.0}, "eval_tps": {"qwen2": 100.0}, "train_tps": {"qwen2": 1000.0}})
    lens = {"synth_gsm8k": {"prompt": 60.0, "answer0": 20.0, "source": "hand"}}
    used = cost.costs(jobs, config, lens, {}, opt)  # no measurements: mutual 1.0, buffer 0.1 a group
    assert used["logprob"] == 0.0  # no vLLM in the tiny setting: no separate old-log-prob pass
    me = by_method(jobs, "meml")["MEML-GRPO"]
    assert me["completion"] == 40.0 and me["tokens"] == 1200 * 40
    # 25 steps x 2 questions x (1.0 x (60 + 40) mutual + 3 experts x 0.1 x (60 + 20) buffer)
    assert me["extra_tokens"] == pytest.approx(25 * 2 * (100 + 24))
    assert me["gpu_s"] == pytest.approx(1200 * 40 / 100 + (1200 * 100 + 6200) / 1000)
    moe_sft = by_method(jobs, "sft")["MoE-SFT"]  # gold answers for every expert: the sources are programmatic
    assert moe_sft["tokens"] == pytest.approx(300 * 80)


def test_paper_config_loads_like_snakemake(cost):
    settings = cost.load_settings(REPO / "workflow" / "config" / "paper.yaml")
    paper = yaml.safe_load((REPO / "workflow" / "config" / "paper.yaml").read_text(encoding="utf-8"))
    assert settings.setting == "paper" and settings.datasets == paper["datasets"]
    assert settings.rl.prompts_per_step == paper["rl"]["prompts_per_step"]
    assert settings.rl.methods == paper["rl"]["methods"]
    assert settings.compute.vllm.rollouts is True and settings.compute.vllm.mode == "colocate"  # default filled in
    assert settings.meml.buffer_capacity == paper["meml"]["buffer_capacity"]
    assert settings.world.splits  # a default: the paper config does not list it
    jobs = cost.plan(settings, cost.SPLIT_SIZES)
    assert len(jobs) > 0 and all(j["rollouts"] > 0 for j in jobs if j["kind"] != "sft")
    dapo = [j for j in jobs if j.get("algorithm") == "DAPO"]
    assert dapo and all(j["max_len"] == paper["rl"]["max_completion_length"] for j in dapo)


def test_default_config_is_the_tiny_setting(cost):
    settings = cost.load_settings(None)
    assert settings == cost.load_settings(REPO / "workflow" / "config" / "default.yaml") == Settings()
    jobs = cost.plan(settings, {d: settings.world.splits for d in settings.datasets})
    runs = [j for j in jobs if j["kind"] in ("sft", "rl", "meml")]
    cells = len(settings.models.families) * len(settings.datasets)
    per_seed = len(settings.rl.methods) + len(settings.meml.methods)
    assert len(runs) == cells * (len(settings.sft.methods) + per_seed * len(settings.seeds))  # SFT: shared by seeds
    # steps, not epochs: every RL run takes rl.steps, MEML-GRPO too
    assert {j["steps"] for j in runs if j["kind"] != "sft"} == {settings.rl.steps}


def test_sweep_points_are_planned_as_runs(cost):
    settings = cost.load_settings(REPO / "workflow" / "config" / "sweep_lambda.yaml")
    meml = [j for j in cost.plan(settings, {d: settings.world.splits for d in settings.datasets})
            if j["kind"] == "meml"]
    assert len(meml) == 4 * 2 * len(settings.datasets)  # lambda1 x lambda2 points, one family, one seed
    assert {j["method"] for j in meml} >= {"MEML-GRPO+lambda1=0.5+lambda2=0", "MEML-GRPO+lambda1=2+lambda2=1"}
