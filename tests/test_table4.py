"""Table 4 from result files with known values; missing and corrupt files are named."""

import json

import pytest

from meml import paths
from meml.methods import Method
from meml.pipeline.settings import load_settings, with_changes
from reports.table4 import collect, pivot, write_table4


def _config(tmp_path, **changes):
    settings = with_changes(load_settings(), results_dir=str(tmp_path), datasets=["synth_gsm8k", "synth_mathqa"],
                            seeds=[0, 1], models={"families": ["qwen2"]},
                            sft={"methods": ["Expert1-SFT", "MoE-SFT"]}, rl={"methods": ["Expert1-SFT-GRPO"]},
                            meml={"methods": []})
    return with_changes(settings, **changes) if changes else settings


def _write(config, accuracy):
    """accuracy(dataset, method, seed, expert) -> value; writes every expected result file."""
    for dataset in config.datasets:
        for method in config.sft.methods + config.rl.methods:
            for seed in [config.sft.seed] if method.endswith("-SFT") else config.seeds:  # SFT: one shared run
                for expert in Method.parse(method).experts(3):
                    path = paths.eval_file(config.results_dir, "qwen2", dataset, method, seed, expert)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps({"family": "qwen2", "dataset": dataset, "method": method,
                                                "seed": seed, "expert": expert, "n": 10,
                                                "accuracy": accuracy(dataset, method, seed, expert)}))


def test_means_over_seeds_and_average_column(tmp_path):
    config = _config(tmp_path)
    _write(config, lambda d, m, s, e: (0.5 if d == "synth_gsm8k" else 0.3) + 0.1 * s + 0.01 * e)
    table = pivot(collect(config)).loc["qwen2"]
    assert list(table.columns) == ["GSM8K", "MathQA", "Avg"]
    assert table.loc["Expert1-SFT", "GSM8K"] == pytest.approx(100 * (0.5 + 0.01))  # one SFT run (seed 0)
    assert table.loc["MoE-SFT (Expert2)", "MathQA"] == pytest.approx(100 * (0.3 + 0.02))
    assert table.loc["MoE-SFT (Expert2)", "Avg"] == pytest.approx(100 * (0.4 + 0.02))
    assert table.loc["Expert1-SFT-GRPO", "GSM8K"] == pytest.approx(100 * (0.55 + 0.01))  # mean of seeds 0 and 1
    md, csv, tex, runs = write_table4(config)
    text = md.read_text()
    # RL: seeds 50 and 60 (+ expert): mean 55, half-width t(0.975, 1) * sd / sqrt(2) = 12.706 * 5 = 63.5;
    # SFT: the one run every seed starts from, no interval
    assert "| Expert1-SFT | 51.0 | 31.0 | 41.0 |" in text
    assert "| MoE-SFT (Expert0) | 50.0 | 30.0 | 40.0 |" in text
    assert "| Expert1-SFT-GRPO | 56.0 ± 63.5 | 36.0 ± 63.5 | 46.0 ± 63.5 |" in text
    assert "RL replicates" in text
    assert text.index("| MoE-SFT (Expert2) |") < text.index("| Expert1-SFT-GRPO |")  # SFT rows first
    assert "NOT the paper's numbers" in text and "unverified" not in text
    assert len(runs.read_text().strip().splitlines()) == 1 + 2 * (1 + 3) + 2 * 2 * 1
    numbers = csv.read_text().strip().splitlines()
    assert len(numbers) == 1 + 5 and numbers[1].startswith("qwen2,Expert1-SFT,51.0,,")
    assert r"Expert1-SFT-GRPO & 56.0 $\pm$ 63.5 & 36.0 $\pm$ 63.5 & 46.0 $\pm$ 63.5 \\" in tex.read_text()


def test_missing_result_file_is_named(tmp_path):
    config = _config(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"expert1\.json is missing"):
        collect(config)


def test_corrupt_result_file_is_named(tmp_path):
    config = _config(tmp_path)
    _write(config, lambda *a: 0.5)
    bad = paths.eval_file(tmp_path, "qwen2", "synth_mathqa", "MoE-SFT", 1, 2)
    assert bad == paths.eval_file(tmp_path, "qwen2", "synth_mathqa", "MoE-SFT", 0, 2)  # shared by every seed
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"MoE-SFT/shared/expert2\.json is corrupt"):
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


def _write_samples(config, dataset, method, seed, expert, correct):
    """A result file and its samples file with the given per-item correctness."""
    path = paths.eval_file(config.results_dir, "qwen2", dataset, method, seed, expert)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"family": "qwen2", "dataset": dataset, "method": method, "seed": seed,
                                "expert": expert, "n": len(correct), "accuracy": sum(correct) / len(correct)}))
    paths.samples_file(path).write_text("".join(json.dumps({"id": f"q{i}", "correct": float(c)}) + "\n"
                                                for i, c in enumerate(correct)))


def test_significance_mark_against_the_strongest_baseline(tmp_path):
    config = _config(tmp_path, datasets=["synth_gsm8k", "synth_mathqa"], meml={"methods": ["MEML-GRPO"]})
    n = 40
    # GSM8K: MEML (Expert1) right on 36/40 items, the strongest baseline (Expert1-SFT-GRPO) on 20: marked *.
    # MathQA: MEML right on 20, the strongest baseline on 21 (1 item apart): no mark.
    baseline = {"synth_gsm8k": [1] * 20 + [0] * 20, "synth_mathqa": [1] * 21 + [0] * 19}
    meml = {"synth_gsm8k": [1] * 36 + [0] * 4, "synth_mathqa": [1] * 20 + [0] * 20}
    weak = [1] * 10 + [0] * 30
    for dataset in config.datasets:
        for seed in config.seeds:
            _write_samples(config, dataset, "Expert1-SFT-GRPO", seed, 1, baseline[dataset])
            _write_samples(config, dataset, "Expert1-SFT", seed, 1, weak)
            for expert in range(3):
                _write_samples(config, dataset, "MoE-SFT", seed, expert, weak)
                _write_samples(config, dataset, "MEML-GRPO", seed, expert, meml[dataset] if expert == 1 else weak)
    md, *_, tests_csv = write_table4(config)
    text = md.read_text()
    assert "| MEML-GRPO (Expert1) | 90.0 ± 0.0 * | 50.0 ± 0.0 | 70.0 ± 0.0 * |" in text  # identical seeds
    assert "| MEML-GRPO (Expert0) | 25.0 ± 0.0 | 25.0 ± 0.0 | 25.0 ± 0.0 |" in text
    tests = {row.split(",")[1]: row.split(",") for row in tests_csv.read_text().strip().splitlines()[1:]}
    assert tests["GSM8K"][3] == "Expert1-SFT-GRPO" and float(tests["GSM8K"][4]) == pytest.approx(40.0)
    assert tests["MathQA"][3] == "Expert1-SFT-GRPO" and float(tests["MathQA"][4]) == pytest.approx(-2.5)
    assert tests["MathQA"][-1] == "False" and tests["GSM8K"][-1] == "True"
    assert float(tests["Avg"][4]) == pytest.approx((40.0 - 2.5) / 2)
    # a worse MEML is marked with a dagger
    for seed in config.seeds:
        _write_samples(config, "synth_gsm8k", "MEML-GRPO", seed, 1, [0] * n)
    assert "| MEML-GRPO (Expert1) | 0.0 ± 0.0 † |" in write_table4(config)[0].read_text()


def test_reported_numbers_only_in_the_paper_setting(tmp_path):
    from reports.reported import reported, shows_reported
    from reports.table4 import reported_lines

    config = _config(tmp_path)
    assert not shows_reported(config) and reported_lines(config, "qwen2") == []
    # the real benchmarks need non-programmatic expert sources
    paper = with_changes(config, setting="paper", datasets=["gsm8k", "strategyqa", "mathqa"],
                         experts={"sources": [{"kind": "gold"}] * 3})
    lines = "\n".join(reported_lines(paper, "llama"))
    assert "reported, secondary source, unverified" in lines
    assert "| MEML-GRPO (Expert1) | 61.0 | 63.3 | 58.4 | 60.9 |" in lines
    assert "| Expert1-SFT-GRPO | 58.2 | 54.0 | 45.2 | 52.4 |" in lines
    ablation = reported("table5")
    assert len(ablation) == 10 and ablation.set_index(["base", "method"]).loc[("Qwen", "MEML-GRPO"), "Avg"] == 77.3
    bad = tmp_path / "bad.csv"
    bad.write_text("table,base\ntable4,Qwen\n")
    with pytest.raises(ValueError, match="bad.csv lacks columns"):
        reported("table4", bad)


@pytest.mark.parametrize("pool, baseline, mark", [("any", "MoE-SFT (Expert0)", "†"),
                                                  ("same_expert", "Expert1-SFT-GRPO", "*"),
                                                  ("rl", "Expert1-SFT-GRPO", "*")])
def test_strongest_baseline_pool_is_an_option(tmp_path, pool, baseline, mark):
    config = _config(tmp_path, datasets=["synth_gsm8k"], meml={"methods": ["MEML-GRPO"]},
                     reports={"strongest_baseline": pool, "bootstrap_iterations": 500})
    right = {"Expert1-SFT-GRPO": 20, "Expert1-SFT": 10, "MoE-SFT": 10, "MEML-GRPO": 10}
    for seed in config.seeds:
        for method, experts in (("Expert1-SFT-GRPO", [1]), ("Expert1-SFT", [1]), ("MoE-SFT", [0, 1, 2]),
                                ("MEML-GRPO", [0, 1, 2])):
            for expert in experts:
                n = 38 if (method, expert) == ("MoE-SFT", 0) else 36 if (method, expert) == ("MEML-GRPO", 1) \
                    else right[method]
                _write_samples(config, "synth_gsm8k", method, seed, expert, [1] * n + [0] * (40 - n))
    md, *_, tests_csv = write_table4(config)
    tests = tests_csv.read_text().splitlines()[1].split(",")
    assert tests[3] == baseline
    assert f"| MEML-GRPO (Expert1) | 90.0 ± 0.0 {mark} |" in md.read_text()
