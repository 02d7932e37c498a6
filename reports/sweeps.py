"""Sweep tables and plots from the evaluation files of swept runs (see :mod:`meml.sweeps`).

Every run of a sweep point is read under one inference expert: ``meml.report_expert`` for a method
sampled under every expert, its own expert otherwise (as in Table 5). Written under
``<results>/sweeps/``: ``sweep.md``/``.csv`` (every point: option values, per-dataset accuracy and
Avg, mean ± 95% interval over seeds) and, per swept option, ``<option>.md``/``.csv`` (the same rows
ordered with that option varying fastest) and ``<option>.png``/``.pdf`` (Avg against the option's values,
one line per method and combination of the other options, one panel per base-model family).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from meml import paths
from meml.io import write_text_atomic
from meml.methods import TAG, Method
from meml.records import task_of
from meml.sweeps import (
    format_value,
    meml_methods,
    point_of,
    rl_algorithms,
    rl_methods,
    short_name,
)
from reports.figures import save_figure
from reports.markdown import FAMILY_NAMES, markdown_block, setting_lines
from reports.summary import display_table, per_seed, summarize, wide_numbers
from reports.table4 import read_result


def swept_methods(settings) -> list[str]:
    """Every tagged method (a sweep point) of the configured RL and MEML-GRPO methods."""
    methods = [m for a in rl_algorithms(settings) for m in rl_methods(settings, a)] + meml_methods(settings)
    return [m for m in methods if TAG in m]


def collect(settings) -> pd.DataFrame:
    """Long table: one row per (family, dataset, swept method, seed) with the point's option values."""
    n_experts = settings.n_experts
    options = [short_name(o) for o in settings.sweep]
    rows = []
    for method in swept_methods(settings):
        parsed = Method.parse(method)
        experts = parsed.experts(n_experts)
        expert = settings.meml.report_expert if len(experts) > 1 else experts[0]
        point = {short_name(o): v for o, v in point_of(settings, parsed).items()}
        for family in settings.models.families:
            for dataset in settings.datasets:
                for seed in settings.seeds:
                    data = read_result(paths.eval_file(settings.results_dir, family, dataset, method, seed, expert))
                    rows.append({"family": family, "dataset": dataset, "task": task_of(dataset), "method": method,
                                 "base": str(parsed.base), "expert": expert, "seed": seed,
                                 **{o: point.get(o) for o in options},
                                 "accuracy": 100.0 * data["accuracy"], "n": data["n"]})
    return pd.DataFrame(rows)


def point_table(long: pd.DataFrame, options: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(display table, numeric CSV table): rows (family, method) with base method and option columns first."""
    keys = ["family", "method"]
    summary = summarize(per_seed(long, keys), keys)
    labels = long.drop_duplicates("method").set_index("method")[["base", *options]]
    display = display_table(summary, keys)
    for position, column in enumerate(["base", *options]):
        values = [labels.loc[m, column] for m in display.index.get_level_values("method")]
        display.insert(position, column, values if column == "base" else [format_value(v) for v in values])
    numbers = wide_numbers(summary, keys)
    numbers = numbers.merge(labels.reset_index(), on="method")
    numbers = numbers[["family", "method", "base", *options]
                      + [c for c in numbers.columns if c not in ("family", "method", "base", *options)]]
    return display, numbers


def _markdown(title: str, display: pd.DataFrame, settings, long: pd.DataFrame) -> str:
    lines = [f"# {title}", "", *setting_lines(settings, long)]
    for family in display.index.get_level_values("family").unique():
        block = display.loc[family].copy()
        block.index = [m.split(TAG, 1)[0] for m in block.index]
        block = block.drop(columns="base")
        lines += [f"## {FAMILY_NAMES.get(family, family)} ({family})", "", *markdown_block(block, "Method"), ""]
    return "\n".join(lines)


def option_plot(numbers: pd.DataFrame, option: str, options: list[str], settings):
    """Avg accuracy (mean and 95% interval over seeds) against one option's values."""
    from matplotlib.figure import Figure

    families = list(dict.fromkeys(numbers["family"]))
    fig = Figure(figsize=(5.0 * len(families), 3.8), layout="constrained")
    axes = fig.subplots(1, len(families), squeeze=False)[0]
    others = [o for o in options if o != option]
    for ax, family in zip(axes, families):
        block = numbers[numbers["family"] == family]
        for label, line in block.groupby(["base", *others], sort=False):
            label = label if isinstance(label, tuple) else (label,)
            name = label[0] + "".join(f", {o}={v:g}" for o, v in zip(others, label[1:]))
            line = line.sort_values(option)
            lower = (line["Avg"] - line["Avg_low"]).fillna(0)
            upper = (line["Avg_high"] - line["Avg"]).fillna(0)
            ax.errorbar(line[option], line["Avg"], yerr=[lower, upper], marker="o", capsize=3, label=name)
        ax.set_title(FAMILY_NAMES.get(family, family))
        ax.set_xlabel(option)
        ax.set_ylabel(f"Avg accuracy (%), Expert{settings.meml.report_expert} prompt")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    seeds = sorted(settings.seeds)
    fig.suptitle(f"Sweep over {option}: mean over seeds {seeds}" + (", bars: 95% interval" if len(seeds) > 1 else ""),
                 fontsize=9)
    return fig


def write_sweeps(settings) -> list[Path]:
    """Write the sweep table and, per swept option, its table and plot under ``<results>/sweeps/``."""
    if not settings.sweep:
        raise ValueError("sweeps: no option is swept (give a numeric option of rl, rl.algorithms.<name> or meml a list)")
    options = [short_name(o) for o in settings.sweep]
    long = collect(settings)
    if long.empty:
        raise ValueError("sweeps: no configured method uses the swept options "
                         f"{sorted(settings.sweep)} (check rl.methods and meml.methods)")
    out = Path(settings.results_dir) / "sweeps"
    display, numbers = point_table(long, options)
    written = [write_text_atomic(out / "sweep.md", _markdown("Sweep: every point", display, settings, long)),
               write_text_atomic(out / "sweep.csv", numbers.to_csv(index=False)),
               write_text_atomic(out / "sweep_runs.csv", long.to_csv(index=False))]
    for option in options:
        order = [o for o in options if o != option] + [option]
        rank = numbers.sort_values(["family", "base", *order], kind="stable")
        ordered = display.loc[list(zip(rank["family"], rank["method"]))]
        written.append(write_text_atomic(out / f"{option}.md",
                                         _markdown(f"Sweep over {option}", ordered, settings, long)))
        written.append(write_text_atomic(out / f"{option}.csv", rank.to_csv(index=False)))
        written += save_figure(option_plot(numbers, option, options, settings), out / option)
    return written
