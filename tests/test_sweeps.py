"""Sweep expansion (meml/sweeps.py), the sweep tables and plots (reports/sweeps.py), and the example config."""

import json
import subprocess
import sys

import pytest
import yaml

from meml import paths
from meml.methods import Method
from meml.pipeline.settings import (
    ConfigError,
    load_settings,
    settings_from_config,
)
from meml.sweeps import (
    apply_point,
    expand_methods,
    meml_methods,
    output_files,
    point_of,
    rl_methods,
)
from reports.sweeps import write_sweeps

REPO = paths.Path(__file__).resolve().parents[1]


def _config(**changes):
    """Settings from a config listing ``section__key=value`` changes (YAML lists only differences)."""
    config = {}
    for dotted, value in changes.items():
        node = config
        *parents, key = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[key] = value
    return settings_from_config(config)


def test_lists_in_place_become_a_product_of_tagged_runs():
    config = _config(meml__lambda1=[0.5, 1.0, 2.0], meml__lambda2=[0.0, 1.0], rl__learning_rate=[1e-4, 5e-5])
    assert config.sweep == {"rl.learning_rate": [1e-4, 5e-5], "meml.lambda1": [0.5, 1.0, 2.0],
                            "meml.lambda2": [0.0, 1.0]}
    assert config.meml.lambda1 == 0.5 and config.rl.learning_rate == 1e-4  # first value in place
    meml = expand_methods(config, ["MEML-GRPO"])
    assert len(meml) == 2 * 3 * 2 and meml[0] == "MEML-GRPO+learning_rate=0.0001+lambda1=0.5+lambda2=0"
    grpo = rl_methods(config, "GRPO")
    assert grpo == ["Expert1-SFT-GRPO+learning_rate=0.0001", "Expert1-SFT-GRPO+learning_rate=5e-05",
                    "MoE-SFT-GRPO+learning_rate=0.0001", "MoE-SFT-GRPO+learning_rate=5e-05"]
    assert expand_methods(config, ["MoE-SFT"]) == ["MoE-SFT"]  # SFT is upstream of every sweep
    point = apply_point(config, Method.parse("MEML-GRPO+learning_rate=5e-05+lambda1=2+lambda2=1"))
    assert (point.rl.learning_rate, point.meml.lambda1, point.meml.lambda2) == (5e-05, 2.0, 1.0)
    assert config.meml.lambda1 == 0.5  # the original is untouched
    assert Method.parse("MEML-GRPO-noIML+lambda1=2").iml is False
    assert Method.parse("MoE-SFT-Dr.GRPO+learning_rate=5e-05").algorithm == "Dr.GRPO"
    assert Method.parse("MEML-GRPO-Expert1-noHSFT-noIML+lambda2=1").experts(3) == (1,)


def test_algorithm_options_sweep_only_that_algorithm_and_the_sweep_section_works_too():
    config = settings_from_config({"sweep": {"rl.algorithms.DAPO.max_sampling_rounds": [2, 4]}})
    assert rl_methods(config, "DAPO") == ["MoE-SFT-DAPO+DAPO.max_sampling_rounds=2",
                                          "MoE-SFT-DAPO+DAPO.max_sampling_rounds=4"]
    assert rl_methods(config, "GRPO") == ["Expert1-SFT-GRPO", "MoE-SFT-GRPO"]
    method = Method.parse("MoE-SFT-DAPO+DAPO.max_sampling_rounds=4")
    assert point_of(config, method) == {"rl.algorithms.DAPO.max_sampling_rounds": 4}
    assert apply_point(config, method).rl.run("DAPO").max_sampling_rounds == 4
    assert apply_point(config, method).rl.run("GRPO").max_sampling_rounds == 3  # other algorithms: untouched
    with pytest.raises(ValueError, match="'7' is not one of"):
        point_of(config, Method.parse("MoE-SFT-DAPO+DAPO.max_sampling_rounds=7"))


@pytest.mark.parametrize("change, message", [
    ({"sft__learning_rate": [1e-3, 1e-4]}, "sft.learning_rate"),  # upstream options are not swept
    ({"meml__lambda1": [1.0, 1.0]}, "repeated values"),
    ({"meml__buffer_capacity": [0.5, 8]}, "meml.buffer_capacity"),  # each value still meets the schema? first does not
])
def test_bad_sweeps_name_the_key(change, message):
    with pytest.raises(ConfigError, match=message):
        _config(**change)


def test_a_sweep_of_an_upstream_option_under_sweep_is_refused():
    with pytest.raises(ConfigError, match="sweep.sft.steps: only numeric options"):
        settings_from_config({"sweep": {"sft.steps": [10, 20]}})


def test_sweep_tables_and_plots_from_result_files(tmp_path):
    config = settings_from_config({
        "meml": {"lambda1": [0.0, 1.0], "lambda2": [0.0, 2.0], "methods": ["MEML-GRPO"]}, "rl": {"methods": []},
        "results_dir": str(tmp_path), "datasets": ["synth_gsm8k", "synth_strategyqa"], "seeds": [0, 1],
        "models": {"families": ["qwen2"]}})
    for method in meml_methods(config):
        point = point_of(config, Method.parse(method))
        for dataset in config.datasets:
            for seed in config.seeds:
                # accuracy = 0.5 + 0.2 lambda1 + 0.05 lambda2 + 0.01 seed (GSM8K), 0.1 lower on StrategyQA
                acc = 0.5 + 0.2 * point["meml.lambda1"] + 0.05 * point["meml.lambda2"] + 0.01 * seed
                acc -= 0.1 if dataset == "synth_strategyqa" else 0
                result = paths.eval_file(tmp_path, "qwen2", dataset, method, seed, 1)
                result.parent.mkdir(parents=True, exist_ok=True)
                result.write_text(json.dumps({"family": "qwen2", "dataset": dataset, "method": method, "seed": seed,
                                              "expert": 1, "n": 100, "accuracy": acc}))
    files = write_sweeps(config)
    written = {p.name for p in files}
    assert sorted(files) == sorted(output_files(config))  # what the workflow's sweeps rule declares
    assert {"sweep.md", "sweep.csv", "lambda1.md", "lambda1.png", "lambda2.csv", "lambda2.pdf"} <= written
    text = (tmp_path / "sweeps" / "sweep.md").read_text()
    # lambda1 = 1, lambda2 = 2: GSM8K 80 / 81 -> 80.5 +- 12.706 * 0.5 = 6.4; StrategyQA 70.5; Avg 75.5
    assert "| MEML-GRPO | 1 | 2 | 80.5 ± 6.4 | 70.5 ± 6.4 | 75.5 ± 6.4 |" in text
    assert "| MEML-GRPO | 0 | 0 | 50.5 ± 6.4 | 40.5 ± 6.4 | 45.5 ± 6.4 |" in text
    rows = (tmp_path / "sweeps" / "lambda1.csv").read_text().splitlines()
    assert [r.split(",")[3:5] for r in rows[1:]] == [["0.0", "0.0"], ["1.0", "0.0"], ["0.0", "2.0"], ["1.0", "2.0"]]
    assert (tmp_path / "sweeps" / "lambda1.png").read_bytes()[:4] == b"\x89PNG"
    missing = paths.eval_file(tmp_path, "qwen2", "synth_gsm8k", "MEML-GRPO+lambda1=1+lambda2=2", 1, 1)
    missing.unlink()
    with pytest.raises(FileNotFoundError, match=r"MEML-GRPO\+lambda1=1\+lambda2=2/seed1/expert1.json is missing"):
        write_sweeps(config)


@pytest.mark.slow
def test_example_sweep_config_plans_the_product(tmp_path):
    done = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--configfile",
                           "workflow/config/sweep_lambda.yaml", "--config", f"results_dir={tmp_path}"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    counts = {line.split()[0]: int(line.split()[1]) for line in done.stdout.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert counts["riel"] == 4 * 2 * 3 and counts["sweeps"] == 1 and counts["evaluate_meml"] == 3
    assert "MEML-GRPO+lambda1=0.5+lambda2=1.seed0.json" in done.stdout
    assert "table4" not in counts  # a sweep builds its own tables, not the paper's
    example = yaml.safe_load((REPO / "workflow" / "config" / "sweep_lambda.yaml").read_text())
    assert example["meml"]["lambda1"] == [0.0, 0.5, 1.0, 2.0]


def test_reports_rebuild_names_unknown_outputs_and_builds_sweeps_in_sweep_mode():
    from reports.build import builders, rebuild

    assert list(builders(load_settings())) == ["table4", "table5", "table6", "complementarity", "world_check", "figure2",
                                             "sparsity", "claims"]
    assert list(builders(_config(meml__lambda1=[0.0, 1.0]))) == ["sweeps"]
    with pytest.raises(ValueError, match=r"unknown output\(s\) \['table9'\]"):
        rebuild(load_settings(), ["table9"])
