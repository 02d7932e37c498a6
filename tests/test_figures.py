"""Figures from synthetic per-step RL logs: curve statistics, panels, written files, named errors."""

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from meml import paths
from meml.pipeline.settings import load_settings, with_changes
from reports.figures import (
    build_figure2,
    build_sparsity,
    curve,
    figure2_methods,
    read_metrics,
    run_curve,
    sparsity_methods,
    write_figure2,
    write_sparsity,
)

T_2_SEEDS = 12.706  # Student-t 0.975 quantile, 1 degree of freedom
FAMILIES = ["qwen2", "llama"]
DATASETS = ["synth_gsm8k", "synth_mathqa", "synth_strategyqa"]  # panels: GSM8K, StrategyQA, MathQA
RL_METHODS = ["Expert1-SFT-GRPO", "MoE-SFT-DAPO"]
MEML_METHODS = ["MEML-GRPO", "MEML-GRPO-noIML"]
STEPS = 4


def _value(family, dataset, method, seed, step):
    """A known accuracy / sparsity per run and step (seed 1 sits 0.2 above seed 0)."""
    return 0.1 * RL_METHODS.index(method) if method in RL_METHODS else 0.3 + 0.2 * seed + 0.05 * step


def _config(root):
    return with_changes(load_settings(), results_dir=str(root), models={"families": FAMILIES}, datasets=DATASETS,
                        seeds=[0, 1], rl={"methods": RL_METHODS}, meml={"methods": MEML_METHODS})


def _write_run(root, family, dataset, method, seed):
    path = paths.rl_dir(root, family, dataset, method, seed) / "metrics.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for step in range(1, STEPS + 1):
        value = _value(family, dataset, method, seed, step)
        rows.append({"step": step, "accuracy": value, "reward": value, "frac_all_zero": 1 - value})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def results(tmp_path):
    """A results folder with every run of ``_config`` logged."""
    config = _config(tmp_path)
    for family in FAMILIES:
        for dataset in DATASETS:
            for method in RL_METHODS + MEML_METHODS:
                for seed in config.seeds:
                    _write_run(tmp_path, family, dataset, method, seed)
    return config


def _frame(steps, values):
    return pd.DataFrame({"step": steps, "accuracy": values})


def test_curve_mean_and_interval_over_two_seeds():
    seed0 = _frame([3, 1, 2], [0.6, 0.2, 0.4])  # unsorted on purpose
    seed1 = _frame([1, 2, 3], [0.4, 0.4, 1.0])
    out = curve([seed0, seed1], "accuracy")
    assert list(out.columns) == ["step", "mean", "low", "high"]
    assert out["step"].tolist() == [1, 2, 3]
    assert out["mean"].tolist() == pytest.approx([0.3, 0.4, 0.8])
    # half width = t * sd / sqrt(2) = t * |a - b| / 2 for two seeds
    half = [T_2_SEEDS * 0.1, 0.0, T_2_SEEDS * 0.2]
    assert out["low"].tolist() == pytest.approx([m - h for m, h in zip([0.3, 0.4, 0.8], half)], rel=1e-4)
    assert out["high"].tolist() == pytest.approx([m + h for m, h in zip([0.3, 0.4, 0.8], half)], rel=1e-4)


def test_curve_one_seed_has_no_band_and_missing_steps_use_the_seeds_that_logged_them():
    one = curve([_frame([1, 2], [0.25, 0.5])], "accuracy")
    assert one["mean"].tolist() == [0.25, 0.5]
    assert one["low"].isna().all() and one["high"].isna().all()
    ragged = curve([_frame([1, 2], [0.2, 0.4]), _frame([1], [0.4])], "accuracy")
    assert ragged["mean"].tolist() == pytest.approx([0.3, 0.4])
    assert not math.isnan(ragged["low"][0]) and math.isnan(ragged["low"][1])


def test_run_curve_reads_the_seeds_logs(results):
    out = run_curve(results, "llama", "synth_mathqa", "MEML-GRPO", "accuracy")
    means = [0.3 + 0.1 + 0.05 * step for step in range(1, STEPS + 1)]
    assert out["mean"].tolist() == pytest.approx(means)
    assert (out["high"] - out["mean"]).tolist() == pytest.approx([T_2_SEEDS * 0.1] * STEPS, rel=1e-4)


def test_method_selection():
    config = with_changes(load_settings(), rl={"methods": RL_METHODS},
                          meml={"methods": ["MEML-GRPO-noHSFT", "MEML-GRPO", "MEML-GRPO-Expert1-noHSFT-noIML"]})
    assert figure2_methods(config) == RL_METHODS + ["MEML-GRPO"]
    assert sparsity_methods(config) == RL_METHODS + config.meml.methods


def _legend_labels(fig):
    return [text.get_text() for text in fig.legends[0].get_texts()]


def test_figure2_panels_title_and_legend(results):
    fig = build_figure2(results)
    axes = fig.axes
    assert len(axes) == len(FAMILIES) * len(DATASETS)
    assert [ax.get_title() for ax in axes[:3]] == ["GSM8K", "StrategyQA", "MathQA"]
    assert [ax.get_ylabel().split("\n")[0] for ax in axes[::3]] == ["Qwen", "Llama"]
    title = fig.get_suptitle()
    assert "mean over seeds [0, 1], band: 95% interval" in title
    assert "tiny offline setting, not the paper's numbers" in title
    assert len(fig.legends) == 1 and _legend_labels(fig) == RL_METHODS + ["MEML-GRPO"]
    assert len(axes[0].get_lines()) == 3
    meml, baseline = axes[0].get_lines()[2], axes[0].get_lines()[0]
    assert meml.get_linewidth() > baseline.get_linewidth() and meml.get_zorder() > baseline.get_zorder()
    assert meml.get_ydata().tolist() == pytest.approx([0.4 + 0.05 * s for s in range(1, STEPS + 1)])
    assert len(axes[0].collections) == 3  # one band per method with two seeds

    single = build_figure2(results, family="llama")
    assert len(single.axes) == len(DATASETS)
    assert single.axes[0].get_ylabel().startswith("Llama")


def test_colours_are_the_same_across_figures(results):
    def colours(fig):
        return {label: handle.get_color()
                for label, handle in zip(_legend_labels(fig), fig.legends[0].legend_handles)}

    figure2, sparsity = colours(build_figure2(results, family="qwen2")), colours(build_sparsity(results))
    assert all(figure2[m] == sparsity[m] for m in figure2)
    assert len(set(map(str, sparsity.values()))) == len(sparsity)


def test_write_figure2_and_sparsity_files(results):
    small = with_changes(results, datasets=["synth_gsm8k"], rl={"methods": ["MoE-SFT-DAPO"]},
                         meml={"methods": ["MEML-GRPO"]})  # one panel per family: drawing is the slow part
    written = write_figure2(small) + write_sparsity(small)
    folder = Path(results.results_dir) / "figures"
    names = ["figure2_qwen2", "figure2_llama", "figure2", "sparsity"]
    assert sorted(p.name for p in written) == sorted(f"{n}.{ext}" for n in names for ext in ("png", "pdf"))
    assert all(p.parent == folder for p in written)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in written)  # no temp files left
    for path in written:
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG" if path.suffix == ".png" else b"%PDF") and len(data) > 1000


def test_sparsity_panels(results):
    fig = build_sparsity(results)
    assert len(fig.axes) == len(FAMILIES) * len(DATASETS)
    assert _legend_labels(fig) == RL_METHODS + MEML_METHODS
    line = fig.axes[0].get_lines()[0]  # Expert1-SFT-GRPO: frac_all_zero = 1 - 0.0
    assert line.get_ydata().tolist() == pytest.approx([1.0] * STEPS)


def test_missing_metrics_file_is_named(results):
    path = paths.rl_dir(results.results_dir, "llama", "synth_strategyqa", "MoE-SFT-DAPO", 1) / "metrics.jsonl"
    path.unlink()
    with pytest.raises(FileNotFoundError) as err:
        build_figure2(results)
    assert str(path) in str(err.value) and "MoE-SFT-DAPO" in str(err.value) and "seed 1" in str(err.value)


def test_corrupt_line_and_missing_column_are_named(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "accuracy": 0.5}\n{"step": 2, "accur\n{"step": 3, "accuracy": 0.5}\n')
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}, line 2"):
        read_metrics(path, "accuracy")
    path.write_text('{"step": 1, "accuracy": 0.5}\n{"step": 2}\n')
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}, line 2.*'accuracy'"):
        read_metrics(path, "accuracy")
    path.write_text('{"accuracy": 0.5}\n')
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}, line 1.*'step'"):
        read_metrics(path)
    path.write_text('{"step": 1, "accuracy": 0.5}\n{"step": 1, "accuracy": 0.5}\n')
    with pytest.raises(ValueError, match="line 2.*step 1 repeats line 1"):
        read_metrics(path)
