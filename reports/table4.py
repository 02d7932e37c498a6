"""Table 4 (the paper's main table) from the raw evaluation result files.

Rows: method and inference expert; columns: GSM8K, StrategyQA, MathQA, Avg (the paper's order);
one block per base-model family; exact-match accuracy in percent, mean over seeds. Nothing here
is typed by hand: every number is read from a result file under ``results/eval``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from meml import paths
from meml.io import write_text_atomic
from meml.records import task_of
from reports.markdown import family_blocks, setting_lines

COLUMN_ORDER = ("gsm8k", "strategyqa", "mathqa")
COLUMN_NAMES = {"gsm8k": "GSM8K", "strategyqa": "StrategyQA", "mathqa": "MathQA"}


def read_result(path: str | Path) -> dict:
    """One evaluation result file; a missing or corrupt file is an error that names it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"result file {path} is missing: run the workflow (snakemake) to produce it")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"result file {path} is corrupt (not JSON: {err}); delete it and rerun") from err
    for key in ("accuracy", "method", "expert", "dataset", "family", "seed"):
        if key not in data:
            raise ValueError(f"result file {path} has no {key!r} field; delete it and rerun")
    return data


def row_label(method: str, expert: int, n_experts: int) -> str:
    """``Expert1-SFT`` for single-expert methods, ``MoE-SFT (Expert1)`` for multi-expert ones."""
    if len(paths.method_experts(method, n_experts)) == 1:
        return method
    return f"{method} (Expert{expert})"


def table4_methods(config: dict) -> list[str]:
    """SFT and RL baselines, then the MEML-GRPO methods with every component on (ablations: Table 5)."""
    full = [m for m in config["meml"]["methods"] if (v := paths.meml_variant(m)).hsft and v.iml]
    return [*config["sft"]["methods"], *config["rl"]["methods"], *full]


def collect(config: dict, methods: list[str] | None = None, experts: dict | None = None) -> pd.DataFrame:
    """Long table: one row per result file of the configured runs (``methods``: default Table 4's).

    ``experts`` maps a method to the inference experts to read (default: every one it was evaluated under).
    """
    root = Path(config["results_dir"])
    n_experts = len(config["experts"]["prompts"])
    rows = []
    for family in config["models"]["families"]:
        for dataset in config["datasets"]:
            for method in methods if methods is not None else table4_methods(config):
                for seed in config["seeds"]:
                    for expert in (experts or {}).get(method) or paths.method_experts(method, n_experts):
                        data = read_result(paths.eval_file(root, family, dataset, method, seed, expert))
                        rows.append({"family": family, "dataset": dataset, "task": task_of(dataset),
                                     "method": method, "expert": expert,
                                     "row": row_label(method, expert, n_experts), "seed": seed,
                                     "accuracy": 100.0 * data["accuracy"], "n": data["n"]})
    return pd.DataFrame(rows)


def pivot(long: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds; columns in the paper's order plus Avg; one row per (family, method row)."""
    mean = long.groupby(["family", "row", "task"], sort=False)["accuracy"].mean().unstack("task")
    columns = [c for c in COLUMN_ORDER if c in mean.columns]
    table = mean[columns]
    table = table.assign(Avg=table.mean(axis=1))
    return table.rename(columns=COLUMN_NAMES)


def to_markdown(table: pd.DataFrame, config: dict, long: pd.DataFrame) -> str:
    lines = ["# Table 4: exact-match accuracy (%)", "", *setting_lines(config, long)]
    lines += family_blocks(table, "Method")
    return "\n".join(lines)


def write_table4(config: dict) -> tuple[Path, Path]:
    """Write ``<results>/tables/table4.md`` and ``.csv`` (the CSV keeps every seed)."""
    long = collect(config)
    table = pivot(long)
    out = Path(config["results_dir"]) / "tables"
    md = write_text_atomic(out / "table4.md", to_markdown(table, config, long))
    csv = write_text_atomic(out / "table4.csv", long.to_csv(index=False))
    return md, csv
