"""Markdown rendering shared by the table builders."""

from __future__ import annotations

import math

import pandas as pd

FAMILY_NAMES = {"qwen2": "Qwen", "llama": "Llama"}


def cell(value) -> str:
    if isinstance(value, str):
        return value
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def markdown_block(block: pd.DataFrame, first_column: str) -> list[str]:
    """One Markdown table: the index as the first column, then every column of ``block``."""
    header = [first_column] + [str(c) for c in block.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, values in block.iterrows():
        lines.append("| " + " | ".join([str(label)] + [cell(v) for v in values]) + " |")
    return lines


def setting_lines(settings, long: pd.DataFrame) -> list[str]:
    """The caption lines every table starts with: setting, seeds and test items."""
    lines = []
    if all(d.startswith("synth_") for d in settings.datasets):
        lines += ["Tiny offline setting on the synthetic benchmarks (GSM8K/StrategyQA/MathQA formats). "
                  "These are NOT the paper's numbers.", ""]
    seeds = sorted(long["seed"].unique().tolist())
    lines += [f"Mean over seeds {seeds}; test items per dataset: "
              + ", ".join(f"{d} {int(n)}" for d, n in long.groupby("dataset")["n"].first().items()) + ".", ""]
    if len(seeds) > 1:
        lines += [f"The seeds are RL replicates: every seed starts from one SFT run per family and dataset (SFT seed "
                  f"{settings.sft.seed}), so an SFT row is that one run and the intervals cover the RL stage only.",
                  ""]
    return lines


def family_blocks(table: pd.DataFrame, first_column: str) -> list[str]:
    """One headed Markdown table per base-model family (the first index level of ``table``)."""
    lines = []
    for family in table.index.get_level_values("family").unique():
        lines += [f"## {FAMILY_NAMES.get(family, family)} ({family})", ""]
        lines += markdown_block(table.loc[family], first_column)
        lines.append("")
    return lines
