"""Per-seed accuracy tables and their summary over seeds (mean and 95% interval), shared by the tables.

The input is a long table with one row per evaluation result file (``family``, ``task``, ``seed``,
``accuracy`` in percent and the row keys). The Avg column is computed per seed (mean over the
datasets of that seed), then summarised over seeds like every other column.
"""

from __future__ import annotations

import math

import pandas as pd

from reports.stats import mean_interval

COLUMN_ORDER = ("gsm8k", "strategyqa", "mathqa")
COLUMN_NAMES = {"gsm8k": "GSM8K", "strategyqa": "StrategyQA", "mathqa": "MathQA"}


def per_seed(long: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows (keys..., seed); columns the datasets in the paper's order (display names) plus Avg."""
    wide = long.groupby([*keys, "seed", "task"], sort=False)["accuracy"].mean().unstack("task")
    wide = wide[[c for c in COLUMN_ORDER if c in wide.columns]]
    wide = wide.assign(Avg=wide.mean(axis=1, skipna=False))
    return wide.rename(columns=COLUMN_NAMES)


def summarize(seeds: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Long summary: one row per (keys..., column) with mean, low, high (95% interval) and n_seeds."""
    rows = []
    for key, block in seeds.groupby(level=keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        for column in seeds.columns:
            values = block[column].tolist()
            mean, low, high = mean_interval(values)
            rows.append({**dict(zip(keys, key)), "column": column, "mean": mean, "low": low, "high": high,
                         "n_seeds": len(values)})
    return pd.DataFrame(rows)


def interval_cell(mean: float, low: float, high: float) -> str:
    """``87.0 ± 2.1`` (half-width of the interval), or ``87.0`` without an interval, ``-`` for no value."""
    if mean is None or math.isnan(mean):
        return "-"
    if low is None or math.isnan(low):
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {(high - low) / 2:.1f}"


def display_table(summary: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Cells ``mean ± half-width`` indexed by ``keys`` with the summary's columns in order."""
    cells = summary.assign(cell=[interval_cell(m, lo, hi) for m, lo, hi in
                                 zip(summary["mean"], summary["low"], summary["high"])])
    columns = list(dict.fromkeys(summary["column"]))
    table = cells.pivot_table(index=keys, columns="column", values="cell", aggfunc="first", sort=False)
    return table[columns]


def wide_numbers(summary: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The CSV form: one row per key, ``<column>``, ``<column>_low``, ``<column>_high`` for every column."""
    out = None
    for stat, suffix in (("mean", ""), ("low", "_low"), ("high", "_high")):
        part = summary.pivot_table(index=keys, columns="column", values=stat, aggfunc="first", sort=False,
                                   dropna=False)
        part = part[list(dict.fromkeys(summary["column"]))]
        part.columns = [f"{c}{suffix}" for c in part.columns]
        out = part if out is None else out.join(part)
    order = [f"{c}{s}" for c in dict.fromkeys(summary["column"]) for s in ("", "_low", "_high")]
    n = summary.groupby(keys, sort=False)["n_seeds"].max()
    return out[order].assign(n_seeds=n).reset_index()
