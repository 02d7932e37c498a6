"""MEML-GRPO method names (Table 5 switches) and MEMLConfig: defaults, checks, budget arithmetic."""

import pytest

from baselines.rl_config import RLRunConfig
from meml.paths import MEMLVariant, meml_variant, method_experts, model_dir
from meml.riel_config import MEMLConfig


@pytest.mark.parametrize("method,variant", [
    ("MEML-GRPO", MEMLVariant(None, True, True)),
    ("MEML-GRPO-noIML", MEMLVariant(None, True, False)),
    ("MEML-GRPO-noHSFT", MEMLVariant(None, False, True)),
    ("MEML-GRPO-noHSFT-noIML", MEMLVariant(None, False, False)),
    ("MEML-GRPO-Expert1-noHSFT-noIML", MEMLVariant(1, False, False)),
    ("MEML-GRPO-Expert2-noIML", MEMLVariant(2, True, False)),
    ("MoE-SFT-GRPO", None),
])
def test_method_names_carry_the_table5_switches(method, variant):
    assert meml_variant(method) == variant


@pytest.mark.parametrize("method,message", [
    ("MEML-GRPO-noIML-noHSFT", "expected MEML-GRPO[-Expert<k>][-noHSFT][-noIML]"),
    ("MEML-GRPO-fast", "expected MEML-GRPO"),
    ("MEML-GRPO-Expert1", "needs several experts"),
])
def test_bad_method_names_are_explained(method, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        meml_variant(method)


def test_meml_methods_live_with_the_rl_runs_and_are_evaluated_under_their_experts():
    assert method_experts("MEML-GRPO-noIML", 3) == (0, 1, 2)
    assert method_experts("MEML-GRPO-Expert1-noHSFT-noIML", 3) == (1,)
    assert model_dir("r", "qwen2", "synth_gsm8k", "MEML-GRPO", 0).parts[:2] == ("r", "rl")
    assert MEMLVariant(1, False, False).start == "Expert1-SFT" and MEMLVariant(None, True, True).start == "MoE-SFT"


def test_for_method_sets_switches_and_names_unknown_keys():
    config = MEMLConfig.for_method("MEML-GRPO-noHSFT", {"methods": [], "report_expert": 1, "lambda1": 0.5})
    assert (config.hsft, config.iml, config.single_expert, config.lambda1) == (False, True, None, 0.5)
    with pytest.raises(ValueError, match=r"meml: unknown setting\(s\) \['lamda1'\]"):
        MEMLConfig.for_method("MEML-GRPO", {"lamda1": 0.5})
    with pytest.raises(ValueError, match="meml.transfer: expected one of"):
        MEMLConfig(transfer="best")
    with pytest.raises(ValueError, match="meml.lambda2 must be >= 0"):
        MEMLConfig(lambda2=-1)
    with pytest.raises(ValueError, match="not a MEML-GRPO method"):
        MEMLConfig.for_method("MoE-SFT-GRPO")


def test_defaults_are_the_papers_where_it_reports_them():
    config = MEMLConfig()
    assert (config.positive_only, config.scale_by_std, config.buffer_k, config.buffer_rule,
            config.buffer_probability, config.rollout_budget) == (True, False, 6, "gt", "k_over_g", "per_expert")


def test_batch_arithmetic_matches_the_multi_expert_baseline():
    run = RLRunConfig.for_algorithm("GRPO", {"prompts_per_step": 8, "num_generations": 8})
    full = MEMLConfig.for_method("MEML-GRPO").grpo_run(run, 3)
    assert (full.prompts_per_step, full.num_generations) == (3, 8)  # 3 questions x 3 experts x 8 = 72 rollouts
    single = MEMLConfig.for_method("MEML-GRPO-Expert1-noHSFT-noIML").grpo_run(run, 3)
    assert (single.prompts_per_step, single.num_generations) == (8, 8)  # 64 rollouts, like Expert1-SFT-GRPO
    shared = MEMLConfig.for_method("MEML-GRPO", {"rollout_budget": "shared", "questions_per_step": 4}).grpo_run(
        RLRunConfig.for_algorithm("GRPO", {"num_generations": 9}), 3)
    assert (shared.prompts_per_step, shared.num_generations) == (4, 3)  # G = 9 split 3 per expert
    with pytest.raises(ValueError, match="multiple of the number of experts"):
        MEMLConfig(rollout_budget="shared").generations_per_expert(8, 3)
    with pytest.raises(ValueError, match="only 3 experts"):
        MEMLConfig.for_method("MEML-GRPO-Expert3-noIML").experts(3)
