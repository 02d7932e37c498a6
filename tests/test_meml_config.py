"""MEML-GRPO method names (Table 5 switches) and MEMLConfig: defaults, checks, budget arithmetic."""

import pytest

from meml.fields import ConfigError, from_mapping
from meml.method.config import MEMLConfig
from meml.methods import Method
from meml.paths import model_dir
from meml.pipeline.settings import MEMLSettings, settings_from_config
from meml.training.rl_config import RLConfig


@pytest.mark.parametrize("name,switches", [
    ("MEML-GRPO", ("meml", None, True, True)),
    ("MEML-GRPO-noIML", ("meml", None, True, False)),
    ("MEML-GRPO-noHSFT", ("meml", None, False, True)),
    ("MEML-GRPO-noHSFT-noIML", ("meml", None, False, False)),
    ("MEML-GRPO-Expert1-noHSFT-noIML", ("meml", 1, False, False)),
    ("MEML-GRPO-Expert2-noIML", ("meml", 2, True, False)),
    ("MoE-SFT-GRPO", ("rl", None, True, True)),
])
def test_method_names_carry_the_table5_switches(name, switches):
    method = Method.parse(name)
    assert (method.kind, method.expert, method.hsft, method.iml) == switches
    assert method.algorithm == "GRPO"  # MEML-GRPO runs on GRPO's settings
    assert str(method) == name  # the name is the method's only spelling


@pytest.mark.parametrize("name,message", [
    ("MEML-GRPO-noIML-noHSFT", "expected Expert<k>-SFT, MoE-SFT, <SFT method>-<algorithm>"),
    ("MEML-GRPO-noIML-noHSFT", "MEML-GRPO[-Expert<k>][-noHSFT][-noIML]"),
    ("MEML-GRPO-fast", "expected Expert<k>-SFT"),
    ("MEML-GRPO-Expert1", "needs several experts"),
])
def test_bad_method_names_are_explained(name, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Method.parse(name)


def test_meml_methods_live_with_the_rl_runs_and_are_evaluated_under_their_experts():
    assert Method.parse("MEML-GRPO-noIML").experts(3) == (0, 1, 2)
    assert Method.parse("MEML-GRPO-Expert1-noHSFT-noIML").experts(3) == (1,)
    assert model_dir("r", "qwen2", "synth_gsm8k", "MEML-GRPO", 0).parts[:2] == ("r", "rl")
    assert str(Method.parse("MEML-GRPO-Expert1-noHSFT-noIML").start) == "Expert1-SFT"
    assert str(Method.parse("MEML-GRPO").start) == "MoE-SFT"


def test_for_method_sets_switches_and_names_unknown_keys():
    config = MEMLConfig(lambda1=0.5).for_method(Method.parse("MEML-GRPO-noHSFT"))
    assert (config.hsft, config.iml, config.single_expert, config.lambda1) == (False, True, None, 0.5)
    assert config.lambda1_used == 0.5
    assert MEMLConfig(lambda1=0.5).for_method(Method.parse("MEML-GRPO-noIML")).lambda1_used == 0.0
    single = MEMLConfig().for_method(Method.parse("MEML-GRPO-Expert2-noIML"))
    assert (single.single_expert, single.hsft, single.iml) == (2, True, False)
    # the workflow's meml section adds its method list and report expert; a run's config is a plain MEMLConfig
    settings = settings_from_config({"meml": {"lambda1": 0.5, "report_expert": 1}})
    config = settings.meml.for_method(Method.parse("MEML-GRPO-noHSFT"))
    assert type(config) is MEMLConfig and (config.hsft, config.lambda1) == (False, 0.5)
    with pytest.raises(ConfigError, match=r"(?s)my\.yaml: .*meml: Additional properties are not allowed \('lamda1'"):
        settings_from_config({"meml": {"lamda1": 0.5}}, "my.yaml")
    with pytest.raises(ConfigError, match=r"meml: unknown setting\(s\) \['lamda1'\]"):  # the tree's own check
        from_mapping(MEMLSettings, {"lamda1": 0.5}, "meml")
    with pytest.raises(ValueError, match="meml.transfer: expected one of"):
        MEMLConfig(transfer="best")
    with pytest.raises(ValueError, match="meml.lambda2: must be >= 0"):
        MEMLConfig(lambda2=-1)
    with pytest.raises(ValueError, match="not a MEML-GRPO method"):
        MEMLConfig().for_method(Method.parse("MoE-SFT-GRPO"))


def test_defaults_are_the_papers_where_it_reports_them():
    config = MEMLConfig()
    assert (config.positive_only, config.scale_by_std, config.buffer_k, config.buffer_rule,
            config.buffer_probability, config.rollout_budget) == (True, False, 6, "gt", "k_over_g", "per_expert")


def test_batch_arithmetic_matches_the_multi_expert_baseline():
    run = RLConfig(algorithm="GRPO", prompts_per_step=8, num_generations=8)
    full = MEMLConfig().for_method(Method.parse("MEML-GRPO")).grpo_run(run, 3)
    assert (full.prompts_per_step, full.num_generations) == (3, 8)  # 3 questions x 3 experts x 8 = 72 rollouts
    single = MEMLConfig().for_method(Method.parse("MEML-GRPO-Expert1-noHSFT-noIML")).grpo_run(run, 3)
    assert (single.prompts_per_step, single.num_generations) == (8, 8)  # 64 rollouts, like Expert1-SFT-GRPO
    shared = MEMLConfig(rollout_budget="shared", questions_per_step=4).for_method(Method.parse("MEML-GRPO")).grpo_run(
        RLConfig(algorithm="GRPO", num_generations=9), 3)
    assert (shared.prompts_per_step, shared.num_generations) == (4, 3)  # G = 9 split 3 per expert
    with pytest.raises(ValueError, match="multiple of the number of experts"):
        MEMLConfig(rollout_budget="shared").generations_per_expert(8, 3)
    with pytest.raises(ValueError, match="only 3 experts"):
        MEMLConfig().for_method(Method.parse("MEML-GRPO-Expert3-noIML")).experts(3)
    with pytest.raises(ValueError, match="only 3 experts"):
        Method.parse("MEML-GRPO-Expert3-noIML").experts(3)
