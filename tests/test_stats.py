"""Mean and interval over seeds, the paired bootstrap, and the per-seed summary tables, by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from reports.stats import mean_interval, paired_bootstrap
from reports.summary import (
    display_table,
    interval_cell,
    per_seed,
    summarize,
    wide_numbers,
)


def test_mean_interval_by_hand():
    mean, low, high = mean_interval([60.0, 70.0, 80.0])
    # sd = 10, t(0.975, 2) = 4.303: half-width 4.303 * 10 / sqrt(3) = 24.84
    assert mean == 70.0 and high - mean == pytest.approx(24.84, abs=1e-2) and mean - low == pytest.approx(24.84, abs=1e-2)
    assert mean_interval([55.0])[0] == 55.0 and math.isnan(mean_interval([55.0])[1])
    assert all(math.isnan(v) for v in mean_interval([]))
    assert interval_cell(70.0, 45.157, 94.843) == "70.0 ± 24.8"
    assert interval_cell(55.0, math.nan, math.nan) == "55.0" and interval_cell(math.nan, 1, 2) == "-"


def test_paired_bootstrap_identical_and_clear_cut():
    a = np.array([[1, 0, 1, 0] * 10, [0, 1, 1, 0] * 10])
    same = paired_bootstrap(a, a)
    assert same["difference"] == 0.0 and same["low"] == 0.0 and same["high"] == 0.0 and not same["significant"]
    better = paired_bootstrap(np.ones((2, 40)), a)
    assert better["difference"] == pytest.approx(0.5) and better["significant"] and better["p"] == 0.0
    assert better["low"] > 0.3 and better["high"] <= 0.7
    # two datasets: the statistic is the mean of the per-dataset differences
    two = paired_bootstrap([np.ones((2, 40)), np.zeros((2, 10))], [a, np.zeros((2, 10))])
    assert two["difference"] == pytest.approx(0.25)
    assert paired_bootstrap(a, 1 - a, seed=3) == paired_bootstrap(a, 1 - a, seed=3)  # seeded
    with pytest.raises(ValueError, match="equal"):
        paired_bootstrap(a, a[:, :5])


def test_per_seed_summary_averages_datasets_per_seed_first():
    long = pd.DataFrame([
        {"family": "qwen2", "row": "A", "seed": s, "task": t, "accuracy": v}
        for s, values in ((0, {"gsm8k": 50.0, "mathqa": 30.0}), (1, {"gsm8k": 70.0, "mathqa": 10.0}))
        for t, v in values.items()])
    seeds = per_seed(long, ["family", "row"])
    assert list(seeds.columns) == ["GSM8K", "MathQA", "Avg"]
    assert seeds["Avg"].tolist() == [40.0, 40.0]
    summary = summarize(seeds, ["family", "row"])
    avg = summary[summary["column"] == "Avg"].iloc[0]
    assert (avg["mean"], avg["low"], avg["high"], avg["n_seeds"]) == (40.0, 40.0, 40.0, 2)
    table = display_table(summary, ["family", "row"])
    assert table.loc[("qwen2", "A")].tolist() == ["60.0 ± 127.1", "20.0 ± 127.1", "40.0 ± 0.0"]  # sd 14.14
    wide = wide_numbers(summary, ["family", "row"])
    assert list(wide.columns)[:5] == ["family", "row", "GSM8K", "GSM8K_low", "GSM8K_high"]
    assert wide.loc[0, "GSM8K_high"] == pytest.approx(60 + 12.706 * 10, abs=1e-2)
