"""The claims table from result files with hand-chosen outcomes: each verdict kind, "not run" rows, the CSV."""

import json
import math

import pytest

from meml import paths
from meml.pipeline.settings import load_settings, with_changes
from reports.claims import (
    ABOVE,
    AT_OR_ABOVE,
    BELOW,
    COLUMNS,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_RUN,
    build_claims,
    verdict,
    write_claims,
)

ITEMS = [f"i{n:02d}" for n in range(20)]
# items answered correctly, under expert 1 (MEML-GRPO: under every expert, so its vote equals expert 1)
CORRECT = {"Expert1-SFT": range(10), "MoE-SFT": range(4), "Expert1-SFT-GRPO": range(8), "MEML-GRPO": range(16),
           "MEML-GRPO-noIML": range(20)}


def _config(tmp_path, **changes):
    return with_changes(load_settings(), results_dir=str(tmp_path),
                        **{"datasets": ["synth_gsm8k"], "seeds": [0, 1], "models": {"families": ["qwen2"]},
                           "sft": {"methods": ["Expert1-SFT", "MoE-SFT"]}, "rl": {"methods": ["Expert1-SFT-GRPO"]},
                           "meml": {"methods": ["MEML-GRPO", "MEML-GRPO-noIML"]},
                           "reports": {"bootstrap_iterations": 300}, **changes})


def _write_eval(config, method, seed, expert, correct, family="qwen2"):
    path = paths.eval_file(config.results_dir, family, "synth_gsm8k", method, seed, expert)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = [{"id": i, "extracted": "7" if n in correct else "3", "correct": float(n in correct)}
               for n, i in enumerate(ITEMS)]
    path.write_text(json.dumps({"family": family, "dataset": "synth_gsm8k", "method": method, "seed": seed,
                                "expert": expert, "n": len(ITEMS), "accuracy": len(correct) / len(ITEMS)}))
    paths.samples_file(path).write_text("".join(json.dumps(s) + "\n" for s in samples))


def _write_metrics(config, method, seed, fractions):
    folder = paths.rl_dir(config.results_dir, "qwen2", "synth_gsm8k", method, seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps({"step": step, "frac_all_zero": f}) + "\n"
                                                  for step, f in enumerate(fractions, 1)))


def _write_evals(config, correct, family="qwen2"):
    _write_eval(config, "Expert1-SFT", config.sft.seed, 1, correct["Expert1-SFT"], family)
    for expert in range(3):
        _write_eval(config, "MoE-SFT", config.sft.seed, expert, correct["MoE-SFT"], family)
    for seed in config.seeds:
        _write_eval(config, "Expert1-SFT-GRPO", seed, 1, correct["Expert1-SFT-GRPO"], family)
        _write_eval(config, "MEML-GRPO-noIML", seed, 1, correct["MEML-GRPO-noIML"], family)
        for expert in range(3):
            _write_eval(config, "MEML-GRPO", seed, expert, correct["MEML-GRPO"], family)


@pytest.fixture
def results(tmp_path):
    config = _config(tmp_path)
    _write_evals(config, CORRECT)
    # all-zero shares: MEML-GRPO 10% and 12% (seeds 0, 1), Expert1-SFT-GRPO 20% and 21%
    _write_metrics(config, "MEML-GRPO", 0, [0.1, 0.1])
    _write_metrics(config, "MEML-GRPO", 1, [0.14, 0.10])
    _write_metrics(config, "Expert1-SFT-GRPO", 0, [0.3, 0.1])
    _write_metrics(config, "Expert1-SFT-GRPO", 1, [0.21, 0.21])
    return config


def _rows(frame, prefix, dataset="Avg"):
    return frame[frame["claim"].str.startswith(prefix) & (frame["dataset"] == dataset)].to_dict("records")


def test_verdicts_by_hand():
    assert verdict(2.0, 0.5, 3.5, ABOVE) == HOLDS
    assert verdict(-2.0, -3.5, -0.5, ABOVE) == FAILS
    assert verdict(1.0, -0.5, 2.5, ABOVE) == INCONCLUSIVE
    assert verdict(0.0, 0.0, 0.0, ABOVE) == INCONCLUSIVE  # the interval includes 0
    assert verdict(-2.0, -3.5, -0.5, BELOW) == HOLDS
    assert verdict(2.0, 0.5, 3.5, BELOW) == FAILS
    assert verdict(0.5, 0.0, 1.0, AT_OR_ABOVE) == HOLDS  # lower bound >= 0
    assert verdict(0.2, -1.0, 1.5, AT_OR_ABOVE) == HOLDS  # estimate >= 0, interval includes 0
    assert verdict(-0.2, -1.5, 1.0, AT_OR_ABOVE) == INCONCLUSIVE
    assert verdict(-2.0, -3.0, -0.1, AT_OR_ABOVE) == FAILS
    assert verdict(-2.0, math.nan, math.nan, BELOW) == INCONCLUSIVE  # no interval (one seed)


def test_claims_from_result_files(results):
    frame, _ = build_claims(results)
    # 1: MEML-GRPO (Expert1) 80% vs the strongest baseline Expert1-SFT 50%: +30, every item difference >= 0
    (first,) = _rows(frame, "1.")
    assert first["measured"] == pytest.approx(30.0) and first["lo"] > 0 and first["verdict"] == HOLDS
    assert "Expert1-SFT 50.0" in first["detail"] and first["seeds"] == 2
    assert _rows(frame, "1.", "GSM8K")[0]["measured"] == pytest.approx(30.0)
    # 2b: MEML-GRPO 80% vs MEML-GRPO-noIML 100%: -20, every item difference <= 0
    (iml,) = _rows(frame, "2b.")
    assert iml["measured"] == pytest.approx(-20.0) and iml["hi"] < 0 and iml["verdict"] == FAILS
    # 2a and 2c: their ablation rows are not configured
    (hsft,) = _rows(frame, "2a.")
    assert hsft["verdict"] == NOT_RUN and "MEML-GRPO-noHSFT not in meml.methods" in hsft["detail"]
    assert math.isnan(hsft["measured"])
    assert _rows(frame, "2c.")[0]["verdict"] == NOT_RUN
    # 3: every expert answers alike, so the vote equals expert 1: 0 with a zero-width interval, "at or above" holds
    (vote,) = _rows(frame, "3.")
    assert (vote["measured"], vote["lo"], vote["hi"], vote["verdict"]) == (0.0, 0.0, 0.0, HOLDS)
    # 4: per-seed differences 10 - 20 = -10 and 12 - 21 = -9: mean -9.5, half-width t(0.975, 1) * 0.7071 / sqrt(2)
    (sparse,) = _rows(frame, "4.")
    assert sparse["measured"] == pytest.approx(-9.5)
    assert sparse["hi"] == pytest.approx(-9.5 + 12.7062 * 0.5, abs=1e-3) and sparse["verdict"] == HOLDS
    # 5: one family
    (weaker,) = frame[frame["claim"].str.startswith("5.")].to_dict("records")
    assert weaker["verdict"] == NOT_RUN and "two families" in weaker["detail"]


def test_larger_gain_for_the_weaker_family(results):
    config = with_changes(results, models={"families": ["qwen2", "llama"]})
    # Llama: Expert1-SFT 30% (weaker than Qwen's 50%), strongest baseline Expert1-SFT-GRPO 40%, MEML-GRPO 90%
    _write_evals(config, {**CORRECT, "Expert1-SFT": range(6), "MEML-GRPO": range(18)}, family="llama")
    frame, _ = build_claims(config)
    (weaker,) = _rows(frame, "5.")
    # gains: Llama 90 - 40 = +50, Qwen 80 - 50 = +30; item differences (items 8, 9, 16, 17) all >= 0
    assert weaker["family"] == "llama vs qwen2" and weaker["measured"] == pytest.approx(20.0)
    assert weaker["lo"] > 0 and weaker["verdict"] == HOLDS
    assert "weaker: llama" in weaker["detail"] and "llama +50.0, qwen2 +30.0" in weaker["detail"]
    (llama,) = [r for r in _rows(frame, "4.") if r["family"] == "llama"]  # no RL logs written for Llama
    assert llama["verdict"] == NOT_RUN and "metrics.jsonl is missing" in llama["detail"]


def test_one_seed_has_no_sparsity_interval_and_says_so(results):
    config = with_changes(results, seeds=[0])
    md, _ = write_claims(config)
    frame, _ = build_claims(config)
    (sparse,) = _rows(frame, "4.")
    assert sparse["measured"] == pytest.approx(-10.0) and sparse["verdict"] == INCONCLUSIVE
    assert "One seed" in md.read_text()


def test_missing_inputs_give_not_run_rows_and_the_csv_columns(results):
    (paths.rl_dir(results.results_dir, "qwen2", "synth_gsm8k", "Expert1-SFT-GRPO", 1) / "metrics.jsonl").unlink()
    md, csv = write_claims(results)
    lines = csv.read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS) == "claim,dataset,family,measured,lo,hi,seeds,verdict,detail"
    frame, _ = build_claims(results)
    (sparse,) = _rows(frame, "4.")
    assert sparse["verdict"] == NOT_RUN and "metrics.jsonl is missing" in sparse["detail"]
    text = md.read_text()
    assert text.startswith("# Claims") and "| Verdict |" in text and "NOT the paper's numbers" in text
    assert "does not hold" in text and "not run" in text


def test_nothing_configured_is_not_run_everywhere(tmp_path):
    config = _config(tmp_path, meml={"methods": ["MEML-GRPO-Expert1-noHSFT-noIML"]}, rl={"methods": []})
    write_claims(config)  # no result file exists: every claim is named, none is computed
    frame, _ = build_claims(config)
    assert set(frame["verdict"]) == {NOT_RUN}
    assert {c.split(".")[0] for c in frame["claim"]} == {"1", "2a", "2b", "2c", "3", "4", "5"}
    assert "Expert1-SFT-GRPO in rl.methods" in " ".join(frame["detail"])
