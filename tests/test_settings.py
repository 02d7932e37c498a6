"""The settings tree (meml/pipeline/settings.py): one default per setting, one schema generated from it."""

import dataclasses
import re
import typing
from pathlib import Path

import pytest
import yaml

from meml.fields import ConfigError, from_mapping, settings_fields
from meml.method.config import MEMLConfig
from meml.methods import Method
from meml.pipeline.settings import (
    SCHEMA_PATH,
    Settings,
    load_settings,
    schema_text,
    settings_from_config,
    with_changes,
)
from meml.training.rl_config import RLConfig

REPO = Path(__file__).resolve().parents[1]


def test_the_committed_schema_is_generated_from_the_tree():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), "run `python -m meml schema` and commit it"


def _sections(cls):
    """``cls`` and every section dataclass nested in it."""
    yield cls
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _sections(hints[f.name])


def test_every_setting_has_help_text():
    missing = [f"{cls.__name__}.{f.name}" for cls in _sections(Settings) for f in settings_fields(cls)
               if len(f.metadata.get("help", "")) < 8]
    assert not missing


def test_the_defaults_are_the_tiny_setting_and_default_yaml_lists_nothing_else():
    default = yaml.safe_load((REPO / "workflow" / "config" / "default.yaml").read_text())
    assert default == {"setting": "tiny"}
    assert load_settings() == Settings()
    s = Settings()
    assert (s.rl.steps, s.rl.learning_rate, s.sft.steps, s.meml.lambda1, s.models.pretrain.steps) == (15, 1e-4, 150,
                                                                                                      1.0, 1200)


@pytest.mark.parametrize("name", ["default", "paper", "quick", "rl_all_starts", "sweep_lambda"])
def test_every_shipped_config_builds_and_lists_only_differences(name):
    raw = yaml.safe_load((REPO / "workflow" / "config" / f"{name}.yaml").read_text())
    settings = load_settings(REPO / "workflow" / "config" / f"{name}.yaml")
    defaults = Settings().to_mapping()
    for section, value in raw.items():  # no key repeats its default
        if isinstance(value, dict) and section not in ("sweep",):
            for key, v in value.items():
                assert defaults[section].get(key) != v or isinstance(v, list), f"{name}: {section}.{key} is the default"
        elif section != "setting":
            assert defaults[section] != value, f"{name}: {section} is the default"
    assert settings.to_mapping()["results_dir"] == raw.get("results_dir", "results")


def test_algorithm_presets_fill_only_what_is_not_set():
    s = settings_from_config({"rl": {"epsilon_high": 0.3, "algorithms": {"DAPO": {"max_sampling_rounds": 5}}}})
    dapo, grpo, dr = s.rl.run("DAPO", seed=4, threads=2), s.rl.run("GRPO"), s.rl.run("Dr.GRPO")
    assert (dapo.loss_type, dapo.epsilon_high, dapo.overlong_buffer_length, dapo.max_sampling_rounds) == (
        "dapo", 0.3, 25, 5)  # 25 = 128 // 5: DAPO's soft-punishment buffer is a fifth of the maximum length
    assert (dapo.seed, dapo.threads, dapo.dynamic_sampling, dapo.mask_truncated_completions) == (4, 2, True, True)
    assert (grpo.loss_type, grpo.scale_rewards, grpo.overlong_buffer_length, grpo.max_sampling_rounds) == (
        "grpo", "group", 0, 3)
    assert (dr.loss_type, dr.scale_rewards, dr.epsilon_high) == ("dr_grpo", "none", 0.3)
    assert RLConfig(algorithm="DAPO", max_completion_length=100).overlong_buffer_length == 20
    with pytest.raises(ValueError, match="already resolved as DAPO"):  # its presets would leak into GRPO
        dapo.for_algorithm("GRPO")


def test_meml_switches_come_from_the_method():
    s = settings_from_config({"meml": {"lambda1": 0.5}})
    run = s.meml.for_method(Method.parse("MEML-GRPO-Expert1-noHSFT-noIML"))
    assert type(run) is MEMLConfig and (run.single_expert, run.hsft, run.iml, run.lambda1_used) == (1, False, False, 0.0)
    full = s.meml.for_method(Method.parse("MEML-GRPO"))
    assert full.lambda1_used == 0.5 and full.experts(3) == [0, 1, 2]
    grpo = full.grpo_run(s.rl.run("GRPO"), 3)
    assert (grpo.prompts_per_step, grpo.num_generations) == (2, 8)  # ceil(6 / 3) questions x G per expert


@pytest.mark.parametrize("config, message", [
    ({"rl": {"stepz": 3}}, "rl: Additional properties are not allowed ('stepz'"),
    ({"meml": {"lambda1": -1}}, "meml.lambda1: -1 is less than the minimum of 0"),
    ({"models": {"tiny": {"hidden_size": 0}}}, "models.tiny.hidden_size"),
    ({"rl": {"epsilon": 0.3, "epsilon_high": 0.2}}, "rl.epsilon_high (0.2) must be >= rl.epsilon (0.3)"),
    ({"compute": {"vllm": {"rollouts": True}}}, "compute.vllm.rollouts needs compute.device cuda"),
    ({"experts": {"sources": [{"kind": "gold"}, {"kind": "gold"}, {"kind": "programmatic"}]}},
     "experts.sources[2]: a programmatic source needs 'style'"),
    ({"complementarity": {"experts": [3]}}, "complementarity.experts: expert 3 is beyond"),
])
def test_errors_name_the_key_and_the_file(config, message):
    with pytest.raises(ConfigError) as err:
        settings_from_config(config, "my.yaml")
    assert message in str(err.value) and str(err.value).startswith("my.yaml: ")


def test_the_tree_checks_without_the_schema_too():
    """Objects built in code (not from YAML) are checked by their dataclasses."""
    with pytest.raises(ConfigError, match="config.meml.buffer_capacity: must be >= 1, got 0"):
        from_mapping(Settings, {"meml": {"buffer_capacity": 0}}, "config")
    with pytest.raises(ValueError, match="meml.transfer: expected one of"):
        MEMLConfig(transfer="some")
    with pytest.raises(ValueError, match="rl.num_generations: must be >= 2"):
        RLConfig(num_generations=1)


def test_with_changes_merges_sections_and_checks():
    s = with_changes(Settings(), rl={"steps": 2}, seeds=[0])
    assert (s.rl.steps, s.rl.prompts_per_step, s.seeds) == (2, 6, [0])
    with pytest.raises(ConfigError, match="rl.steps"):
        with_changes(Settings(), rl={"steps": 0})


def test_the_resolved_tree_round_trips(tmp_path):
    from meml.pipeline.settings import write_resolved_config

    s = settings_from_config({"meml": {"lambda1": [0.5, 1.0]}, "seeds": [1]})
    path = write_resolved_config(s, tmp_path / "config.yaml")
    again = load_settings(path)
    assert again == s and again.sweep == {"meml.lambda1": [0.5, 1.0]}


def test_per_family_model_changes_apply_to_that_family_only():
    from meml.pipeline import reads

    settings = with_changes(load_settings(), models={"by_family": {"llama": {"tiny": {"hidden_size": 128},
                                                                             "pretrain": {"steps": 450}}}})
    models = settings.models
    assert models.tiny_for("llama").hidden_size == 128 and models.pretrain_for("llama").steps == 450
    assert models.tiny_for("qwen2") == models.tiny and models.pretrain_for("qwen2") == models.pretrain
    assert models.tiny_for("llama").num_layers == models.tiny.num_layers  # unchanged keys keep the shared value
    assert reads.pretrain_reads(settings, "llama") != reads.pretrain_reads(settings, "qwen2")
    assert reads.tiny_reads(settings, "qwen2") == reads.tiny_reads(load_settings(), "qwen2")  # qwen2 is not rebuilt
    default = load_settings().models  # the default weaker second base: Llama pretrained for 5/6 of Qwen steps
    assert (default.pretrain_for("llama").steps, default.pretrain_for("qwen2").steps) == (1000, 1200)


@pytest.mark.parametrize("by_family, message", [
    ({"gpt2": {}}, "models.by_family: unknown family"),
    ({"llama": {"sft": {}}}, "only tiny and pretrain can change"),
    ({"llama": {"tiny": {"hidden_sise": 64}}}, "models.by_family.llama.tiny"),
    ({"llama": {"pretrain": {"steps": 0}}}, "models.by_family.llama.pretrain.steps"),
])
def test_per_family_model_changes_are_checked(by_family, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings_from_config({"models": {"by_family": by_family}}, "my.yaml")
