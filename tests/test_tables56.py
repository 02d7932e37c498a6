"""Tables 5 and 6 (and MEML rows of Table 4) from result files with known values; majority voting."""

import json

import pytest

from meml import paths
from meml.methods import Method
from meml.pipeline.settings import load_settings, with_changes
from reports.table4 import table4_methods
from reports.table5 import build_table5, collect, means, report_experts, write_table5
from reports.table6 import majority_vote, write_table6

ABLATIONS = ["MEML-GRPO", "MEML-GRPO-noIML", "MEML-GRPO-noHSFT", "MEML-GRPO-noHSFT-noIML",
             "MEML-GRPO-Expert1-noHSFT-noIML"]


def _config(tmp_path, meml=ABLATIONS, **changes):
    return with_changes(load_settings(), results_dir=str(tmp_path),
                        **{"datasets": ["synth_gsm8k", "synth_strategyqa"], "seeds": [0, 1],
                           "models": {"families": ["qwen2"]}, "sft": {"methods": ["Expert1-SFT", "MoE-SFT"]},
                           "rl": {"methods": ["MoE-SFT-GRPO"]}, "meml": {"methods": list(meml)}, **changes})


def _write_result(config, dataset, method, seed, expert, accuracy, samples=None):
    path = paths.eval_file(config.results_dir, "qwen2", dataset, method, seed, expert)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(samples) if samples else 10
    path.write_text(json.dumps({"family": "qwen2", "dataset": dataset, "method": method, "seed": seed,
                                "expert": expert, "n": n, "accuracy": accuracy}))
    if samples is not None:
        paths.samples_file(path).write_text("".join(json.dumps(s) + "\n" for s in samples))


def test_majority_vote_plurality_ties_and_missing_answers():
    assert majority_vote("gsm8k", ["3", "4", "4"], [1.0, 0.0, 0.0]) == 0.0
    assert majority_vote("gsm8k", ["3", "3.0", "4"], [1.0, 1.0, 0.0]) == 1.0  # same number, two spellings
    assert majority_vote("gsm8k", ["5", "3", "4"], [0.0, 1.0, 0.0]) == 0.0  # three-way tie: expert 0's answer
    assert majority_vote("gsm8k", [None, "3", "4"], [0.0, 1.0, 0.0]) == 1.0  # tie of the answers given: expert 1
    assert majority_vote("gsm8k", [None, None, None], [0.0, 0.0, 0.0]) == 0.0
    assert majority_vote("strategyqa", ["yes", "no", "no"], [1.0, 0.0, 0.0]) == 0.0


def test_table4_shows_the_full_method_and_table5_every_ablation(tmp_path):
    config = _config(tmp_path)
    assert table4_methods(config) == ["Expert1-SFT", "MoE-SFT", "MoE-SFT-GRPO", "MEML-GRPO"]
    assert report_experts(config)["MEML-GRPO-noIML"] == (1,)
    assert report_experts(config)["MEML-GRPO-Expert1-noHSFT-noIML"] == (1,)
    values = {"MEML-GRPO": 0.8, "MEML-GRPO-noIML": 0.7, "MEML-GRPO-noHSFT": 0.6, "MEML-GRPO-noHSFT-noIML": 0.5,
              "MEML-GRPO-Expert1-noHSFT-noIML": 0.4}
    for dataset in config.datasets:
        for method, value in values.items():
            for seed in (0, 1):
                for expert in Method.parse(method).experts(3):
                    # expert 1 is the one Table 5 reads; others carry a value that must not leak in
                    acc = value + 0.02 * seed - (0.1 if dataset == "synth_strategyqa" else 0) if expert == 1 else 0.0
                    _write_result(config, dataset, method, seed, expert, acc)
    long = collect(config, ABLATIONS, report_experts(config))
    table = build_table5(long).loc["qwen2"]
    assert list(table.columns) == ["MoE", "HSFT", "IML", "GSM8K", "StrategyQA", "Avg"]
    assert means(long).loc[("qwen2", "MEML-GRPO"), "GSM8K"] == pytest.approx(81.0)
    assert means(long).loc[("qwen2", "MEML-GRPO"), "Avg"] == pytest.approx(76.0)
    assert table.loc["MEML-GRPO", "GSM8K"] == "81.0 ± 12.7"  # seeds 80, 82: t(0.975, 1) * sd / sqrt(2) = 12.706
    assert tuple(table.loc["MEML-GRPO-noIML", ["MoE", "HSFT", "IML"]]) == ("on", "on", "off")
    assert tuple(table.loc["MEML-GRPO-Expert1-noHSFT-noIML", ["MoE", "HSFT", "IML"]]) == ("off", "off", "off")
    md, csv, tex, runs = write_table5(config)
    text = md.read_text()
    assert "| MEML-GRPO-noHSFT-noIML | on | off | off | 51.0 ± 12.7 | 41.0 ± 12.7 | 46.0 ± 12.7 |" in text
    assert "NOT the paper's numbers" in text and "reported" not in text
    assert len(runs.read_text().strip().splitlines()) == 1 + 2 * 5 * 2
    numbers = csv.read_text().strip().splitlines()
    assert len(numbers) == 1 + 5 and numbers[0].startswith("family,method,MoE,HSFT,IML,GSM8K,GSM8K_low,GSM8K_high")
    assert numbers[1].startswith("qwen2,MEML-GRPO,on,on,on,81.0,68.29")
    assert r"MEML-GRPO-noHSFT-noIML & on & off & off & 51.0 $\pm$ 12.7" in tex.read_text()


def test_table6_votes_item_by_item_for_meml_and_the_multi_expert_baseline(tmp_path):
    config = _config(tmp_path, meml=["MEML-GRPO", "MEML-GRPO-Expert1-noHSFT-noIML"], datasets=["synth_gsm8k"],
                     seeds=[0])
    # item i0: experts say 5, 5, 7 (gold 5) -> vote right; i1: 2, 3, 3 (gold 2) -> vote wrong;
    # i2: 9, 8, 1 (gold 8) -> three-way tie, expert 0's 9 -> wrong
    answers = {"i0": ["5", "5", "7"], "i1": ["2", "3", "3"], "i2": ["9", "8", "1"]}
    gold = {"i0": "5", "i1": "2", "i2": "8"}
    for method in ("MEML-GRPO", "MoE-SFT-GRPO"):
        for expert in range(3):
            samples = [{"id": i, "extracted": a[expert], "correct": float(a[expert] == gold[i])}
                       for i, a in answers.items()]
            _write_result(config, "synth_gsm8k", method, 0, expert, sum(s["correct"] for s in samples) / 3, samples)
    md, csv, tex, runs = write_table6(config)
    text = md.read_text()
    assert "| MEML-GRPO (Expert1) | 66.7 | 66.7 |" in text
    assert "| MEML-GRPO (majority vote) | 33.3 | 33.3 |" in text
    assert "| MoE-SFT-GRPO (majority vote) | 33.3 | 33.3 |" in text
    assert "Expert1-noHSFT" not in text  # a single-expert run has nothing to vote over


def test_table6_names_a_missing_samples_file(tmp_path):
    config = _config(tmp_path, meml=["MEML-GRPO"], datasets=["synth_gsm8k"], seeds=[0], rl={"methods": []})
    for expert in range(3):
        _write_result(config, "synth_gsm8k", "MEML-GRPO", 0, expert, 0.5)
    with pytest.raises(FileNotFoundError, match=r"expert0\.samples\.jsonl is missing"):
        write_table6(config)
