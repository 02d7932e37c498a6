"""Table 5 (ablation): MoE / HSFT / IML switched on or off, accuracy per base model.

Each row is one MEML-GRPO method of ``meml.methods`` (its switches read from the name, see
:class:`meml.methods.Method`), evaluated under ``meml.report_expert`` (the paper reports
Expert1); a single-expert (MoE off) row uses its own expert. Mean and 95% interval over seeds,
from the raw evaluation files; in the paper setting the paper's reported averages follow each block.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from meml.io import write_text_atomic
from meml.methods import Method
from reports.latex import latex_table
from reports.markdown import FAMILY_NAMES, markdown_block, setting_lines
from reports.summary import display_table, per_seed, summarize, wide_numbers
from reports.table4 import collect, reported_lines

SWITCHES = ("MoE", "HSFT", "IML")


def report_experts(settings) -> dict[str, tuple[int]]:
    """The inference expert each Table 5 row is read under."""
    expert = settings.meml.report_expert
    out = {}
    for method in settings.meml.methods:
        parsed = Method.parse(method)
        out[method] = (expert,) if parsed.moe else parsed.experts(settings.n_experts)
    return out


def switches(method: str) -> list[str]:
    """``on``/``off`` for MoE, HSFT and IML of a MEML-GRPO method name."""
    v = Method.parse(method)
    return ["on" if flag else "off" for flag in (v.moe, v.hsft, v.iml)]


def build_table5(long: pd.DataFrame) -> pd.DataFrame:
    """Rows (family, method): the three switches, per-dataset accuracy and Avg (mean ± 95% interval over seeds)."""
    keys = ["family", "method"]
    table = display_table(summarize(per_seed(long, keys), keys), keys)
    flags = [switches(m) for m in table.index.get_level_values("method")]
    for position, name in enumerate(SWITCHES):
        table.insert(position, name, [f[position] for f in flags])
    return table


def means(long: pd.DataFrame) -> pd.DataFrame:
    """Numeric means over seeds, rows (family, method), columns datasets and Avg."""
    return per_seed(long, ["family", "method"]).groupby(level=["family", "method"], sort=False).mean()


def to_markdown(table: pd.DataFrame, settings, long: pd.DataFrame) -> str:
    lines = ["# Table 5: ablation of MEML-GRPO's components, exact-match accuracy (%)", "",
             "MoE: start from the multi-expert SFT model and sample under every expert (off: Expert"
             f"<k>-SFT start, expert k only). HSFT: hard-example buffer. IML: inter-expert mutual learning. "
             f"Inference expert: Expert{settings.meml.report_expert} (a MoE-off row: its own expert).", "",
             *setting_lines(settings, long)]
    for family in table.index.get_level_values("family").unique():
        lines += [f"## {FAMILY_NAMES.get(family, family)} ({family})", ""]
        lines += markdown_block(table.loc[family], "Method") + [""]
        lines += reported_lines(settings, family, "table5")
    return "\n".join(lines)


def write_table5(settings) -> list[Path]:
    """Write ``<results>/tables/table5.{md,csv,tex}`` and ``table5_runs.csv`` (every seed)."""
    methods = settings.meml.methods
    if not methods:
        raise ValueError("table5: meml.methods is empty; configure the MEML-GRPO ablation rows")
    long = collect(settings, methods, report_experts(settings))
    keys = ["family", "method"]
    summary = summarize(per_seed(long, keys), keys)
    table = build_table5(long)
    numbers = wide_numbers(summary, keys)
    for position, name in enumerate(SWITCHES):
        numbers.insert(2 + position, name, [switches(m)[position] for m in numbers["method"]])
    out = Path(settings.results_dir) / "tables"
    caption = ("Ablation of MEML-GRPO (MoE / HSFT / IML), exact-match accuracy (%), mean ± 95% interval over seeds "
               + str(sorted(long["seed"].unique().tolist())))
    return [write_text_atomic(out / "table5.md", to_markdown(table, settings, long)),
            write_text_atomic(out / "table5.csv", numbers.to_csv(index=False)),
            write_text_atomic(out / "table5.tex", latex_table(table, caption, "tab:table5", "Method")),
            write_text_atomic(out / "table5_runs.csv", long.to_csv(index=False))]
