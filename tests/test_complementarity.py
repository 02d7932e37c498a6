"""Error-complementarity analysis: the measures on hand-made sampled files, the tables, the sampling."""

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest

from meml import paths
from meml.data import load_records
from meml.evaluation import sample_model, write_task_docs
from meml.fields import ConfigError
from meml.pipeline.settings import load_settings, settings_from_config, with_changes
from reports.complementarity import (
    ALL_WRONG,
    ANOTHER,
    ERROR_RATE,
    measures,
    read_sampled,
    solved_by,
    write_complementarity,
)

IDS = ["a", "b", "c", "d"]
# Items each expert got wrong in runs 1 and 2 (3 experts, 2 runs, 4 items).
WRONG = {0: [{"a", "b"}, {"a"}], 1: [{"a", "c"}, set()], 2: [{"a", "b", "d"}, {"a", "b"}]}
# By hand. Run 1: E0={a,b}, E1={a,c}, E2={a,b,d}, all three wrong on {a}; run 2: E0={a}, E1={}, E2={a,b}, none common.
EXPECTED = {
    0: {ERROR_RATE: 37.5, ALL_WRONG: 25.0, solved_by(0): math.nan, solved_by(1): 75.0, solved_by(2): 0.0,
        ANOTHER: 75.0},
    1: {ERROR_RATE: 25.0, ALL_WRONG: 50.0, solved_by(0): 50.0, solved_by(1): math.nan, solved_by(2): 50.0,
        ANOTHER: 50.0},  # run 2 has no error of expert 1: left out of the shares
    2: {ERROR_RATE: 62.5, ALL_WRONG: 100 / 6, solved_by(0): 100 * 5 / 12, solved_by(1): 100 * 5 / 6,
        solved_by(2): math.nan, ANOTHER: 100 * 5 / 6},
}


def _correct(wrong: list[set]) -> np.ndarray:
    return np.asarray([[0 if i in run else 1 for run in wrong] for i in IDS])


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)


def test_measures_match_the_hand_computed_values():
    got = measures({k: _correct(w) for k, w in WRONG.items()})
    for expert, values in EXPECTED.items():
        for column, value in values.items():
            assert _same(got[expert][column], value), (expert, column, got[expert][column], value)


def test_an_expert_without_errors_and_a_single_expert_give_nan():
    perfect = np.ones((4, 2), dtype=int)
    got = measures({0: _correct(WRONG[0]), 1: perfect})
    assert got[1][ERROR_RATE] == 0.0 and math.isnan(got[1][ALL_WRONG]) and math.isnan(got[1][ANOTHER])
    assert got[0][ALL_WRONG] == 0.0 and got[0][ANOTHER] == 100.0 and got[0][solved_by(1)] == 100.0
    alone = measures({0: _correct(WRONG[0])})
    assert alone[0][ALL_WRONG] == 100.0 and math.isnan(alone[0][ANOTHER])


# --------------------------------------------------------------------------- files and tables


def _config(tmp_path, seeds=(0,)):
    return with_changes(load_settings(), results_dir=str(tmp_path), seeds=list(seeds), datasets=["synth_gsm8k"],
                        models={"families": ["qwen2"]}, complementarity={"samples": 2, "temperature": 1.0})


def _write(root, wrong_by_expert, seed=0, samples=2):
    for expert, wrong in wrong_by_expert.items():
        out = paths.sampled_file(root, "qwen2", "synth_gsm8k", f"Expert{expert}-SFT", seed, expert)
        out.parent.mkdir(parents=True, exist_ok=True)
        rows = [{"id": i, "answer": "1", "completions": ["#### 1"] * samples, "extracted": ["1"] * samples,
                 "correct": [0 if i in run else 1 for run in wrong]} for i in IDS]
        out.write_text("".join(json.dumps(r) + "\n" for r in rows))
        summary = {"expert": expert, "samples": samples, "temperature": 1.0, "n": len(rows)}
        out.with_suffix(".json").write_text(json.dumps(summary))


def test_tables_of_one_seed(tmp_path):
    config = _config(tmp_path)
    _write(tmp_path, WRONG)
    md, csv, tex = write_complementarity(config)
    text = md.read_text()
    assert "NOT the paper's numbers" in text and "## Qwen (qwen2)" in text
    assert "sampled 2 times per test item" in text and "temperature 1" in text and "synth_gsm8k 4" in text
    header = ("| Dataset | Expert | Error rate | Errors all experts make | Solved by Expert0 | Solved by Expert1 | "
              "Solved by Expert2 | Solved by another expert |")
    assert header in text
    assert "| synth_gsm8k | Expert0 | 37.5 | 25.0 | - | 75.0 | 0.0 | 75.0 |" in text
    assert "| synth_gsm8k | Expert1 | 25.0 | 50.0 | 50.0 | - | 50.0 | 50.0 |" in text
    assert "| synth_gsm8k | Expert2 | 62.5 | 16.7 | 41.7 | 83.3 | - | 83.3 |" in text
    table = pd.read_csv(csv)
    assert table[["family", "dataset", "expert"]].values.tolist() == [["qwen2", "synth_gsm8k", k] for k in range(3)]
    assert table[ERROR_RATE].tolist() == [37.5, 25.0, 62.5]
    assert table[f"{ERROR_RATE}_low"].isna().all() and table["n_seeds"].tolist() == [1, 1, 1]
    assert table["items"].tolist() == [4] * 3 and table["samples"].tolist() == [2] * 3
    latex = tex.read_text()
    assert r"\toprule" in latex and r"\bottomrule" in latex and r"synth\_gsm8k" in latex
    assert r"NOT the paper's numbers" in latex


def test_seeds_share_one_sampling_of_the_shared_sft_models(tmp_path):
    """The ExpertK-SFT models are one run per (family, dataset) shared by every seed: sampled once, read once."""
    config = _config(tmp_path, seeds=(0, 1))
    assert paths.sampled_file(tmp_path, "qwen2", "synth_gsm8k", "Expert0-SFT", 1, 0) == paths.sampled_file(
        tmp_path, "qwen2", "synth_gsm8k", "Expert0-SFT", 0, 0)
    _write(tmp_path, WRONG, seed=0)
    md, csv, _ = write_complementarity(config)
    table = pd.read_csv(csv).set_index("expert")
    assert table.loc[0, ERROR_RATE] == pytest.approx(37.5) and table.loc[0, "n_seeds"] == 1
    assert "| synth_gsm8k | Expert0 | 37.5 |" in md.read_text()


def test_missing_and_corrupt_sampled_files_are_named(tmp_path):
    config = _config(tmp_path)
    _write(tmp_path, {0: WRONG[0], 1: WRONG[1]})
    missing = paths.sampled_file(tmp_path, "qwen2", "synth_gsm8k", "Expert2-SFT", 0, 2)
    with pytest.raises(FileNotFoundError, match=str(missing)):
        write_complementarity(config)
    _write(tmp_path, WRONG)
    lines = missing.read_text().splitlines()
    missing.write_text("\n".join([lines[0], "{not json", *lines[2:]]) + "\n")
    with pytest.raises(ValueError, match=f"{missing}:2"):
        read_sampled(missing)
    lines[1] = json.dumps({"id": "b", "correct": [1]})
    missing.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=f"{missing}:2: a sampled row needs"):
        write_complementarity(config)
    missing.with_suffix(".json").write_text("{")
    with pytest.raises(ValueError, match=str(missing.with_suffix(".json"))):
        write_complementarity(config)


def test_config_resolves_and_checks_the_experts():
    settings = load_settings()
    assert settings.complementarity_experts() == [0, 1, 2]
    settings = with_changes(settings, sft={"methods": ["Expert1-SFT", "MoE-SFT"]},
                            rl={"methods": ["Expert1-SFT-GRPO"]}, meml={"methods": ["MEML-GRPO"]})
    assert settings.complementarity_experts() == [1]
    assert with_changes(settings, complementarity={"experts": [1]}).complementarity_experts() == [1]
    config = settings.to_mapping()
    config["complementarity"]["experts"] = [0, 1]
    with pytest.raises(ConfigError, match="complementarity.experts: expert 0 needs Expert0-SFT"):
        settings_from_config(config, "my.yaml")
    config["complementarity"]["experts"] = [3]
    with pytest.raises(ConfigError, match="complementarity.experts: expert 3 is beyond the 3"):
        settings_from_config(config, "my.yaml")
    config["complementarity"]["samples"] = 0
    with pytest.raises(ConfigError, match="complementarity.samples"):
        settings_from_config(config, "my.yaml")


# --------------------------------------------------------------------------- sampling through lm-eval


@pytest.mark.slow
def test_sample_model_draws_repeatable_samples(tiny_model_dir, small_world, tmp_path):
    records = load_records("synth_gsm8k", "test", small_world)[:3]
    docs = write_task_docs(records, tmp_path / "docs.jsonl")

    def run(seed):
        return sample_model(tiny_model_dir, docs, "meml_test_sampled", "You are Expert 0. Solve step by step.",
                            samples=3, temperature=1.0, max_new_tokens=6, batch_size=16, seed=seed)

    rows = run(5)
    assert [r["id"] for r in rows] == [r.id for r in records]
    for row in rows:
        assert len(row["completions"]) == len(row["extracted"]) == len(row["correct"]) == 3
        assert set(row["correct"]) <= {0, 1}
    assert len({c for r in rows for c in r["completions"]}) > 1  # sampled, not one greedy answer
    assert run(5) == rows
    assert run(6) != rows


@pytest.mark.slow
def test_sample_stage_and_table_end_to_end(tiny_model_dir, small_world, tmp_path):
    """The stage on stand-in expert models (the random tiny model), then the report on its files."""
    from meml.pipeline import stages

    shutil.copytree(small_world, paths.world_dir(tmp_path))
    config = with_changes(_config(tmp_path), complementarity={"max_items": 4, "samples": 2},
                          eval={"max_new_tokens": 6, "batch_size": 16})
    for k in range(3):
        model = paths.sft_dir(tmp_path, "qwen2", "synth_gsm8k", f"Expert{k}-SFT")
        shutil.copytree(tiny_model_dir, model)
        (model / "run.json").write_text("{}")
    written = stages.sample_experts(config, "qwen2", "synth_gsm8k", 0)
    assert written == [paths.sampled_file(tmp_path, "qwen2", "synth_gsm8k", f"Expert{k}-SFT", 0, k) for k in range(3)]
    summary = json.loads(written[1].with_suffix(".json").read_text())
    assert summary["n"] == 4 and summary["samples"] == 2 and summary["expert"] == 1
    assert summary["sampling_seed"] == 1 and {"config", "git_commit"} <= set(summary)
    assert summary["config"] == config.to_mapping()  # the whole settings tree
    assert 0.0 <= summary["error_rate"] <= 1.0
    md, _, _ = write_complementarity(config)
    assert "| synth_gsm8k | Expert2 |" in md.read_text()
