"""Table 5 (ablation): MoE / HSFT / IML switched on or off, accuracy per base model.

Each row is one MEML-GRPO method of ``meml.methods`` (its switches read from the name, see
:func:`meml.paths.meml_variant`), evaluated under ``meml.report_expert`` (the paper reports
Expert1); a single-expert (MoE off) row uses its own expert. Mean over seeds, from the raw
evaluation files.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from meml import paths
from meml.io import write_text_atomic
from reports.markdown import family_blocks, setting_lines
from reports.table4 import COLUMN_NAMES, COLUMN_ORDER, collect

SWITCHES = ("MoE", "HSFT", "IML")


def report_experts(config: dict) -> dict[str, tuple[int]]:
    """The inference expert each Table 5 row is read under."""
    expert = config["meml"]["report_expert"]
    out = {}
    for method in config["meml"]["methods"]:
        variant = paths.meml_variant(method)
        out[method] = (expert,) if variant.moe else (variant.single_expert,)
    return out


def build_table5(long: pd.DataFrame) -> pd.DataFrame:
    """Rows (family, method): the three switches, per-dataset accuracy (mean over seeds) and Avg."""
    mean = long.groupby(["family", "method", "task"], sort=False)["accuracy"].mean().unstack("task")
    columns = [c for c in COLUMN_ORDER if c in mean.columns]
    table = mean[columns].rename(columns=COLUMN_NAMES)
    table = table.assign(Avg=table.mean(axis=1))
    for position, name in enumerate(SWITCHES):
        values = []
        for method in table.index.get_level_values("method"):
            v = paths.meml_variant(method)
            values.append("on" if (v.moe, v.hsft, v.iml)[position] else "off")
        table.insert(position, name, values)
    return table


def to_markdown(table: pd.DataFrame, config: dict, long: pd.DataFrame) -> str:
    lines = ["# Table 5: ablation of MEML-GRPO's components, exact-match accuracy (%)", "",
             "MoE: start from the multi-expert SFT model and sample under every expert (off: Expert"
             f"<k>-SFT start, expert k only). HSFT: hard-example buffer. IML: inter-expert mutual learning. "
             f"Inference expert: Expert{config['meml']['report_expert']} (a MoE-off row: its own expert).", "",
             *setting_lines(config, long)]
    lines += family_blocks(table, "Method")
    return "\n".join(lines)


def write_table5(config: dict) -> tuple[Path, Path]:
    """Write ``<results>/tables/table5.md`` and ``.csv`` (every seed)."""
    methods = config["meml"]["methods"]
    if not methods:
        raise ValueError("table5: meml.methods is empty; configure the MEML-GRPO ablation rows")
    long = collect(config, methods, report_experts(config))
    table = build_table5(long)
    out = Path(config["results_dir"]) / "tables"
    md = write_text_atomic(out / "table5.md", to_markdown(table, config, long))
    csv = write_text_atomic(out / "table5.csv", long.to_csv(index=False))
    return md, csv
