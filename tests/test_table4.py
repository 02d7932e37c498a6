"""Table 4 from result files with known values; missing and corrupt files are named."""

import json

import pytest

from meml import paths
from meml.config import load_config
from reports.table4 import collect, pivot, write_table4


def _config(tmp_path):
    config = load_config()
    config.update(results_dir=str(tmp_path), datasets=["synth_gsm8k", "synth_mathqa"], seeds=[0, 1])
    config["models"]["families"] = ["qwen2"]
    config["sft"]["methods"] = ["Expert1-SFT", "MoE-SFT"]
    config["rl"]["methods"] = ["Expert1-SFT-GRPO"]
    config["meml"]["methods"] = []
    return config


def _write(config, accuracy):
    """accuracy(dataset, method, seed, expert) -> value; writes every expected result file."""
    for dataset in config["datasets"]:
        for method in config["sft"]["methods"] + config["rl"]["methods"]:
            for seed in config["seeds"]:
                for expert in paths.method_experts(method, 3):
                    path = paths.eval_file(config["results_dir"], "qwen2", dataset, method, seed, expert)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps({"family": "qwen2", "dataset": dataset, "method": method,
                                                "seed": seed, "expert": expert, "n": 10,
                                                "accuracy": accuracy(dataset, method, seed, expert)}))


def test_means_over_seeds_and_average_column(tmp_path):
    config = _config(tmp_path)
    _write(config, lambda d, m, s, e: (0.5 if d == "synth_gsm8k" else 0.3) + 0.1 * s + 0.01 * e)
    table = pivot(collect(config)).loc["qwen2"]
    assert list(table.columns) == ["GSM8K", "MathQA", "Avg"]
    assert table.loc["Expert1-SFT", "GSM8K"] == pytest.approx(100 * (0.55 + 0.01))
    assert table.loc["MoE-SFT (Expert2)", "MathQA"] == pytest.approx(100 * (0.35 + 0.02))
    assert table.loc["MoE-SFT (Expert2)", "Avg"] == pytest.approx(100 * (0.45 + 0.02))
    md, csv = write_table4(config)
    text = md.read_text()
    assert "| Expert1-SFT | 56.0 | 36.0 | 46.0 |" in text
    assert "| MoE-SFT (Expert0) | 55.0 | 35.0 | 45.0 |" in text
    assert "| Expert1-SFT-GRPO | 56.0 | 36.0 | 46.0 |" in text
    assert text.index("| MoE-SFT (Expert2) |") < text.index("| Expert1-SFT-GRPO |")  # SFT rows first
    assert "NOT the paper's numbers" in text
    assert len(csv.read_text().strip().splitlines()) == 1 + 2 * 2 * (1 + 3 + 1)


def test_missing_result_file_is_named(tmp_path):
    config = _config(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"expert1\.json is missing"):
        collect(config)


def test_corrupt_result_file_is_named(tmp_path):
    config = _config(tmp_path)
    _write(config, lambda *a: 0.5)
    bad = paths.eval_file(tmp_path, "qwen2", "synth_mathqa", "MoE-SFT", 1, 2)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"seed1/expert2\.json is corrupt"):
        collect(config)


def test_paired_outcomes_and_sign_test_by_hand(tmp_path):
    from reports.paired import paired_outcomes, read_outcomes, sign_test

    before = {"a": 0.0, "b": 0.0, "c": 1.0, "d": 1.0}
    after = {"a": 1.0, "b": 1.0, "c": 0.0, "d": 1.0}
    result = paired_outcomes(before, after)
    assert (result["gained"], result["lost"], result["before"], result["after"]) == (2, 1, 0.5, 0.75)
    assert result["p_sign"] == pytest.approx(1.0)  # 2 vs 1: P(X<=1 | n=3) = 4/8, doubled
    assert sign_test(5, 0) == pytest.approx(2 / 32) and sign_test(0, 0) == 1.0
    assert sign_test(40, 1) < 1e-9
    with pytest.raises(ValueError, match="different items"):
        paired_outcomes(before, {"a": 1.0})
    result_file = tmp_path / "expert1.json"
    (tmp_path / "expert1.samples.jsonl").write_text('{"id": "x", "correct": 1.0}\n{"id": "y", "correct": 0.0}\n')
    assert read_outcomes(result_file) == {"x": 1.0, "y": 0.0}
    with pytest.raises(FileNotFoundError, match="expert2.samples.jsonl is missing"):
        read_outcomes(tmp_path / "expert2.json")
